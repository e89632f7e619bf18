package awscreds

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// fakeIMDS plays the IMDSv2 protocol: tokens from PUT /latest/api/token, 401 for a
// missing or revoked token, the role list, then the role's credentials.
type fakeIMDS struct {
	mu         sync.Mutex
	tokens     map[string]bool
	puts       int
	gets       int
	ttlHeaders []string
	role       string // "" → 404 on the role list
	doc        map[string]any
	failNext   int // answer 500 to this many GETs first
	putStatus  int // non-zero: answer PUTs with this status
}

func newFakeIMDS(t *testing.T) (*fakeIMDS, *httptest.Server) {
	f := &fakeIMDS{
		tokens: map[string]bool{},
		role:   "app-role",
		doc: map[string]any{
			"Code": "Success", "Type": "AWS-HMAC", "AccessKeyId": "ASIAIMDS", "SecretAccessKey": "imds-secret",
			"Token": "imds-session", "Expiration": time.Now().Add(6 * time.Hour).UTC().Format(time.RFC3339),
		},
	}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv
}

func (f *fakeIMDS) revokeTokens() {
	f.mu.Lock()
	f.tokens = map[string]bool{}
	f.mu.Unlock()
}

func (f *fakeIMDS) counts() (puts, gets int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.puts, f.gets
}

func (f *fakeIMDS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r.Method == http.MethodPut && r.URL.Path == "/latest/api/token" {
		f.puts++
		ttl := r.Header.Get("X-Aws-Ec2-Metadata-Token-Ttl-Seconds")
		f.ttlHeaders = append(f.ttlHeaders, ttl)
		if f.putStatus != 0 {
			w.WriteHeader(f.putStatus)
			return
		}
		if ttl == "" {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		tok := fmt.Sprintf("token-%d", f.puts)
		f.tokens[tok] = true
		fmt.Fprint(w, tok)
		return
	}
	if r.Method != http.MethodGet {
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	f.gets++
	if !f.tokens[r.Header.Get("X-Aws-Ec2-Metadata-Token")] {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if f.failNext > 0 {
		f.failNext--
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	switch r.URL.Path {
	case "/latest/meta-data/iam/security-credentials/":
		if f.role == "" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprintln(w, f.role)
	case "/latest/meta-data/iam/security-credentials/" + f.role:
		json.NewEncoder(w).Encode(f.doc)
	default:
		http.NotFound(w, r)
	}
}

func TestIMDSTokenFlow(t *testing.T) {
	f, srv := newFakeIMDS(t)
	t.Setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", srv.URL)
	t.Setenv("AWS_EC2_METADATA_DISABLED", "")
	m := &IMDS{}
	for range 2 {
		creds := mustRetrieve(t, m)
		if creds.AccessKeyID != "ASIAIMDS" || creds.SecretAccessKey != "imds-secret" || creds.SessionToken != "imds-session" || !creds.CanExpire || creds.Source != SourceIMDS {
			t.Fatalf("credentials = %v", creds)
		}
	}
	puts, gets := f.counts()
	if puts != 1 || gets != 4 {
		t.Errorf("token PUTs = %d, GETs = %d; want 1 cached token for 4 GETs", puts, gets)
	}
	if f.ttlHeaders[0] != "21600" {
		t.Errorf("token TTL header = %q, want 21600", f.ttlHeaders[0])
	}
}

func TestIMDSRetokensOn401(t *testing.T) {
	f, srv := newFakeIMDS(t)
	m := &IMDS{Endpoint: srv.URL, TokenTTL: time.Minute}
	mustRetrieve(t, m)
	f.revokeTokens() // as when the token expired server-side or the instance rebooted
	mustRetrieve(t, m)
	puts, _ := f.counts()
	if puts != 2 {
		t.Errorf("token PUTs = %d, want 2 (re-token after 401)", puts)
	}
	if f.ttlHeaders[1] != "60" {
		t.Errorf("token TTL header = %q, want 60", f.ttlHeaders[1])
	}
}

func TestIMDSDisabled(t *testing.T) {
	for _, v := range []string{"true", "TRUE", "True"} {
		t.Run(v, func(t *testing.T) {
			f, srv := newFakeIMDS(t)
			t.Setenv("AWS_EC2_METADATA_DISABLED", v)
			_, err := (&IMDS{Endpoint: srv.URL}).Retrieve(context.Background())
			if !errors.Is(err, ErrNotConfigured) {
				t.Errorf("Retrieve with AWS_EC2_METADATA_DISABLED=%s: %v, want ErrNotConfigured", v, err)
			}
			if puts, gets := f.counts(); puts+gets != 0 {
				t.Errorf("disabled IMDS was contacted (%d PUTs, %d GETs)", puts, gets)
			}
		})
	}
}

func TestIMDSEndpointSelection(t *testing.T) {
	tests := []struct {
		name, field, env, mode, want string
		wantErr                      bool
	}{
		{name: "default", want: "http://169.254.169.254"},
		{name: "ipv6 mode", mode: "IPv6", want: "http://[fd00:ec2::254]"},
		{name: "env", env: "http://127.0.0.1:1338/", want: "http://127.0.0.1:1338"},
		{name: "field wins", field: "http://10.0.0.1", env: "http://127.0.0.1:1338", want: "http://10.0.0.1"},
		{name: "bad mode", mode: "IPv5", wantErr: true},
		{name: "bad url", env: "169.254.169.254", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", tt.env)
			t.Setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE", tt.mode)
			got, err := (&IMDS{Endpoint: tt.field}).endpoint()
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("endpoint() = %q, %v; want %q (error %v)", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestIMDSErrors(t *testing.T) {
	tests := []struct {
		name          string
		setup         func(*fakeIMDS)
		notConfigured bool
		wantInErr     string
	}{
		{name: "no role attached", setup: func(f *fakeIMDS) { f.role = "" }, notConfigured: true},
		{name: "error code", setup: func(f *fakeIMDS) { f.doc = map[string]any{"Code": "AssumeRoleUnauthorizedAccess", "Message": "denied"} }, wantInErr: "AssumeRoleUnauthorizedAccess"},
		{name: "no keys", setup: func(f *fakeIMDS) { f.doc = map[string]any{"Code": "Success"} }, wantInErr: "lacks AccessKeyId"},
		{name: "token forbidden", setup: func(f *fakeIMDS) { f.putStatus = http.StatusForbidden }, wantInErr: "HTTP 403"},
		{name: "server errors exhaust retries", setup: func(f *fakeIMDS) { f.failNext = 100 }, wantInErr: "HTTP 500"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, srv := newFakeIMDS(t)
			tt.setup(f)
			_, err := (&IMDS{Endpoint: srv.URL}).Retrieve(context.Background())
			if err == nil {
				t.Fatal("Retrieve succeeded, want error")
			}
			if errors.Is(err, ErrNotConfigured) != tt.notConfigured {
				t.Errorf("errors.Is(%v, ErrNotConfigured) = %v, want %v", err, !tt.notConfigured, tt.notConfigured)
			}
			if !strings.Contains(err.Error(), tt.wantInErr) {
				t.Errorf("error %q does not mention %q", err, tt.wantInErr)
			}
			if strings.Contains(err.Error(), "imds-secret") {
				t.Errorf("error leaks the secret: %v", err)
			}
		})
	}
}

func TestIMDSRetriesServerErrors(t *testing.T) {
	f, srv := newFakeIMDS(t)
	f.failNext = 2
	if creds := mustRetrieve(t, &IMDS{Endpoint: srv.URL}); creds.AccessKeyID != "ASIAIMDS" {
		t.Errorf("credentials = %v", creds)
	}
}

type countingTransport struct {
	calls atomic.Int32
	next  http.RoundTripper
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.calls.Add(1)
	return c.next.RoundTrip(r)
}

func TestIMDSConnectionRefusedNotRetried(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	endpoint := "http://" + l.Addr().String()
	l.Close()
	tr := &countingTransport{next: http.DefaultTransport}
	_, err = (&IMDS{Endpoint: endpoint, HTTPClient: &http.Client{Transport: tr}}).Retrieve(context.Background())
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("Retrieve = %v, want connection refused", err)
	}
	if n := tr.calls.Load(); n != 1 {
		t.Errorf("requests = %d, want 1: a refused connection is not retried", n)
	}
}
