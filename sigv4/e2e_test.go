package sigv4_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/chancery/chancery/internal/testenv"
	"github.com/chancery/chancery/sigv4"
)

// These tests sign requests for a real moto server that checks every signature.

func motoCreds(m *testenv.MotoServer) sigv4.CredentialsProvider {
	return sigv4.StaticCredentials{AccessKeyID: m.AccessKeyID, SecretAccessKey: m.SecretAccessKey}
}

// payload is n deterministic pseudo-random bytes, generated as they are read and never
// held in memory; wrapped so that nothing can tell it is re-readable.
func payload(seed uint64, n int64) io.Reader {
	return struct{ io.Reader }{io.LimitReader(rand.NewChaCha8([32]byte{byte(seed)}), n)}
}

func payloadSum(t *testing.T, seed uint64, n int64) [sha256.Size]byte {
	t.Helper()
	h := sha256.New()
	if _, err := io.Copy(h, payload(seed, n)); err != nil {
		t.Fatal(err)
	}
	var s [sha256.Size]byte
	h.Sum(s[:0])
	return s
}

func do(t *testing.T, c *http.Client, method, u string, body io.Reader, length int64) (int, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	if length > 0 {
		req.ContentLength = length
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

// getSum streams an object back and hashes it.
func getSum(t *testing.T, c *http.Client, u string) [sha256.Size]byte {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		t.Fatalf("GET %s: %s: %s", u, resp.Status, b)
	}
	h := sha256.New()
	if _, err := io.Copy(h, resp.Body); err != nil {
		t.Fatal(err)
	}
	var s [sha256.Size]byte
	h.Sum(s[:0])
	return s
}

func TestTransportS3Moto(t *testing.T) {
	m := testenv.Moto(t)
	newClient := func(mode sigv4.PayloadMode) *http.Client {
		return &http.Client{Transport: &sigv4.Transport{
			Credentials: motoCreds(m), Service: "s3", Region: m.Region, Payload: mode,
			SpoolDir: t.TempDir(),
		}}
	}
	c := newClient(sigv4.PayloadSigned)
	bucket := m.URL + "/chancery-sigv4-test"
	if code, body := do(t, c, http.MethodPut, bucket, nil, 0); code != http.StatusOK {
		t.Fatalf("CreateBucket: %d %s", code, body)
	}
	tests := []struct {
		name string
		mode sigv4.PayloadMode
		size int64
		// known: the length is given, so streaming needs no spool
		known bool
	}{
		{"signed-spooled-64MiB", sigv4.PayloadSigned, 64 << 20, false},
		{"streaming-chunked", sigv4.PayloadStreaming, 9<<20 + 123, true},
		{"unsigned-payload", sigv4.PayloadUnsigned, 3<<20 + 7, true},
		{"empty", sigv4.PayloadSigned, 0, true},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClient(tt.mode)
			// moto re-quotes the decoded path before checking a signature and gets
			// UTF-8, '+' and the sub-delims wrong (S3 encodes them all); a space and '~'
			// it gets right. The encoding itself is checked against the SDK.
			obj := bucket + "/dir/" + url.PathEscape("odd name~") + "-" + tt.name
			var length int64
			if tt.known {
				length = tt.size
			}
			var body io.Reader
			if tt.size > 0 {
				body = payload(uint64(i), tt.size)
			}
			if code, resp := do(t, c, http.MethodPut, obj, body, length); code != http.StatusOK {
				t.Fatalf("PutObject: %d %s", code, resp)
			}
			if got, want := getSum(t, c, obj), payloadSum(t, uint64(i), tt.size); got != want {
				t.Fatalf("object read back differs from what was written")
			}
		})
	}

}

const getCallerIdentity = "Action=GetCallerIdentity&Version=2011-06-15"

func TestTransportSTSAndSQSMoto(t *testing.T) {
	m := testenv.Moto(t)
	for _, tt := range []struct {
		service, body, want string
	}{
		{"sts", getCallerIdentity, "arn:aws:iam::" + m.AccountID + ":user/admin"},
		{"sqs", "Action=CreateQueue&QueueName=chancery-sigv4&Version=2012-11-05", "chancery-sigv4"},
	} {
		t.Run(tt.service, func(t *testing.T) {
			c := &http.Client{Transport: &sigv4.Transport{Credentials: motoCreds(m), Service: tt.service, Region: m.Region}}
			req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, m.URL+"/", strings.NewReader(tt.body))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
			if resp.StatusCode != http.StatusOK || !bytes.Contains(b, []byte(tt.want)) {
				t.Fatalf("%s: %s %s", tt.service, resp.Status, b)
			}
			if req.Header.Get("Authorization") != "" {
				t.Error("Transport modified the caller's request")
			}
		})
	}
}

func TestWrongSecretRefusedMoto(t *testing.T) {
	m := testenv.Moto(t)
	wrong := sigv4.StaticCredentials{AccessKeyID: m.AccessKeyID, SecretAccessKey: m.SecretAccessKey + "x"}
	for _, svc := range []string{"sts", "s3"} {
		t.Run(svc, func(t *testing.T) {
			c := &http.Client{Transport: &sigv4.Transport{Credentials: wrong, Service: svc, Region: m.Region}}
			var code int
			var body []byte
			if svc == "sts" {
				code, body = do(t, c, http.MethodPost, m.URL+"/?"+getCallerIdentity, nil, 0)
			} else {
				code, body = do(t, c, http.MethodGet, m.URL+"/", nil, 0)
			}
			if code != http.StatusForbidden {
				t.Fatalf("request signed with a wrong secret: status %d, want 403: %s", code, body)
			}
		})
	}
}

func TestProxyMoto(t *testing.T) {
	m := testenv.Moto(t)
	newProxy := func(service string, mode sigv4.PayloadMode) *httptest.Server {
		h, err := sigv4.NewProxy(sigv4.ProxyConfig{
			Upstream: m.URL, Credentials: motoCreds(m), Service: service, Region: m.Region,
			Payload: mode, SpoolDir: t.TempDir(),
		})
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(h)
		t.Cleanup(srv.Close)
		return srv
	}
	plain := &http.Client{}

	t.Run("sts", func(t *testing.T) {
		p := newProxy("sts", sigv4.PayloadSigned)
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, p.URL+"/", strings.NewReader(getCallerIdentity))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		// A client's own (bogus) signature is replaced, not forwarded.
		req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKIABOGUS/20000101/us-east-1/sts/aws4_request, SignedHeaders=host, Signature=00")
		req.Header.Set("X-Amz-Security-Token", "bogus")
		req.Header.Set("Connection", "keep-alive, X-Hop")
		req.Header.Set("X-Hop", "must not be forwarded")
		resp, err := plain.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if resp.StatusCode != http.StatusOK || !bytes.Contains(b, []byte(":user/admin")) {
			t.Fatalf("GetCallerIdentity through the proxy: %s %s", resp.Status, b)
		}
	})

	for _, tt := range []struct {
		name  string
		mode  sigv4.PayloadMode
		size  int64
		known bool // false: the client streams the body chunked, length unknown
	}{
		{"signed-64MiB", sigv4.PayloadSigned, 64 << 20, true},
		{"streaming-64MiB", sigv4.PayloadStreaming, 64 << 20, true},
		{"signed-chunked-client", sigv4.PayloadSigned, 5<<20 + 1, false},
	} {
		t.Run("s3-"+tt.name, func(t *testing.T) {
			p := newProxy("s3", tt.mode)
			bucket := p.URL + "/chancery-proxy-" + tt.name
			if code, body := do(t, plain, http.MethodPut, bucket, nil, 0); code != http.StatusOK {
				t.Fatalf("CreateBucket through the proxy: %d %s", code, body)
			}
			obj := bucket + "/big"
			var length int64
			if tt.known {
				length = tt.size
			}
			if code, body := do(t, plain, http.MethodPut, obj, payload(99, tt.size), length); code != http.StatusOK {
				t.Fatalf("PutObject through the proxy: %d %s", code, body)
			}
			if getSum(t, plain, obj) != payloadSum(t, 99, tt.size) {
				t.Fatal("object read back through the proxy differs")
			}
		})
	}
}

func TestNewProxyRejectsBadConfig(t *testing.T) {
	creds := sigv4.StaticCredentials{AccessKeyID: "AKID", SecretAccessKey: "secret"}
	for _, cfg := range []sigv4.ProxyConfig{
		{Upstream: "https://sqs.us-east-1.amazonaws.com"},                      // no credentials
		{Upstream: "sqs.us-east-1.amazonaws.com", Credentials: creds},          // not absolute
		{Upstream: "ftp://sqs.us-east-1.amazonaws.com", Credentials: creds},    // scheme
		{Upstream: "http://localhost:4566", Credentials: creds},                // no service/region
		{Upstream: "http://localhost:4566", Credentials: creds, Service: "s3"}, // no region
		{Upstream: "http://[::1", Credentials: creds},                          // unparsable
	} {
		if _, err := sigv4.NewProxy(cfg); err == nil {
			t.Errorf("NewProxy(%+v) succeeded, want an error", cfg.Upstream)
		}
	}
	if _, err := sigv4.NewProxy(sigv4.ProxyConfig{Upstream: "https://sqs.eu-west-1.amazonaws.com", Credentials: creds}); err != nil {
		t.Errorf("NewProxy with an inferable upstream: %v", err)
	}
	_ = context.Background
}
