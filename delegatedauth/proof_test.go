package delegatedauth

import (
	"encoding/base64"
	"errors"
	"net/http"
	"reflect"
	"strings"
	"testing"
)

func sampleProof() Proof {
	return Proof{
		Method: "POST",
		URL:    "https://sts.amazonaws.com",
		Header: http.Header{
			"Host":          {"sts.amazonaws.com"},
			"Content-Type":  {"application/x-www-form-urlencoded; charset=utf-8"},
			"X-Ddog-Org-Id": {"acme"},
			"X-Amz-Date":    {"20261123T120000Z"},
			"Authorization": {"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261123/us-east-1/sts/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-ddog-org-id, Signature=abc"},
		},
		Body: []byte("Action=GetCallerIdentity&Version=2011-06-15"),
	}
}

func TestProofRoundTrip(t *testing.T) {
	p := sampleProof()
	got, err := ParseProof(p.Encode())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, p) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, p)
	}
}

// TestProofDatadogWireFormat pins the format to the Datadog agent's, field by field.
func TestProofDatadogWireFormat(t *testing.T) {
	enc := sampleProof().Encode()
	parts := strings.Split(enc, "|")
	if len(parts) != 4 || parts[2] != "POST" {
		t.Fatalf("encoded proof %q: want body|headers|POST|url", enc)
	}
	body, _ := base64.StdEncoding.DecodeString(parts[0])
	url, _ := base64.StdEncoding.DecodeString(parts[3])
	headers, _ := base64.StdEncoding.DecodeString(parts[1])
	if string(body) != "Action=GetCallerIdentity&Version=2011-06-15" || string(url) != "https://sts.amazonaws.com" {
		t.Fatalf("body %q url %q", body, url)
	}
	if !strings.Contains(string(headers), `"X-Ddog-Org-Id":["acme"]`) {
		t.Fatalf("headers JSON %s: want name → list of values", headers)
	}
}

func TestParseProofRefusesMalformed(t *testing.T) {
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	good := sampleProof().Encode()
	parts := strings.Split(good, "|")
	join := func(p ...string) string { return strings.Join(p, "|") }

	tests := []struct {
		name, proof, want string
	}{
		{"empty", "", "1 parts"},
		{"three parts", join(parts[0], parts[1], parts[2]), "3 parts"},
		{"five parts", good + "|x", "5 parts"},
		{"body not base64", join("%%%", parts[1], "POST", parts[3]), "body is not base64"},
		{"headers not base64", join(parts[0], "!!", "POST", parts[3]), "headers is not base64"},
		{"url not base64", join(parts[0], parts[1], "POST", "*"), "url is not base64"},
		{"headers not JSON", join(parts[0], b64("{"), "POST", parts[3]), "not a JSON object"},
		{"headers wrong shape", join(parts[0], b64(`{"Host":"a"}`), "POST", parts[3]), "not a JSON object"},
		{"header name invalid", join(parts[0], b64(`{"Bad Name":["a"]}`), "POST", parts[3]), "header name"},
		{"header value CRLF", join(parts[0], b64(`{"X-A":["a\r\nX-B: b"]}`), "POST", parts[3]), "control character"},
		{"header value DEL", join(parts[0], b64("{\"X-A\":[\"a\x7fb\"]}"), "POST", parts[3]), "control character"},
		{"header value escape", join(parts[0], b64(`{"X-A":["a\u001bb"]}`), "POST", parts[3]), "control character"},
		{"duplicate spellings", join(parts[0], b64(`{"x-ddog-org-id":["a"],"X-Ddog-Org-Id":["b"]}`), "POST", parts[3]), "two spellings"},
		{"method invalid", join(parts[0], parts[1], "PO ST", parts[3]), "not an HTTP method"},
		{"method empty", join(parts[0], parts[1], "", parts[3]), "not an HTTP method"},
		{"url relative", join(parts[0], parts[1], "POST", b64("/path")), "not an absolute URL"},
		{"url no host", join(parts[0], parts[1], "POST", b64("https://")), "not an absolute URL"},
		{"body too long", join(b64(strings.Repeat("a", maxBodyLen+1)), parts[1], "POST", parts[3]), "body longer than"},
		{"too long overall", strings.Repeat("A", MaxProofLen+1), "limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseProof(tt.proof)
			if !errors.Is(err, ErrMalformedProof) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want ErrMalformedProof containing %q", err, tt.want)
			}
		})
	}
}

func FuzzParseProof(f *testing.F) {
	f.Add(sampleProof().Encode())
	f.Add("|||")
	f.Add("YQ==|e30=|POST|aHR0cHM6Ly9h")
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParseProof(s)
		if err != nil {
			if !errors.Is(err, ErrMalformedProof) {
				t.Fatalf("error %v does not wrap ErrMalformedProof", err)
			}
			return
		}
		// Whatever parses must survive a round trip unchanged.
		again, err := ParseProof(p.Encode())
		if err != nil {
			t.Fatalf("re-parse of an accepted proof failed: %v", err)
		}
		if !reflect.DeepEqual(again, p) {
			t.Fatalf("round trip changed the proof:\n%+v\n%+v", p, again)
		}
	})
}
