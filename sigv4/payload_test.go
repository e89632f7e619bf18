package sigv4

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

var testCreds = Credentials{AccessKeyID: "AKID", SecretAccessKey: "secret"}

func testParams() Params {
	return Params{Service: "s3", Region: "us-east-1", Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
}

// onceReader is a body that can be read only once and says nothing about its length.
type onceReader struct{ io.Reader }

func (onceReader) Close() error { return nil }

func hexSum(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

func TestSignHashesBody(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789abcdef"), 5000) // 80 KB
	tests := []struct {
		name      string
		body      []byte
		rereadble bool
		threshold int64
		spooled   bool // the body is replaced by a spooled copy
	}{
		{"re-readable", big, true, 1 << 10, false},
		{"once, in memory", big, false, 1 << 20, true},
		{"once, past threshold: file", big, false, 1 << 10, true},
		{"once, empty", nil, false, 1 << 10, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			s := &Signer{ContentSHA256Header: true, SpoolThreshold: tt.threshold, SpoolDir: dir}
			var req *http.Request
			if tt.rereadble {
				req, _ = http.NewRequest(http.MethodPut, "https://s3.amazonaws.com/b/k", bytes.NewReader(tt.body))
			} else {
				req, _ = http.NewRequest(http.MethodPut, "https://s3.amazonaws.com/b/k", onceReader{bytes.NewReader(tt.body)})
			}
			orig := req.Body
			if err := s.Sign(req, testCreds, testParams()); err != nil {
				t.Fatal(err)
			}
			if got, want := req.Header.Get("X-Amz-Content-Sha256"), hexSum(tt.body); got != want {
				t.Fatalf("payload hash %s, want %s", got, want)
			}
			if (req.Body != orig) != tt.spooled {
				t.Fatalf("body replaced = %v, want %v", req.Body != orig, tt.spooled)
			}
			if req.ContentLength != int64(len(tt.body)) {
				t.Errorf("ContentLength = %d, want %d", req.ContentLength, len(tt.body))
			}
			// The body still carries every byte, and GetBody gives them again.
			again, err := req.GetBody()
			if err != nil {
				t.Fatal(err)
			}
			for i, b := range []io.ReadCloser{req.Body, again} {
				got, err := io.ReadAll(b)
				if err != nil || !bytes.Equal(got, tt.body) {
					t.Fatalf("read %d: %d bytes, %v; want %d bytes", i, len(got), err, len(tt.body))
				}
				b.Close()
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 0 {
				t.Errorf("spool left %d files in %s", len(entries), dir)
			}
			// A spool file is gone once every body is closed; memory stays re-readable.
			_, err = req.GetBody()
			if inFile := tt.spooled && int64(len(tt.body)) > tt.threshold; inFile != errors.Is(err, errSpoolReleased) {
				t.Errorf("GetBody after every body closed: %v (spooled to a file: %v)", err, inFile)
			}
		})
	}
}

func TestSignPayloadHashSources(t *testing.T) {
	const given = "4d5f9c8bd4ad8e5e3a0e1c2d0f1b7e6a9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f"
	tests := []struct {
		name   string
		param  string
		header string
		want   string
	}{
		{"param wins", given, UnsignedPayload, given},
		{"caller header", "", UnsignedPayload, UnsignedPayload},
		{"caller hash", "", given, given},
		{"hashed", "", "", hexSum([]byte("body"))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var cr string
			s := &Signer{DisableURIPathEscaping: true}
			s.debug = func(c, _ string) { cr = c }
			req, _ := http.NewRequest(http.MethodPut, "https://s3.amazonaws.com/b/k", onceReader{strings.NewReader("body")})
			if tt.header != "" {
				req.Header.Set("X-Amz-Content-Sha256", tt.header)
			}
			p := testParams()
			p.PayloadHash = tt.param
			if err := s.Sign(req, testCreds, p); err != nil {
				t.Fatal(err)
			}
			if !strings.HasSuffix(cr, "\n"+tt.want) {
				t.Errorf("canonical request ends %q, want payload hash %s", cr[strings.LastIndexByte(cr, '\n'):], tt.want)
			}
		})
	}
}

func TestSignBadBodies(t *testing.T) {
	failing := errors.New("disk on fire")
	tests := []struct {
		name string
		req  func() *http.Request
		want string
	}{
		{"shorter than ContentLength", func() *http.Request {
			r, _ := http.NewRequest(http.MethodPut, "https://s3.amazonaws.com/b/k", onceReader{strings.NewReader("abc")})
			r.ContentLength = 10
			return r
		}, "ContentLength says 10"},
		{"read error", func() *http.Request {
			r, _ := http.NewRequest(http.MethodPut, "https://s3.amazonaws.com/b/k", onceReader{io.MultiReader(strings.NewReader("abc"), errReader{failing})})
			return r
		}, "disk on fire"},
		{"GetBody error", func() *http.Request {
			r, _ := http.NewRequest(http.MethodPut, "https://s3.amazonaws.com/b/k", strings.NewReader("abc"))
			r.GetBody = func() (io.ReadCloser, error) { return nil, failing }
			return r
		}, "disk on fire"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := (&Signer{}).Sign(tt.req(), testCreds, testParams())
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Sign error %v, want %q", err, tt.want)
			}
		})
	}
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

func TestSignRejectsBadInput(t *testing.T) {
	req := func() *http.Request {
		r, _ := http.NewRequest(http.MethodGet, "https://sts.amazonaws.com/", nil)
		return r
	}
	tests := []struct {
		name  string
		creds Credentials
		p     Params
		want  string
	}{
		{"no keys", Credentials{AccessKeyID: "AKID"}, testParams(), "no access key pair"},
		{"no region", testCreds, Params{Service: "sts"}, "must both be set"},
		{"slash in service", testCreds, Params{Service: "s/3", Region: "us-east-1"}, "contains"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := (&Signer{}).Sign(req(), tt.creds, tt.p)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Sign error %v, want %q", err, tt.want)
			}
			if err != nil && strings.Contains(err.Error(), "secret") {
				t.Errorf("error mentions the secret: %v", err)
			}
		})
	}
	p := testParams()
	for _, exp := range []time.Duration{0, time.Millisecond, 8 * 24 * time.Hour} {
		p.Expires = exp
		if _, err := (&Signer{}).Presign(req(), testCreds, p); err == nil {
			t.Errorf("Presign with Expires %v succeeded", exp)
		}
	}
	// Presign must not consume a body it cannot give back.
	r, _ := http.NewRequest(http.MethodPut, "https://s3.amazonaws.com/b/k", onceReader{strings.NewReader("abc")})
	p.Expires = time.Hour
	if _, err := (&Signer{}).Presign(r, testCreds, p); err == nil {
		t.Error("Presign hashed a body that cannot be re-read")
	}
	if b, _ := io.ReadAll(r.Body); string(b) != "abc" {
		t.Errorf("Presign consumed the body: %q left", b)
	}
}

func TestCredentialsRedacted(t *testing.T) {
	c := Credentials{AccessKeyID: "AKID", SecretAccessKey: "very-secret", SessionToken: "token-secret"}
	for _, s := range []string{c.String(), c.GoString()} {
		if strings.Contains(s, "secret") && strings.Contains(s, "very-secret") || strings.Contains(s, "token-secret") {
			t.Errorf("credentials leak a secret: %s", s)
		}
	}
}

func TestClockSkewLearned(t *testing.T) {
	s := &Signer{Now: func() time.Time { return time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC) }}
	s.SetClockSkew(90 * time.Minute)
	req, _ := http.NewRequest(http.MethodGet, "https://sts.amazonaws.com/", nil)
	if err := s.Sign(req, testCreds, Params{Service: "sts", Region: "us-east-1"}); err != nil {
		t.Fatal(err)
	}
	if got := req.Header.Get("X-Amz-Date"); got != "20260101T013000Z" {
		t.Errorf("X-Amz-Date = %s, want the clock plus 90 minutes", got)
	}
}
