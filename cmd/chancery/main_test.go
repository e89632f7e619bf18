package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chancery/chancery/internal/testenv"
)

// asMainEnv makes the test binary behave as the chancery binary, so tests can run the
// real main path in a child process and signal it.
const (
	asMainEnv    = "CHANCERY_TEST_AS_MAIN"
	slowRouteEnv = "CHANCERY_TEST_SLOW_ROUTE" // mount GET /test/slow, which takes this long
)

func TestMain(m *testing.M) {
	if os.Getenv(asMainEnv) == "1" {
		c := &cli{args: os.Args[1:], stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, environ: os.Environ()}
		if d := os.Getenv(slowRouteEnv); d != "" {
			delay, err := time.ParseDuration(d)
			if err != nil {
				panic(err)
			}
			c.extraCapabilities = append(c.extraCapabilities, slowRoute(delay))
		}
		os.Exit(run(context.Background(), c))
	}
	os.Exit(m.Run())
}

// execResult is what a command run in-process produced.
type execResult struct {
	code           int
	stdout, stderr string
}

// execute runs a chancery command line in-process.
func execute(t *testing.T, environ []string, args ...string) execResult {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), &cli{args: args, stdin: strings.NewReader(""), stdout: &stdout, stderr: &stderr, environ: environ})
	return execResult{code, stdout.String(), stderr.String()}
}

func TestUsageErrorsExit2(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"bogus"}, `chancery: unknown command "bogus" for "chancery"`},
		{[]string{"config", "chek"}, `chancery: unknown command "chek" for "chancery config"`},
		{[]string{"serve", "--lsten", "x"}, "chancery: unknown flag: --lsten"},
		{[]string{"serve", "extra"}, `chancery: accepts 0 arg(s), received 1`},
		{[]string{"config", "check"}, "chancery: accepts 1 arg(s), received 0"},
		{[]string{"version", "--nope"}, "chancery: unknown flag: --nope"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			r := execute(t, nil, tt.args...)
			if r.code != exitUsage {
				t.Fatalf("exit %d, want %d; stderr %q", r.code, exitUsage, r.stderr)
			}
			lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
			if lines[0] != tt.want || len(lines) != 2 || !strings.HasSuffix(lines[1], "--help' for usage.") {
				t.Fatalf("stderr = %q, want %q and a pointer to --help", r.stderr, tt.want)
			}
		})
	}
}

func TestHelpExplainsEveryCommand(t *testing.T) {
	root := newRootCmd(&cli{})
	for _, cmd := range allCommands(root) {
		if cmd.Hidden || cmd.Name() == "help" || cmd.Name() == "completion" || cmd.Parent() != nil && cmd.Parent().Name() == "completion" {
			continue
		}
		if cmd.Short == "" {
			t.Errorf("%q has no short description", cmd.CommandPath())
		}
		if cmd.Runnable() && cmd.HasParent() && !cmd.HasSubCommands() && cmd.Example == "" {
			t.Errorf("%q has no example", cmd.CommandPath())
		}
	}
	r := execute(t, nil, "serve", "--help")
	if r.code != 0 || !strings.Contains(r.stdout, "--listen") || !strings.Contains(r.stdout, "chancery serve --dev") {
		t.Fatalf("serve --help: exit %d\n%s", r.code, r.stdout)
	}
}

func TestVersion(t *testing.T) {
	r := execute(t, nil, "version")
	if r.code != 0 || !regexp.MustCompile(`^chancery \S+ \(revision \S+, go1\.\d+`).MatchString(r.stdout) {
		t.Fatalf("version: exit %d, %q", r.code, r.stdout)
	}
}

func writeConfig(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "chancery.yaml")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestConfigCheck(t *testing.T) {
	good := execute(t, nil, "config", "check", "../../chancery.example.yaml")
	if good.code != 0 || good.stdout != "../../chancery.example.yaml: ok\n" || good.stderr != "" {
		t.Fatalf("example config: %+v", good)
	}

	bad := writeConfig(t, "listen: nowhere\nlisen: 1\nlog:\n  format: xml\n")
	r := execute(t, []string{"CHANCERY_SHUTDOWN_TIMEOUT=-1s"}, "config", "check", bad)
	want := []string{
		bad + `:2: unknown key "lisen"`,
		`listen: "nowhere" is not host:port`,
		"shutdown_timeout: must be positive, got -1s",
		`log.format: "xml" is not text or json`,
	}
	if r.code != exitError || strings.TrimSpace(r.stderr) != strings.Join(want, "\n") {
		t.Fatalf("exit %d, stderr:\n%s\nwant:\n%s", r.code, r.stderr, strings.Join(want, "\n"))
	}

	missing := execute(t, nil, "config", "check", "/nonexistent/chancery.yaml")
	if missing.code != exitError || missing.stderr != "config file /nonexistent/chancery.yaml: no such file or directory\n" {
		t.Fatalf("missing file: %+v", missing)
	}
}

// TestServeStartupErrors covers what stops serve before it serves: each is one line
// naming the cause, exit 1, no stack trace.
func TestServeStartupErrors(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name    string
		environ []string
		args    []string
		want    string
	}{
		{"port in use", nil, []string{"serve", "--listen", taken.Addr().String()},
			"chancery: listen on " + taken.Addr().String() + ": bind: address already in use"},
		{"unwritable state dir", nil, []string{"serve", "--listen", "127.0.0.1:0", "--state-dir", filepath.Join(file, "state")},
			"chancery: state directory " + filepath.Join(file, "state") + ": not a directory"},
		{"malformed config", nil, []string{"serve", "--config", writeConfig(t, "listen: [\n")},
			":1: did not find expected node content"},
		{"unknown key", nil, []string{"serve", "--config", writeConfig(t, "listne: x\n")},
			`:1: unknown key "listne"`},
		{"config from the environment", []string{"CHANCERY_CONFIG=/nonexistent.yaml"}, []string{"serve"},
			"chancery: config file /nonexistent.yaml: no such file or directory"},
		{"invalid value", nil, []string{"serve", "--log-level", "loud"},
			`chancery: invalid configuration: log.level: "loud" is not debug, info, warn or error`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := execute(t, tt.environ, tt.args...)
			if r.code != exitError {
				t.Fatalf("exit %d, want 1; stderr %q", r.code, r.stderr)
			}
			if strings.Count(r.stderr, "\n") != 1 || !strings.Contains(r.stderr, tt.want) || strings.Contains(r.stderr, "goroutine") {
				t.Fatalf("stderr = %q, want one line containing %q", r.stderr, tt.want)
			}
		})
	}
}

// child is a chancery process run from the test binary.
type child struct {
	cmd    *exec.Cmd
	addr   string
	stderr *testenv.Buffer
	exited chan error
}

// startChild runs `chancery args...` in dir and waits for its "serving" log line.
func startChild(t *testing.T, dir string, env []string, args ...string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Dir = dir
	cmd.Env = append(append(os.Environ(), asMainEnv+"=1"), env...)
	pipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, stderr: &testenv.Buffer{}, exited: make(chan error, 1)}
	addrRE := regexp.MustCompile(`msg=serving addr=(\S+)`)
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pipe)
		for sc.Scan() {
			line := sc.Text()
			c.stderr.WriteString(line + "\n")
			if m := addrRE.FindStringSubmatch(line); m != nil {
				found <- m[1]
			}
		}
		c.exited <- cmd.Wait()
	}()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	select {
	case c.addr = <-found:
		return c
	case err := <-c.exited:
		t.Fatalf("chancery exited before serving: %v\n%s", err, c.stderr)
	case <-time.After(30 * time.Second):
		t.Fatalf("chancery did not start serving in 30s")
	}
	return nil
}

func TestServeDevStartsQuickly(t *testing.T) {
	dir := t.TempDir()
	began := time.Now()
	c := startChild(t, dir, nil, "serve", "--dev", "--listen", "127.0.0.1:0")
	for _, path := range []string{"/healthz", "/metrics"} {
		resp, err := http.Get("http://" + c.addr + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("%s = %d", path, resp.StatusCode)
		}
	}
	t.Logf("process start to /healthz and /metrics answered: %s", time.Since(began))

	info, err := os.Stat(filepath.Join(dir, ".chancery"))
	if err != nil || !info.IsDir() || info.Mode().Perm() != 0o700 {
		t.Fatalf("state dir: %v %v, want a 0700 directory", info, err)
	}
	if err := c.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if err := <-c.exited; err != nil {
		t.Fatalf("exit after SIGINT: %v\n%s", err, c.stderr)
	}
}

// slowRoute is a capability with GET /test/slow: it sends its headers and a first line
// at once, then finishes the body after delay.
type slowRoute time.Duration

func (slowRoute) Name() string { return "test-slow" }
func (d slowRoute) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /test/slow", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "started")
		_ = http.NewResponseController(w).Flush()
		time.Sleep(time.Duration(d))
		fmt.Fprintln(w, "finished")
	})
}

func TestSIGTERMDrainsInFlightRequestAndExits0(t *testing.T) {
	c := startChild(t, t.TempDir(), []string{slowRouteEnv + "=1s"}, "serve", "--listen", "127.0.0.1:0")
	resp, err := http.Get("http://" + c.addr + "/test/slow")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body := bufio.NewReader(resp.Body)
	if line, err := body.ReadString('\n'); err != nil || line != "started\n" {
		t.Fatalf("first line %q, %v", line, err)
	}
	// The handler is now running: signal the process mid-request.
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	rest, err := io.ReadAll(body)
	if err != nil || string(rest) != "finished\n" {
		t.Fatalf("rest of the in-flight reply = %q, %v; want it completed", rest, err)
	}
	select {
	case err := <-c.exited:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, c.stderr)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("process did not exit after SIGTERM")
	}
	if !strings.Contains(c.stderr.String(), "msg=stopped") {
		t.Errorf("no clean stop logged:\n%s", c.stderr)
	}
}
