package sigv4_test

import (
	"bytes"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
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
		AllowedHosts: []string{"example.com"}, // httptest.NewRequest's Host
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

// countingUpstream is a loopback server that counts the requests reaching it.
func countingUpstream(t *testing.T) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, "ok")
	}))
	t.Cleanup(srv.Close)
	return srv, &hits
}

// TestProxyRefusesWebPages sends, over real connections, what a browser sends for a
// page's cross-origin form POST or after DNS rebinding, next to what curl sends.
func TestProxyRefusesWebPages(t *testing.T) {
	upstream, hits := countingUpstream(t)
	h, err := sigv4.NewProxy(sigv4.ProxyConfig{
		Upstream:     upstream.URL,
		Credentials:  sigv4.StaticCredentials{AccessKeyID: "AKID", SecretAccessKey: "secret"},
		Service:      "sts",
		Region:       "us-east-1",
		AllowedHosts: []string{"proxy.internal", "other.internal:9"},
	})
	if err != nil {
		t.Fatal(err)
	}
	proxy := httptest.NewServer(h)
	t.Cleanup(proxy.Close)
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(proxy.URL, "http://"))

	for _, tt := range []struct {
		name   string
		host   string // "" means what the client derives from the URL
		header http.Header
		want   int
	}{
		{"curl", "", nil, http.StatusOK},
		{"localhost", "localhost:" + port, nil, http.StatusOK},
		{"localhost without port", "localhost", nil, http.StatusOK},
		{"IPv6 loopback", "[::1]:" + port, nil, http.StatusOK},
		{"port forwarded", "LocalHost:18005", nil, http.StatusOK},
		{"allowed name, any port", "proxy.internal:8005", nil, http.StatusOK},
		{"allowed name and port", "other.internal:9", nil, http.StatusOK},
		{"allowed name, other port", "other.internal:10", nil, http.StatusForbidden},
		{"same-origin fetch", "", http.Header{"Sec-Fetch-Site": {"same-origin"}}, http.StatusOK},
		{"typed in the address bar", "", http.Header{"Sec-Fetch-Site": {"none"}}, http.StatusOK},
		{"DNS rebinding", "attacker.example:" + port, nil, http.StatusForbidden},
		{"rebinding, loopback-looking name", "localhost.attacker.example:" + port, nil, http.StatusForbidden},
		{"rebinding, IP-looking name", "127.0.0.1.nip.io:" + port, nil, http.StatusForbidden},
		{"cross-origin form POST", "", http.Header{"Origin": {"http://attacker.example"}}, http.StatusForbidden},
		{"opaque origin", "", http.Header{"Origin": {"null"}}, http.StatusForbidden},
		{"cross-site", "", http.Header{"Sec-Fetch-Site": {"cross-site"}}, http.StatusForbidden},
		{"same-site", "", http.Header{"Sec-Fetch-Site": {"same-site"}}, http.StatusForbidden},
		{"old browser <img> GET", "", http.Header{"Referer": {"http://attacker.example/page"}}, http.StatusForbidden},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := hits.Load()
			req, _ := http.NewRequest(http.MethodPost, proxy.URL+"/", strings.NewReader("Action=GetCallerIdentity&Version=2011-06-15"))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			for k, v := range tt.header {
				req.Header[k] = v
			}
			if tt.host != "" {
				req.Host = tt.host
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Fatalf("status %s, want %d: %s", resp.Status, tt.want, body)
			}
			if reached := hits.Load() != before; reached != (tt.want == http.StatusOK) {
				t.Errorf("upstream reached: %v, want %v", reached, tt.want == http.StatusOK)
			}
		})
	}
}

func TestProxyAllowedHostsInvalid(t *testing.T) {
	for _, host := range []string{"", "http://proxy.internal", "proxy.internal/path", ":8005", "proxy.internal:", "user@proxy.internal"} {
		_, err := sigv4.NewProxy(sigv4.ProxyConfig{
			Upstream:     "https://sqs.us-east-1.amazonaws.com",
			Credentials:  sigv4.StaticCredentials{AccessKeyID: "AKID", SecretAccessKey: "secret"},
			AllowedHosts: []string{host},
		})
		if err == nil {
			t.Errorf("AllowedHosts %q accepted", host)
		}
	}
}

// TestProxyDefaultMaxBody: without MaxBodyBytes, a body just over DefaultMaxProxyBody
// is refused for a non-S3 service and forwarded for S3.
func TestProxyDefaultMaxBody(t *testing.T) {
	body := bytes.Repeat([]byte("x"), sigv4.DefaultMaxProxyBody+1)
	for _, tt := range []struct {
		service string
		want    int
	}{
		{"sqs", http.StatusRequestEntityTooLarge},
		{"s3", http.StatusOK},
	} {
		t.Run(tt.service, func(t *testing.T) {
			upstream, hits := countingUpstream(t)
			h, err := sigv4.NewProxy(sigv4.ProxyConfig{
				Upstream:    upstream.URL,
				Credentials: sigv4.StaticCredentials{AccessKeyID: "AKID", SecretAccessKey: "secret"},
				Service:     tt.service,
				Region:      "us-east-1",
				SpoolDir:    t.TempDir(),
			})
			if err != nil {
				t.Fatal(err)
			}
			proxy := httptest.NewServer(h)
			t.Cleanup(proxy.Close)
			for _, streamed := range []bool{false, true} {
				var r io.Reader = bytes.NewReader(body)
				if streamed {
					r = struct{ io.Reader }{r} // unknown length: sent chunked, spooled by the proxy
				}
				resp, err := http.Post(proxy.URL+"/b/k", "application/octet-stream", r)
				if err != nil {
					t.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != tt.want {
					t.Errorf("streamed=%v: status %s, want %d", streamed, resp.Status, tt.want)
				}
			}
			if got, want := hits.Load() > 0, tt.want == http.StatusOK; got != want {
				t.Errorf("upstream reached: %v, want %v", got, want)
			}
		})
	}
}

// FuzzProxyRequestFilter: whatever Host, Origin and Sec-Fetch-Site a request carries,
// the proxy does not panic, and it forwards only requests without Origin, not
// cross-site or same-site, for localhost, a loopback address or an allowed host.
func FuzzProxyRequestFilter(f *testing.F) {
	f.Add("127.0.0.1:8005", "", "")
	f.Add("[::1]:8005", "", "same-origin")
	f.Add("LOCALHOST", "", "none")
	f.Add("attacker.example:8005", "", "")
	f.Add("proxy.internal:1", "null", "")
	f.Add("[fe80::1%25eth0]:80", "", "cross-site")
	f.Add("127.0.0.1.nip.io", "", "")
	h, err := sigv4.NewProxy(sigv4.ProxyConfig{
		Upstream:     "http://upstream.invalid",
		Credentials:  sigv4.StaticCredentials{AccessKeyID: "AKID", SecretAccessKey: "secret"},
		Service:      "sts",
		Region:       "us-east-1",
		AllowedHosts: []string{"proxy.internal"},
		Logger:       slog.New(slog.DiscardHandler),
		Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
			return &http.Response{StatusCode: http.StatusOK, Header: http.Header{}, Body: io.NopCloser(strings.NewReader("ok")), Request: r}, nil
		}),
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, host, origin, fetchSite string) {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Host = host
		if origin != "" {
			r.Header.Set("Origin", origin)
		}
		if fetchSite != "" {
			r.Header.Set("Sec-Fetch-Site", fetchSite)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusOK {
			return
		}
		if origin != "" || strings.EqualFold(fetchSite, "cross-site") || strings.EqualFold(fetchSite, "same-site") {
			t.Errorf("forwarded a browser's cross-origin request: Origin %q, Sec-Fetch-Site %q", origin, fetchSite)
		}
		name := strings.ToLower(host)
		if h, _, err := net.SplitHostPort(name); err == nil {
			name = h
		}
		name = strings.TrimSuffix(strings.TrimPrefix(name, "["), "]")
		if ip := net.ParseIP(name); name != "localhost" && name != "proxy.internal" && (ip == nil || !ip.IsLoopback()) {
			t.Errorf("forwarded a request for Host %q", host)
		}
	})
}
