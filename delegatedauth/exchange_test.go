package delegatedauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// testBroker is an httptest intake-key endpoint whose behaviour a test switches.
type testBroker struct {
	*httptest.Server
	calls atomic.Int32

	mu      sync.Mutex
	handler http.HandlerFunc
	auth    []string // Authorization headers received
}

func newTestBroker(t *testing.T, h http.HandlerFunc) *testBroker {
	t.Helper()
	b := &testBroker{handler: h}
	b.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.calls.Add(1)
		b.mu.Lock()
		h := b.handler
		b.auth = append(b.auth, r.Header.Get("Authorization"))
		b.mu.Unlock()
		if r.Method != http.MethodPost || r.URL.Path != IntakeKeyPath {
			http.Error(w, "wrong method or path", http.StatusNotFound)
			return
		}
		h(w, r)
	}))
	t.Cleanup(b.Close)
	return b
}

func (b *testBroker) set(h http.HandlerFunc) {
	b.mu.Lock()
	b.handler = h
	b.mu.Unlock()
}

func (b *testBroker) lastAuth() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.auth) == 0 {
		return ""
	}
	return b.auth[len(b.auth)-1]
}

// keyReplyHandler answers with key, and expires when it is not empty.
func keyReplyHandler(key, expires string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		attrs := fmt.Sprintf(`"api_key":%q`, key)
		if expires != "" {
			attrs += fmt.Sprintf(`,"expires_at":%q`, expires)
		}
		fmt.Fprintf(w, `{"data":{"type":"intake_key","id":"1","attributes":{%s}}}`, attrs)
	}
}

func errorReplyHandler(status int, title string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/vnd.api+json")
		w.WriteHeader(status)
		jt, _ := json.Marshal(title)
		fmt.Fprintf(w, `{"errors":[{"status":"%d","title":%s}]}`, status, jt)
	}
}

// fixedProver returns the same proof every time, for tests about the exchange only.
type fixedProver struct{ p Proof }

func (f fixedProver) Proof(ctx context.Context) (Proof, error) { return f.p, ctx.Err() }

const testKey = "chk_0123456789abcdefghijklmnopqrstuv"

func TestExchangeSuccess(t *testing.T) {
	expires := time.Date(2026, 11, 23, 13, 0, 0, 0, time.UTC)
	tests := []struct {
		name        string
		expires     string
		wantExpires time.Time
	}{
		{"datadog shape, no expiry", "", time.Time{}},
		{"chancery broker, with expiry", expires.Format(time.RFC3339), expires},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newTestBroker(t, keyReplyHandler(testKey, tt.expires))
			proof := sampleProof()
			e := &Exchanger{Server: b.URL, Prover: fixedProver{proof}}
			k, err := e.Key(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if k.APIKey.Reveal() != testKey || !k.Managed || !k.Expires.Equal(tt.wantExpires) {
				t.Fatalf("key = %+v, want %s managed, expires %v", k, testKey, tt.wantExpires)
			}
			if got, want := b.lastAuth(), "Delegated "+proof.Encode(); got != want {
				t.Fatalf("Authorization = %q, want %q", got, want)
			}
		})
	}
}

func TestExchangeServerWithPathPrefix(t *testing.T) {
	var path string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path = r.URL.Path
		keyReplyHandler(testKey, "")(w, r)
	}))
	defer srv.Close()
	e := &Exchanger{Server: srv.URL + "/chancery/", Prover: fixedProver{sampleProof()}}
	if _, err := e.Key(context.Background()); err != nil {
		t.Fatal(err)
	}
	if path != "/chancery"+IntakeKeyPath {
		t.Fatalf("path = %q", path)
	}
}

func TestExchangeRefusals(t *testing.T) {
	proof := sampleProof()
	tests := []struct {
		name      string
		handler   http.HandlerFunc
		status    int    // want an *ExchangeError with this status; 0: another error
		want      string // in the error text
		temporary bool
	}{
		{"403 JSON:API", errorReplyHandler(http.StatusForbidden, "arn:aws:iam::123456789012:user/x is not bound to org acme"),
			403, "broker answered 403 Forbidden: arn:aws:iam::123456789012:user/x is not bound to org acme", false},
		{"401 with detail", func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"errors":[{"status":"401","title":"Invalid proof","detail":"signature expired"}]}`)
		}, 401, "401 Unauthorized: Invalid proof (signature expired)", false},
		{"500 not JSON", func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, "<html>upstream exploded, proof was "+proof.Encode()+"</html>", http.StatusInternalServerError)
		}, 500, "broker answered 500 Internal Server Error", true},
		{"429", errorReplyHandler(http.StatusTooManyRequests, "slow down"), 429, "429 Too Many Requests: slow down", true},
		{"title with control characters", errorReplyHandler(http.StatusForbidden, "bad\r\nX-Injected: 1\x1b[31m"),
			403, "bad" + "X-Injected: 1[31m", false},
		{"200 not JSON", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "OK") }, 0, "not a JSON key document", false},
		{"200 without key", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, `{"data":{"attributes":{}}}`) }, 0, "no data.attributes.api_key", false},
		{"oversized reply", func(w http.ResponseWriter, _ *http.Request) {
			fmt.Fprintf(w, `{"data":{"attributes":{"api_key":"%s"}}}`, strings.Repeat("k", MaxReplyLen))
		}, 0, "reply larger than 1048576 bytes", false},
		{"redirect not followed", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "http://127.0.0.1:1/steal", http.StatusTemporaryRedirect)
		}, 307, "broker answered 307 Temporary Redirect", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newTestBroker(t, tt.handler)
			_, err := (&Exchanger{Server: b.URL, Prover: fixedProver{proof}}).Key(context.Background())
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
			var xe *ExchangeError
			if tt.status != 0 {
				if !errors.As(err, &xe) || xe.StatusCode != tt.status || xe.Temporary() != tt.temporary {
					t.Fatalf("err = %#v, want *ExchangeError with status %d, temporary %v", err, tt.status, tt.temporary)
				}
			} else if errors.As(err, &xe) {
				t.Fatalf("err = %v is an ExchangeError; a 2xx reply is not a refusal", err)
			}
			for _, secret := range []string{proof.Encode(), "kkkkkkkkkk", "Delegated"} {
				if strings.Contains(err.Error(), secret) {
					t.Fatalf("error %q leaks %q", err, shorten(secret, 20))
				}
			}
		})
	}
}

func TestExchangeHonoursContextAndTimeout(t *testing.T) {
	release := make(chan struct{})
	b := newTestBroker(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	defer close(release)

	t.Run("cancel", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			_, err := (&Exchanger{Server: b.URL, Prover: fixedProver{sampleProof()}}).Key(ctx)
			done <- err
		}()
		for b.calls.Load() == 0 { // the request has reached the broker
			time.Sleep(time.Millisecond)
		}
		cancel()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("err = %v, want context.Canceled", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("exchange did not return after cancel")
		}
	})
	t.Run("timeout", func(t *testing.T) {
		e := &Exchanger{Server: b.URL, Prover: fixedProver{sampleProof()}, Timeout: 50 * time.Millisecond}
		if _, err := e.Key(context.Background()); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want context.DeadlineExceeded", err)
		}
	})
}

func TestExchangeBadServerURL(t *testing.T) {
	for _, server := range []string{"", "broker:8080", "ftp://broker", "https://user:pw@broker", "https://broker/?q=1", "http://%zz"} {
		_, err := (&Exchanger{Server: server, Prover: fixedProver{sampleProof()}}).Key(context.Background())
		if err == nil || strings.Contains(err.Error(), "pw@") {
			t.Errorf("server %q: err = %v, want a refusal without the password", server, err)
		}
	}
}

func TestParseExchangeReply(t *testing.T) {
	tests := []struct {
		name   string
		status int
		body   string
		want   string // error text; "" means success
	}{
		{"ok", 200, `{"data":{"attributes":{"api_key":"` + testKey + `"}}}`, ""},
		{"ok 201 trailing newline", 201, `{"data":{"attributes":{"api_key":"` + testKey + `"}}}` + "\n", ""},
		{"empty", 200, ``, "empty or truncated"},
		{"truncated", 200, `{"data":{"attr`, "empty or truncated"},
		{"syntax", 200, `{"data":}`, "syntax error at offset"},
		{"array", 200, `[1]`, "wrong type"},
		{"api_key number", 200, `{"data":{"attributes":{"api_key":12345}}}`, "wrong type"},
		{"trailing data", 200, `{"data":{"attributes":{"api_key":"a"}}} {"x":1}`, "data after the JSON document"},
		{"no data", 200, `{}`, "no data.attributes.api_key"},
		{"null key", 200, `{"data":{"attributes":{"api_key":null}}}`, "no data.attributes.api_key"},
		{"empty key", 200, `{"data":{"attributes":{"api_key":""}}}`, "api_key is empty"},
		{"key with space", 200, `{"data":{"attributes":{"api_key":"abc def"}}}`, "not printable ASCII at offset 3"},
		{"key with newline", 200, `{"data":{"attributes":{"api_key":"abc\ndef"}}}`, "not printable ASCII"},
		{"key too long", 200, `{"data":{"attributes":{"api_key":"` + strings.Repeat("a", maxAPIKeyLen+1) + `"}}}`, "longer than"},
		{"bad expiry", 200, `{"data":{"attributes":{"api_key":"abc","expires_at":"tomorrow"}}}`, `expires_at "tomorrow" is not RFC 3339`},
		{"expiry wrong type", 200, `{"data":{"attributes":{"api_key":"abc","expires_at":5}}}`, "wrong type"},
		{"error without body", 502, ``, "broker answered 502 Bad Gateway"},
		{"error odd status", 599, `{"errors":[]}`, "broker answered 599"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := ParseExchangeReply(tt.status, []byte(tt.body))
			if tt.want == "" {
				if err != nil || k.APIKey.Reveal() != testKey {
					t.Fatalf("got %v, %v", k, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "abc") {
				t.Fatalf("error %q quotes the key", err)
			}
		})
	}
}

func FuzzParseExchangeReply(f *testing.F) {
	f.Add(200, []byte(`{"data":{"attributes":{"api_key":"`+testKey+`","expires_at":"2026-11-23T13:00:00Z"}}}`))
	f.Add(403, []byte(`{"errors":[{"status":"403","title":"no"}]}`))
	f.Add(500, []byte(`<html>`))
	f.Add(200, []byte(`{"data":{"attributes":{"api_key":"a\u0000"}}}`))
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		k, err := ParseExchangeReply(status, body)
		ok := status >= 200 && status <= 299
		if !ok {
			var xe *ExchangeError
			if !errors.As(err, &xe) || xe.StatusCode != status {
				t.Fatalf("status %d: err = %v, want *ExchangeError", status, err)
			}
			if strings.ContainsAny(xe.Error(), "\r\n\x00\x1b") || len(xe.Title) > maxTitleLen+len("…") {
				t.Fatalf("unclean error %q", xe.Error())
			}
			return
		}
		if err != nil {
			return
		}
		if checkAPIKey(k.APIKey.Reveal()) != nil || !k.Managed {
			t.Fatalf("accepted a bad key: %q", k.APIKey.Reveal())
		}
	})
}
