package sigv4_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/chancery/chancery/sigv4"
)

// TestProxyRewritesRequest looks at what the proxy sends upstream; moto cannot show the
// headers it received, so the upstream here only records them.
func TestProxyRewritesRequest(t *testing.T) {
	var got *http.Request
	var gotBody []byte
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Clone(r.Context())
		gotBody, _ = io.ReadAll(r.Body)
		w.Header().Set("Connection", "X-Upstream-Hop")
		w.Header().Set("X-Upstream-Hop", "drop me")
		io.WriteString(w, "ok")
	}))
	t.Cleanup(upstream.Close)
	h, err := sigv4.NewProxy(sigv4.ProxyConfig{
		Upstream:    upstream.URL + "/base",
		Credentials: sigv4.StaticCredentials{AccessKeyID: "AKIDPROXY", SecretAccessKey: "secret", SessionToken: "proxy-token"},
		Service:     "execute-api", Region: "eu-west-1",
	})
	if err != nil {
		t.Fatal(err)
	}
	proxy := httptest.NewServer(h)
	t.Cleanup(proxy.Close)

	body := strings.Repeat("streamed body ", 1000)
	req, _ := http.NewRequest(http.MethodPost, proxy.URL+"/items?b=2&X-Amz-Signature=abc&a=1&X-Amz-Credential=x", struct{ io.Reader }{strings.NewReader(body)})
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKIDCLIENT/20000101/us-east-1/execute-api/aws4_request, SignedHeaders=host, Signature=00")
	req.Header.Set("X-Amz-Security-Token", "client-token")
	req.Header.Set("X-Amz-Date", "20000101T000000Z")
	req.Header.Set("Connection", "X-Hop")
	req.Header.Set("X-Hop", "drop me")
	req.Header.Set("X-Keep", "keep me")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(out) != "ok" {
		t.Fatalf("proxy reply %s %q", resp.Status, out)
	}
	if resp.Header.Get("X-Upstream-Hop") != "" {
		t.Error("hop-by-hop header of the reply was forwarded")
	}
	if got.URL.Path != "/base/items" || got.URL.RawQuery != "a=1&b=2" {
		t.Errorf("upstream saw %s?%s, want /base/items?a=1&b=2", got.URL.Path, got.URL.RawQuery)
	}
	if a := got.Header.Get("Authorization"); !strings.Contains(a, "Credential=AKIDPROXY/") || !strings.Contains(a, "/eu-west-1/execute-api/aws4_request") {
		t.Errorf("upstream Authorization %q is not the proxy's", a)
	}
	if tok := got.Header.Values("X-Amz-Security-Token"); len(tok) != 1 || tok[0] != "proxy-token" {
		t.Errorf("upstream X-Amz-Security-Token %q, want the proxy's only", tok)
	}
	if got.Header.Get("X-Amz-Date") == "20000101T000000Z" {
		t.Error("the client's X-Amz-Date was forwarded")
	}
	if got.Header.Get("X-Hop") != "" || got.Header.Get("X-Keep") != "keep me" {
		t.Errorf("hop-by-hop handling: X-Hop %q, X-Keep %q", got.Header.Get("X-Hop"), got.Header.Get("X-Keep"))
	}
	if string(gotBody) != body {
		t.Errorf("upstream got %d body bytes, want %d", len(gotBody), len(body))
	}
	// The client streamed the body (chunked); once spooled its length is known and
	// signed (content-length), so it must be sent as such.
	if got.ContentLength != int64(len(body)) || len(got.TransferEncoding) != 0 {
		t.Errorf("spooled body sent with ContentLength %d, Transfer-Encoding %v", got.ContentLength, got.TransferEncoding)
	}
}

func TestProxyRefusesTooLargeAndChunkSigned(t *testing.T) {
	h, err := sigv4.NewProxy(sigv4.ProxyConfig{
		Upstream:     "http://127.0.0.1:1", // never reached
		Credentials:  sigv4.StaticCredentials{AccessKeyID: "AKID", SecretAccessKey: "secret"},
		Service:      "s3",
		Region:       "us-east-1",
		MaxBodyBytes: 10,
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name   string
		req    func() *http.Request
		status int
	}{
		{"declared too large", func() *http.Request {
			return httptest.NewRequest(http.MethodPut, "/b/k", strings.NewReader("more than ten bytes"))
		}, http.StatusRequestEntityTooLarge},
		{"streamed too large", func() *http.Request {
			r := httptest.NewRequest(http.MethodPut, "/b/k", struct{ io.Reader }{strings.NewReader("more than ten bytes")})
			r.ContentLength = -1
			return r
		}, http.StatusRequestEntityTooLarge},
		{"chunk-signed", func() *http.Request {
			r := httptest.NewRequest(http.MethodPut, "/b/k", strings.NewReader("x"))
			r.Header.Set("X-Amz-Content-Sha256", sigv4.StreamingPayload)
			return r
		}, http.StatusBadRequest},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, tt.req())
			if w.Code != tt.status {
				t.Errorf("status %d, want %d: %s", w.Code, tt.status, w.Body)
			}
		})
	}
}
