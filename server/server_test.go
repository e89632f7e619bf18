package server_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chancery/chancery/server"

	"github.com/chancery/chancery/internal/testenv"
)

// testCapability is a capability whose routes and checks the tests choose.
type testCapability struct {
	name     string
	routes   map[string]http.HandlerFunc
	ready    error
	closeLog *[]string
}

func (c *testCapability) Name() string { return c.name }
func (c *testCapability) Register(mux *http.ServeMux) {
	for pattern, h := range c.routes {
		mux.HandleFunc(pattern, h)
	}
}
func (c *testCapability) CheckReady(context.Context) error { return c.ready }
func (c *testCapability) Close() error {
	if c.closeLog != nil {
		*c.closeLog = append(*c.closeLog, c.name)
	}
	return nil
}

type running struct {
	url    string
	logs   *testenv.Buffer
	cancel context.CancelFunc
	done   chan error
}

func start(t *testing.T, timeout time.Duration, caps ...server.Capability) *running {
	t.Helper()
	logs := &testenv.Buffer{}
	srv, err := server.New(server.Options{
		Listen:          "127.0.0.1:0",
		ShutdownTimeout: timeout,
		Logger:          slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Capabilities:    caps,
	})
	if err != nil {
		t.Fatal(err)
	}
	addr, err := srv.Listen()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{url: "http://" + addr.String(), logs: logs, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- srv.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-r.done
	})
	return r
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func TestHealthAndMetrics(t *testing.T) {
	r := start(t, time.Second)
	if code, body := get(t, r.url+"/healthz"); code != 200 || body != "ok\n" {
		t.Fatalf("/healthz = %d %q", code, body)
	}
	code, body := get(t, r.url+"/metrics")
	if code != 200 {
		t.Fatalf("/metrics = %d", code)
	}
	for _, want := range []string{
		"chancery_build_info{",
		`chancery_http_requests_total{code="200",method="GET",route="GET /healthz"} 1`,
		"go_goroutines ",
		"process_open_fds ",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	req, _ := http.NewRequest("BREW", r.url+"/healthz", nil)
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
	}
	if code, _ := get(t, r.url+"/nope"); code != 404 {
		t.Errorf("/nope = %d, want 404", code)
	}
	_, body = get(t, r.url+"/metrics")
	if !strings.Contains(body, `route="unmatched"`) {
		t.Errorf("an unmatched path must be counted under route=unmatched, not its raw path")
	}
	if strings.Contains(body, "BREW") || !strings.Contains(body, `method="other"`) {
		t.Errorf("an unknown method must be counted as method=other")
	}
}

func TestReadiness(t *testing.T) {
	up := &testCapability{name: "store"}
	down := &testCapability{name: "keyring", ready: errors.New("vault: connection refused")}
	r := start(t, time.Second, up)
	if code, body := get(t, r.url+"/readyz"); code != 200 || !strings.Contains(body, `"ready"`) {
		t.Fatalf("/readyz with healthy deps = %d %s", code, body)
	}
	r = start(t, time.Second, up, down)
	code, body := get(t, r.url+"/readyz")
	if code != 503 || !strings.Contains(body, `"keyring":"vault: connection refused"`) || strings.Contains(body, `"store"`) {
		t.Fatalf("/readyz with keyring down = %d %s", code, body)
	}
}

func TestRequestLogNeverHoldsSecrets(t *testing.T) {
	echo := &testCapability{name: "echo", routes: map[string]http.HandlerFunc{
		"POST /echo": func(w http.ResponseWriter, r *http.Request) { _, _ = io.Copy(w, r.Body) },
	}}
	r := start(t, time.Second, echo)
	req, _ := http.NewRequest("POST", r.url+"/echo?X-Amz-Signature=querysecret", strings.NewReader("bodysecret"))
	req.Header.Set("Authorization", "Delegated headersecret")
	req.Header.Set("X-Api-Key", "apikeysecret")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	// The log line is written after the reply; wait for it.
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(r.logs.String(), `"path":"/echo"`) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	logs := r.logs.String()
	if !strings.Contains(logs, `"route":"POST /echo"`) || !strings.Contains(logs, `"status":200`) {
		t.Fatalf("no request log line for /echo:\n%s", logs)
	}
	for _, secret := range []string{"querysecret", "bodysecret", "headersecret", "apikeysecret"} {
		if strings.Contains(logs, secret) {
			t.Errorf("log holds %q:\n%s", secret, logs)
		}
	}
}

func TestPanicBecomes500(t *testing.T) {
	boom := &testCapability{name: "boom", routes: map[string]http.HandlerFunc{
		"GET /boom": func(http.ResponseWriter, *http.Request) { panic("kaboom") },
	}}
	r := start(t, time.Second, boom)
	if code, _ := get(t, r.url+"/boom"); code != 500 {
		t.Fatalf("/boom = %d, want 500", code)
	}
	if code, _ := get(t, r.url+"/healthz"); code != 200 {
		t.Fatalf("server unhealthy after a panic: %d", code)
	}
}

func TestListenReportsPortInUse(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	srv, err := server.New(server.Options{Listen: taken.Addr().String(), ShutdownTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	_, err = srv.Listen()
	want := "listen on " + taken.Addr().String() + ": bind: address already in use"
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v, want %q", err, want)
	}
}

func TestDuplicateCapabilityRefused(t *testing.T) {
	_, err := server.New(server.Options{ShutdownTimeout: time.Second,
		Capabilities: []server.Capability{&testCapability{name: "a"}, &testCapability{name: "a"}}})
	if err == nil {
		t.Fatal("two capabilities with one name were accepted")
	}
}

// slowCapability holds GET /slow until release is closed, and says when it started.
func slowCapability(started chan<- struct{}, release <-chan struct{}) *testCapability {
	return &testCapability{name: "slow", routes: map[string]http.HandlerFunc{
		"GET /slow": func(w http.ResponseWriter, r *http.Request) {
			close(started)
			select {
			case <-release:
			case <-r.Context().Done(): // cut off at the shutdown deadline
				return
			}
			_, _ = w.Write([]byte("finished"))
		},
	}}
}

func TestShutdownDrainsInFlightRequests(t *testing.T) {
	started, release := make(chan struct{}), make(chan struct{})
	var closed []string
	slow := slowCapability(started, release)
	slow.closeLog = &closed
	other := &testCapability{name: "other", closeLog: &closed}
	r := start(t, 10*time.Second, slow, other)

	type result struct {
		code int
		body string
		err  error
	}
	got := make(chan result, 1)
	go func() {
		resp, err := http.Get(r.url + "/slow")
		if err != nil {
			got <- result{err: err}
			return
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		got <- result{resp.StatusCode, string(body), err}
	}()
	<-started
	r.cancel()

	// Once shutdown has begun, new connections are refused...
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", strings.TrimPrefix(r.url, "http://"), time.Second)
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("still accepting connections during shutdown")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// ...while the one in flight is still being served.
	select {
	case err := <-r.done:
		t.Fatalf("Serve returned (%v) with a request in flight", err)
	default:
	}
	close(release)
	res := <-got
	if res.err != nil || res.code != 200 || res.body != "finished" {
		t.Fatalf("in-flight request: %d %q %v", res.code, res.body, res.err)
	}
	if err := <-r.done; err != nil {
		t.Fatalf("Serve after a clean drain: %v", err)
	}
	r.done <- nil // for the cleanup
	if strings.Join(closed, ",") != "other,slow" {
		t.Errorf("capabilities closed in order %v, want reverse registration order", closed)
	}
}

func TestShutdownDeadlineCutsOffStuckRequests(t *testing.T) {
	started, release := make(chan struct{}), make(chan struct{})
	defer close(release)
	r := start(t, 100*time.Millisecond, slowCapability(started, release))
	go func() {
		resp, err := http.Get(r.url + "/slow")
		if err == nil {
			resp.Body.Close()
		}
	}()
	<-started
	r.cancel()
	err := <-r.done
	r.done <- err
	if err == nil || !strings.Contains(err.Error(), "cut off") {
		t.Fatalf("Serve = %v, want an error saying requests were cut off", err)
	}
}
