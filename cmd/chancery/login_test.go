package main

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chancery/chancery/delegatedauth"
	"github.com/chancery/chancery/internal/testenv"
)

// stsBroker is an intake-key endpoint that checks each proof the way a broker must:
// it sends the signed request to STS (moto, signature checking on) and issues a key
// only when STS names the signer. It stands in for keybroker, which has its own tests.
type stsBroker struct {
	*httptest.Server
	moto *testenv.MotoServer

	mu      sync.Mutex
	keys    []string // issued in turn; the last one repeats
	refuse  string   // when set, refuse every exchange with 403 and this title
	callers []string // "org|server id|ARN" of each accepted proof
}

func newSTSBroker(t *testing.T, m *testenv.MotoServer, keys ...string) *stsBroker {
	t.Helper()
	b := &stsBroker{moto: m, keys: keys}
	b.Server = httptest.NewServer(http.HandlerFunc(b.serve))
	t.Cleanup(b.Close)
	return b
}

func (b *stsBroker) serve(w http.ResponseWriter, r *http.Request) {
	fail := func(status int, title string) {
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(map[string]any{"errors": []map[string]string{{"status": fmt.Sprint(status), "title": title}}})
	}
	if r.Method != http.MethodPost || r.URL.Path != delegatedauth.IntakeKeyPath {
		fail(http.StatusNotFound, "not found")
		return
	}
	encoded, ok := strings.CutPrefix(r.Header.Get("Authorization"), delegatedauth.AuthScheme+" ")
	if !ok {
		fail(http.StatusUnauthorized, "no proof")
		return
	}
	p, err := delegatedauth.ParseProof(encoded)
	if err != nil || p.URL != b.moto.URL {
		fail(http.StatusUnauthorized, "malformed proof or STS endpoint not allowed")
		return
	}
	req, _ := http.NewRequestWithContext(r.Context(), p.Method, p.URL, bytes.NewReader(p.Body))
	req.Header = p.Header.Clone()
	req.Host = p.Header.Get("Host")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fail(http.StatusBadGateway, "STS unreachable")
		return
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	var out struct {
		Arn string `xml:"GetCallerIdentityResult>Arn"`
	}
	if resp.StatusCode != http.StatusOK || xml.Unmarshal(body, &out) != nil || out.Arn == "" {
		fail(http.StatusUnauthorized, "proof rejected by STS")
		return
	}

	b.mu.Lock()
	refuse := b.refuse
	key := b.keys[min(len(b.callers), len(b.keys)-1)]
	if refuse == "" {
		b.callers = append(b.callers, p.Header.Get(delegatedauth.OrgIDHeader)+"|"+p.Header.Get(delegatedauth.ServerIDHeader)+"|"+out.Arn)
	}
	b.mu.Unlock()
	if refuse != "" {
		fail(http.StatusForbidden, refuse)
		return
	}
	json.NewEncoder(w).Encode(map[string]any{"data": map[string]any{"type": "api_key", "attributes": map[string]any{
		"api_key": key, "expires_at": time.Now().Add(24 * time.Hour).UTC().Format(time.RFC3339),
	}}})
}

func (b *stsBroker) accepted() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.callers...)
}

func motoEnviron(m *testenv.MotoServer) []string {
	return []string{"AWS_ACCESS_KEY_ID=" + m.AccessKeyID, "AWS_SECRET_ACCESS_KEY=" + m.SecretAccessKey}
}

const (
	loginKey1 = "chk_login_first_0123456789abcdef"
	loginKey2 = "chk_login_second_0123456789abcde"
)

func TestLoginAWS(t *testing.T) {
	m := testenv.Moto(t)
	admin := "arn:aws:iam::" + m.AccountID + ":user/admin"

	t.Run("prints the key", func(t *testing.T) {
		b := newSTSBroker(t, m, loginKey1)
		r := execute(t, motoEnviron(m), "login", "aws", "--server", b.URL, "--org", "acme", "--sts-endpoint", m.URL)
		if r.code != 0 || r.stdout != loginKey1+"\n" || r.stderr != "" {
			t.Fatalf("exit %d\nstdout %q\nstderr %q", r.code, r.stdout, r.stderr)
		}
		// The server id defaults to the host name of --server.
		if got := b.accepted(); len(got) != 1 || got[0] != "acme|127.0.0.1|"+admin {
			t.Fatalf("broker accepted %q", got)
		}
	})

	t.Run("explicit server id", func(t *testing.T) {
		b := newSTSBroker(t, m, loginKey1)
		r := execute(t, motoEnviron(m), "login", "aws", "--server", b.URL, "--org", "acme", "--sts-endpoint", m.URL, "--server-id", "chancery-prod")
		if got := b.accepted(); r.code != 0 || len(got) != 1 || got[0] != "acme|chancery-prod|"+admin {
			t.Fatalf("exit %d, stderr %q, broker accepted %q", r.code, r.stderr, got)
		}
	})

	t.Run("writes a 0600 file", func(t *testing.T) {
		b := newSTSBroker(t, m, loginKey1)
		path := filepath.Join(t.TempDir(), "api_key")
		r := execute(t, motoEnviron(m), "login", "aws", "--server", b.URL, "--org", "acme", "--sts-endpoint", m.URL, "--write", path)
		if r.code != 0 || r.stdout != "" || !strings.Contains(r.stderr, "wrote an API key for acme to "+path) {
			t.Fatalf("exit %d\nstdout %q\nstderr %q", r.code, r.stdout, r.stderr)
		}
		if strings.Contains(r.stderr, loginKey1) {
			t.Fatal("the key is on stderr")
		}
		got, err := os.ReadFile(path)
		fi, _ := os.Stat(path)
		if err != nil || string(got) != loginKey1 || fi.Mode().Perm() != 0o600 {
			t.Fatalf("file %q, %v, mode %v", got, err, fi.Mode())
		}
	})

	t.Run("refused", func(t *testing.T) {
		b := newSTSBroker(t, m, loginKey1)
		b.refuse = admin + " is not bound to tenant acme"
		r := execute(t, motoEnviron(m), "login", "aws", "--server", b.URL, "--org", "acme", "--sts-endpoint", m.URL)
		if r.code != exitError || r.stdout != "" || strings.Count(r.stderr, "\n") != 1 ||
			!strings.Contains(r.stderr, "broker answered 403 Forbidden: "+admin+" is not bound to tenant acme") {
			t.Fatalf("exit %d\nstdout %q\nstderr %q", r.code, r.stdout, r.stderr)
		}
	})

	t.Run("wrong secret", func(t *testing.T) {
		b := newSTSBroker(t, m, loginKey1)
		env := []string{"AWS_ACCESS_KEY_ID=" + m.AccessKeyID, "AWS_SECRET_ACCESS_KEY=wrong-" + m.SecretAccessKey}
		r := execute(t, env, "login", "aws", "--server", b.URL, "--org", "acme", "--sts-endpoint", m.URL)
		if r.code != exitError || !strings.Contains(r.stderr, "401 Unauthorized: proof rejected by STS") {
			t.Fatalf("exit %d\nstderr %q", r.code, r.stderr)
		}
		if strings.Contains(r.stderr, m.SecretAccessKey) || strings.Contains(r.stderr, "Delegated") {
			t.Fatalf("stderr leaks a secret: %q", r.stderr)
		}
	})
}

func TestLoginAWSWatch(t *testing.T) {
	m := testenv.Moto(t)
	b := newSTSBroker(t, m, loginKey1, loginKey2)
	path := filepath.Join(t.TempDir(), "api_key")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr testenv.Buffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, &cli{
			args: []string{"login", "aws", "--server", b.URL, "--org", "acme", "--sts-endpoint", m.URL,
				"--write", path, "--watch", "--interval", "1s"},
			stdin: strings.NewReader(""), stdout: &stdout, stderr: &stderr, environ: motoEnviron(m),
		})
	}()
	// The first key, then the refreshed one a second later.
	for _, want := range []string{loginKey1, loginKey2} {
		deadline := time.Now().Add(20 * time.Second)
		for {
			if got, _ := os.ReadFile(path); string(got) == want {
				break
			}
			if time.Now().After(deadline) {
				got, _ := os.ReadFile(path)
				t.Fatalf("file holds %q, want %q; stderr:\n%s", got, want, stderr.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 || stdout.String() != "" {
			t.Fatalf("exit %d, stdout %q", code, stdout.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("--watch did not stop when its context ended")
	}
	if strings.Contains(stderr.String(), loginKey1) || strings.Contains(stderr.String(), loginKey2) {
		t.Fatalf("stderr leaks a key:\n%s", stderr.String())
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, %v", fi.Mode(), err)
	}
}

func TestLoginUsageErrors(t *testing.T) {
	srv := "--server=https://chancery.example.com"
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"login", "aws", "--org", "acme"}, "--server is required"},
		{[]string{"login", "aws", srv}, "--org is required"},
		{[]string{"login", "aws", srv, "--org", "acme", "--watch"}, "--watch needs --write FILE"},
		{[]string{"login", "aws", "--server", "chancery.example.com", "--org", "acme"}, "is not an http(s) URL"},
		{[]string{"login", "aws", "--server", "http://chancery.example.com", "--org", "acme"}, "plain http would expose the proof and the key"},
		{[]string{"login", "aws", srv, "--org", "acme", "--region", "evil.com/"}, "is not an AWS region name"},
		{[]string{"login", "aws", srv, "--org", "acme", "--sts-endpoint", "sts"}, "is not an http(s) URL"},
		{[]string{"login", "aws", srv, "--org", "acme", "--interval", "1ms", "--write", "f", "--watch"}, "shorter than a second"},
		{[]string{"login", "aws", srv, "--org", "acme", "--interval", "soon"}, "invalid argument"},
		{[]string{"login", "aws", srv, "--org", "acme", "extra"}, "accepts 0 arg(s)"},
		{[]string{"login", "aws", "--bogus"}, "unknown flag: --bogus"},
		{[]string{"login", "gcp"}, `unknown command "gcp" for "chancery login"`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args[1:], " "), func(t *testing.T) {
			r := execute(t, nil, tt.args...)
			if r.code != exitUsage || !strings.Contains(r.stderr, tt.want) || r.stdout != "" {
				t.Fatalf("exit %d, stderr %q; want exit 2 and %q", r.code, r.stderr, tt.want)
			}
		})
	}
}

func TestLoginHelp(t *testing.T) {
	r := execute(t, nil, "login", "aws", "--help")
	for _, want := range []string{"--server", "--org", "--server-id", "--sts-endpoint", "--region", "--write", "--watch",
		"host name of --server", "chancery login aws --server https://chancery.example.com --org acme"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("login aws --help lacks %q", want)
		}
	}
	if r := execute(t, nil, "--help"); !strings.Contains(r.stdout, "login") {
		t.Errorf("chancery --help does not list login:\n%s", r.stdout)
	}
}

// TestLoginAWSWatchStopsOnSignal runs the real binary path in a child process and
// stops it with SIGTERM, as a supervisor would.
func TestLoginAWSWatchStopsOnSignal(t *testing.T) {
	m := testenv.Moto(t)
	b := newSTSBroker(t, m, loginKey1)
	path := filepath.Join(t.TempDir(), "api_key")
	cmd := exec.Command(os.Args[0], "login", "aws", "--server", b.URL, "--org", "acme", "--sts-endpoint", m.URL, "--write", path, "--watch")
	cmd.Env = append(append(os.Environ(), asMainEnv+"=1"), motoEnviron(m)...)
	var stdout, stderr testenv.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill() })

	deadline := time.Now().Add(30 * time.Second)
	for {
		if got, _ := os.ReadFile(path); string(got) == loginKey1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no key file after 30s; stderr:\n%s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil || stdout.String() != "" {
			t.Fatalf("exit: %v, stdout %q, stderr:\n%s", err, stdout.String(), stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("login aws --watch did not exit on SIGTERM")
	}
}
