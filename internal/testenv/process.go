package testenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// RequireEnv is the environment variable that turns a missing tool from a skip into a
// failure. Its value "all" means every tool is required.
const RequireEnv = "CHANCERY_TEST_REQUIRE"

// Required reports whether missing tools must fail tests rather than skip them.
func Required() bool { return os.Getenv(RequireEnv) == "all" }

// Require returns the path of tool on PATH. When it is missing the test is skipped, or
// failed when CHANCERY_TEST_REQUIRE=all.
func Require(t testing.TB, tool string) string {
	t.Helper()
	path, err := exec.LookPath(tool)
	if err == nil {
		return path
	}
	missing(t, fmt.Sprintf("%s not found on PATH (%v)", tool, err))
	return ""
}

func missing(t testing.TB, why string) {
	t.Helper()
	if Required() {
		t.Fatalf("testenv: %s; %s=all requires it", why, RequireEnv)
	}
	t.Skipf("testenv: skipping: %s (set %s=all to make this a failure)", why, RequireEnv)
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago. A server started
// on it can still lose a race with another process; callers retry on failure.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testenv: find a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// tailBuffer keeps the last max bytes written to it; a dependency's output goes here so
// a failure can show it without a chatty server filling memory.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if over := len(b.buf) - b.max; over > 0 {
		b.buf = append(b.buf[:0], b.buf[over:]...)
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(bytes.TrimSpace(b.buf))
}

// process is a dependency started as a child process.
type process struct {
	name string
	cmd  *exec.Cmd
	out  *tailBuffer
	done chan struct{} // closed when the process has exited
	err  error         // exit status, valid after done
}

// start runs cmd with its output captured and waits until ready returns nil, the
// process exits, or timeout passes. It registers a cleanup that stops the process
// (SIGTERM, then SIGKILL after a grace period) and waits for it.
func start(t testing.TB, name string, cmd *exec.Cmd, timeout time.Duration, ready func(context.Context) error) (*process, error) {
	t.Helper()
	p := &process{name: name, cmd: cmd, out: &tailBuffer{max: 16 << 10}, done: make(chan struct{})}
	cmd.Stdout = p.out
	cmd.Stderr = p.out
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	// Its own process group, so stopping it also stops anything it forked, and the
	// parent's death signal so a killed test run leaves no orphan server behind.
	cmd.SysProcAttr.Setpgid = true
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()

	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var lastErr error
	for {
		rctx, rcancel := context.WithTimeout(ctx, time.Second)
		lastErr = ready(rctx)
		rcancel()
		if lastErr == nil {
			t.Cleanup(p.stop)
			return p, nil
		}
		select {
		case <-p.done:
			return nil, fmt.Errorf("%s exited before it was ready (%v); its output:\n%s", name, p.err, p.out)
		case <-ctx.Done():
			p.stop()
			return nil, fmt.Errorf("%s not ready after %s (last check: %v); its output:\n%s", name, timeout, lastErr, p.out)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// stop ends the process group: SIGTERM first, SIGKILL if it has not exited in 10 s.
func (p *process) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	pgid := -p.cmd.Process.Pid
	_ = syscall.Kill(pgid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(pgid, syscall.SIGKILL)
		<-p.done
	}
}

// Output returns the tail of what the process has printed so far.
func (p *process) Output() string { return p.out.String() }

// startWithPortRetry calls try with fresh free ports until one start succeeds; a port
// taken between FreePort and the server's bind is the only failure worth retrying, but
// the cause is hard to tell from a child's output, so every failure is retried twice.
func startWithPortRetry(t testing.TB, name string, try func(port int) error) {
	t.Helper()
	var errs []error
	for attempt := 0; attempt < 3; attempt++ {
		port := FreePort(t)
		err := try(port)
		if err == nil {
			return
		}
		errs = append(errs, fmt.Errorf("attempt %d on port %s: %w", attempt+1, strconv.Itoa(port), err))
	}
	t.Fatalf("testenv: could not start %s:\n%v", name, errors.Join(errs...))
}
