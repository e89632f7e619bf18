package awscreds

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeContainerEndpoint plays the ECS agent: it wants a fixed Authorization value.
type fakeContainerEndpoint struct {
	mu        sync.Mutex
	wantAuth  string
	gotAuth   []string
	gotHost   []string
	status    int
	failFirst int
}

func (f *fakeContainerEndpoint) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gotAuth = append(f.gotAuth, r.Header.Get("Authorization"))
	f.gotHost = append(f.gotHost, r.Host)
	if f.failFirst > 0 {
		f.failFirst--
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	if f.wantAuth != "" && r.Header.Get("Authorization") != f.wantAuth {
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, `{"code":"AccessDenied","message":"bad token"}`)
		return
	}
	if r.URL.Path != "/v2/credentials/abc" {
		http.NotFound(w, r)
		return
	}
	fmt.Fprintf(w, `{"AccessKeyId":"ASIAECS","SecretAccessKey":"ecs-secret","Token":"ecs-token","Expiration":%q,"RoleArn":"arn:aws:iam::123456789012:role/task"}`,
		time.Now().Add(time.Hour).UTC().Format(time.RFC3339))
}

func TestContainer(t *testing.T) {
	f := &fakeContainerEndpoint{wantAuth: "Bearer file-token"}
	srv := httptest.NewServer(f)
	defer srv.Close()
	port := srv.URL[strings.LastIndexByte(srv.URL, ':')+1:]
	tokenFile := filepath.Join(t.TempDir(), "token")

	tests := []struct {
		name     string
		env      map[string]string
		token    string // written to tokenFile when set
		wantErr  string
		wantAuth string
		wantHost string
	}{
		{
			name:     "token env",
			env:      map[string]string{"AWS_CONTAINER_CREDENTIALS_FULL_URI": srv.URL + "/v2/credentials/abc", "AWS_CONTAINER_AUTHORIZATION_TOKEN": "Bearer file-token"},
			wantAuth: "Bearer file-token",
		},
		{
			name:     "token file wins over env",
			env:      map[string]string{"AWS_CONTAINER_CREDENTIALS_FULL_URI": srv.URL + "/v2/credentials/abc", "AWS_CONTAINER_AUTHORIZATION_TOKEN": "Bearer env-token", "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": tokenFile},
			token:    "Bearer file-token\n",
			wantAuth: "Bearer file-token",
		},
		{
			name:     "localhost resolves to loopback",
			env:      map[string]string{"AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://localhost:" + port + "/v2/credentials/abc", "AWS_CONTAINER_AUTHORIZATION_TOKEN": "Bearer file-token"},
			wantAuth: "Bearer file-token",
			wantHost: "localhost:" + port,
		},
		{
			name:    "wrong token",
			env:     map[string]string{"AWS_CONTAINER_CREDENTIALS_FULL_URI": srv.URL + "/v2/credentials/abc", "AWS_CONTAINER_AUTHORIZATION_TOKEN": "Bearer wrong"},
			wantErr: "HTTP 401: AccessDenied: bad token",
		},
		{
			name:    "token with line break",
			env:     map[string]string{"AWS_CONTAINER_CREDENTIALS_FULL_URI": srv.URL + "/v2/credentials/abc", "AWS_CONTAINER_AUTHORIZATION_TOKEN": "Bearer x\r\nX-Injected: 1"},
			wantErr: "line break",
		},
		{
			name:    "missing token file",
			env:     map[string]string{"AWS_CONTAINER_CREDENTIALS_FULL_URI": srv.URL + "/v2/credentials/abc", "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": tokenFile + ".missing"},
			wantErr: "token file",
		},
		{name: "private address", env: map[string]string{"AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://10.0.0.1/creds"}, wantErr: "not allowed"},
		{name: "instance metadata address", env: map[string]string{"AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://169.254.169.254/creds"}, wantErr: "not allowed"},
		{name: "public address", env: map[string]string{"AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://8.8.8.8/creds"}, wantErr: "not allowed"},
		{name: "other scheme", env: map[string]string{"AWS_CONTAINER_CREDENTIALS_FULL_URI": "ftp://127.0.0.1/creds"}, wantErr: "scheme"},
		{name: "relative without slash", env: map[string]string{"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "v2/creds"}, wantErr: "does not start with /"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearAWSEnv(t)
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			if tt.token != "" {
				if err := os.WriteFile(tokenFile, []byte(tt.token), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			f.mu.Lock()
			f.gotAuth, f.gotHost = nil, nil
			f.mu.Unlock()
			creds, err := (&Container{}).Retrieve(context.Background())
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Retrieve error = %v, want one containing %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "wrong") || strings.Contains(err.Error(), "file-token") {
					t.Errorf("error leaks the authorization token: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Retrieve: %v", err)
			}
			if creds.AccessKeyID != "ASIAECS" || creds.SessionToken != "ecs-token" || !creds.CanExpire || creds.Source != SourceContainer {
				t.Errorf("credentials = %v", creds)
			}
			f.mu.Lock()
			defer f.mu.Unlock()
			if f.gotAuth[0] != tt.wantAuth {
				t.Errorf("Authorization sent = %q, want %q", f.gotAuth[0], tt.wantAuth)
			}
			if tt.wantHost != "" && f.gotHost[0] != tt.wantHost {
				t.Errorf("Host sent = %q, want %q", f.gotHost[0], tt.wantHost)
			}
		})
	}
}

func TestContainerTokenFileReReadEachTime(t *testing.T) {
	clearAWSEnv(t)
	f := &fakeContainerEndpoint{}
	srv := httptest.NewServer(f)
	defer srv.Close()
	tokenFile := filepath.Join(t.TempDir(), "token")
	t.Setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", srv.URL+"/v2/credentials/abc")
	t.Setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", tokenFile)
	c := &Container{}
	for _, tok := range []string{"first", "rotated"} {
		if err := os.WriteFile(tokenFile, []byte(tok), 0o600); err != nil {
			t.Fatal(err)
		}
		mustRetrieve(t, c)
	}
	if got := strings.Join(f.gotAuth, ","); got != "first,rotated" {
		t.Errorf("tokens sent = %s, want first,rotated", got)
	}
}

func TestContainerRetriesUnavailable(t *testing.T) {
	clearAWSEnv(t)
	f := &fakeContainerEndpoint{failFirst: 2}
	srv := httptest.NewServer(f)
	defer srv.Close()
	t.Setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", srv.URL+"/v2/credentials/abc")
	mustRetrieve(t, &Container{})
	if n := len(f.gotAuth); n != 3 {
		t.Errorf("requests = %d, want 3 (two 503s retried)", n)
	}
}

func TestContainerNotConfigured(t *testing.T) {
	clearAWSEnv(t)
	if _, err := (&Container{}).Retrieve(context.Background()); !errors.Is(err, ErrNotConfigured) {
		t.Errorf("Retrieve without env = %v, want ErrNotConfigured", err)
	}
}

func TestContainerEndpointHTTPSAnyHost(t *testing.T) {
	clearAWSEnv(t)
	t.Setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", "https://creds.example.com/v1")
	u, host, err := containerEndpoint(context.Background())
	if err != nil || u.String() != "https://creds.example.com/v1" || host != "creds.example.com" {
		t.Errorf("containerEndpoint = %v, %q, %v; want the https URL unchanged", u, host, err)
	}
	t.Setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", "")
	t.Setenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/v2/credentials/x")
	if u, _, err := containerEndpoint(context.Background()); err != nil || u.String() != "http://169.254.170.2/v2/credentials/x" {
		t.Errorf("relative URI endpoint = %v, %v", u, err)
	}
}

func TestAllowedContainerAddr(t *testing.T) {
	tests := []struct {
		host string
		ok   bool
	}{
		{"127.0.0.1", true}, {"127.1.2.3", true}, {"::1", true}, {"169.254.170.2", true},
		{"169.254.170.23", true}, {"fd00:ec2::23", true}, {"::ffff:127.0.0.1", true},
		{"169.254.169.254", false}, {"10.0.0.1", false}, {"fd00:ec2::254", false}, {"169.254.170.3", false},
	}
	for _, tt := range tests {
		a, err := allowedContainerAddr(context.Background(), tt.host)
		if (err == nil) != tt.ok {
			t.Errorf("allowedContainerAddr(%s) error = %v, want allowed %v", tt.host, err, tt.ok)
		}
		if err == nil && a != netip.MustParseAddr(tt.host).Unmap() {
			t.Errorf("allowedContainerAddr(%s) = %s", tt.host, a)
		}
	}
}

// TestContainerDoesNotFollowRedirects: a redirect must not carry the token to a host
// the allow-list would have refused.
func TestContainerDoesNotFollowRedirects(t *testing.T) {
	clearAWSEnv(t)
	var reached atomic.Bool
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { reached.Store(true) }))
	defer elsewhere.Close()
	redirector := httptest.NewServer(http.RedirectHandler(elsewhere.URL+"/steal", http.StatusFound))
	defer redirector.Close()
	t.Setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", redirector.URL+"/v2/credentials/abc")
	t.Setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", "Bearer tok")
	_, err := (&Container{}).Retrieve(context.Background())
	if err == nil || !strings.Contains(err.Error(), "HTTP 302") {
		t.Errorf("Retrieve = %v, want an HTTP 302 error", err)
	}
	if reached.Load() {
		t.Error("the redirect was followed")
	}
}
