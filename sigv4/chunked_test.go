package sigv4

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestSignStreamingAWSExample reproduces the chunked-upload example of the S3 API
// reference ("Signature Calculations for the Authorization Header: Transferring Payload in
// Multiple Chunks"): 66560 bytes of 'a' in 64 KiB chunks.
func TestSignStreamingAWSExample(t *testing.T) {
	body := bytes.Repeat([]byte("a"), 66560)
	req, err := http.NewRequest(http.MethodPut, "https://s3.amazonaws.com/examplebucket/chunkObject.txt", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Amz-Storage-Class", "REDUCED_REDUNDANCY")
	s := &Signer{DisableURIPathEscaping: true}
	creds := Credentials{AccessKeyID: "AKIAIOSFODNN7EXAMPLE", SecretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}
	p := Params{Service: "s3", Region: "us-east-1", Time: time.Date(2013, 5, 24, 0, 0, 0, 0, time.UTC)}
	if err := s.SignStreaming(req, creds, p, 64<<10); err != nil {
		t.Fatal(err)
	}
	wantAuth := "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, " +
		"SignedHeaders=content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;x-amz-storage-class, " +
		"Signature=4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"
	if got := req.Header.Get("Authorization"); got != wantAuth {
		t.Errorf("Authorization:\n got %s\nwant %s", got, wantAuth)
	}
	if req.ContentLength != 66824 {
		t.Errorf("ContentLength = %d, want 66824", req.ContentLength)
	}
	var want bytes.Buffer
	for _, c := range []struct {
		n   int
		sig string
	}{
		{65536, "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648"},
		{1024, "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497"},
		{0, "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9"},
	} {
		fmt.Fprintf(&want, "%x;chunk-signature=%s\r\n%s\r\n", c.n, c.sig, strings.Repeat("a", c.n))
	}
	for i, get := range []func() (io.ReadCloser, error){
		func() (io.ReadCloser, error) { return req.Body, nil },
		req.GetBody, // a resend encodes the same frames
	} {
		rc, err := get()
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(iotest1(rc))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want.Bytes()) {
			t.Errorf("body %d differs from the AWS example (%d bytes, want %d)", i, len(got), want.Len())
		}
	}
}

// iotest1 reads one byte at a time, to exercise partial reads of a frame.
func iotest1(r io.Reader) io.Reader { return &oneByte{r} }

type oneByte struct{ r io.Reader }

func (o *oneByte) Read(p []byte) (int, error) {
	if len(p) > 1 {
		p = p[:1]
	}
	return o.r.Read(p)
}

func TestSignStreamingBadBodies(t *testing.T) {
	creds := Credentials{AccessKeyID: "AKID", SecretAccessKey: "secret"}
	p := Params{Service: "s3", Region: "us-east-1"}
	tests := []struct {
		name     string
		body     string
		declared int64
		chunk    int
		wantSign string // error from SignStreaming
		wantRead string // error reading the body
	}{
		{name: "unknown length", body: "abc", declared: -1, wantSign: "needs the body length"},
		{name: "tiny chunk", body: "abc", declared: 3, chunk: 100, wantSign: "below"},
		{name: "short body", body: "abc", declared: 10, wantRead: "unexpected EOF"},
		{name: "long body", body: "abcdef", declared: 3, wantRead: "longer than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPut, "https://s3.amazonaws.com/b/k", io.NopCloser(strings.NewReader(tt.body)))
			req.ContentLength = tt.declared
			err := (&Signer{}).SignStreaming(req, creds, p, tt.chunk)
			if tt.wantSign != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantSign) {
					t.Fatalf("SignStreaming error %v, want %q", err, tt.wantSign)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			_, err = io.ReadAll(req.Body)
			if err == nil || !strings.Contains(err.Error(), tt.wantRead) {
				t.Fatalf("read error %v, want %q", err, tt.wantRead)
			}
		})
	}
}
