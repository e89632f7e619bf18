package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Options configure a Server.
type Options struct {
	Listen          string        // host:port; port 0 picks a free one
	ShutdownTimeout time.Duration // how long in-flight requests may drain
	Logger          *slog.Logger  // nil: slog.Default()
	// Registry receives the server's metrics and is served on /metrics; nil: NewRegistry().
	Registry     *prometheus.Registry
	Capabilities []Capability
	// Closers hold what the capabilities share (the store); they are closed after the
	// capabilities, in reverse order.
	Closers []io.Closer
}

// Server is one chancery process's HTTP server.
type Server struct {
	opts Options
	log  *slog.Logger
	http *http.Server

	mu sync.Mutex
	ln net.Listener

	running sync.WaitGroup // handlers in progress
}

// readyTimeout bounds each readiness check so a hung dependency cannot hang /readyz.
const readyTimeout = 5 * time.Second

// New builds a server; it does not listen yet.
func New(opts Options) (*Server, error) {
	if opts.ShutdownTimeout <= 0 {
		return nil, fmt.Errorf("server: shutdown timeout must be positive, got %s", opts.ShutdownTimeout)
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Registry == nil {
		opts.Registry = NewRegistry()
	}
	s := &Server{opts: opts, log: opts.Logger}

	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", s.serveReady)
	mux.Handle("GET /metrics", promhttp.HandlerFor(opts.Registry, promhttp.HandlerOpts{
		ErrorLog: slog.NewLogLogger(opts.Logger.Handler(), slog.LevelError),
	}))
	seen := map[string]bool{}
	for _, c := range opts.Capabilities {
		if seen[c.Name()] {
			return nil, fmt.Errorf("server: capability %q registered twice", c.Name())
		}
		seen[c.Name()] = true
		c.Register(mux)
	}

	handler := recoverPanics(mux, opts.Logger)
	handler = instrument(handler, opts.Logger, newHTTPMetrics(opts.Registry), &s.running)
	s.http = &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(opts.Logger.Handler(), slog.LevelWarn),
	}
	return s, nil
}

// Listen binds the API address. It is separate from Serve so that "address already in
// use" is reported before the process claims to be up.
func (s *Server) Listen() (net.Addr, error) {
	ln, err := net.Listen("tcp", s.opts.Listen)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", s.opts.Listen, unwrapOpError(err))
	}
	s.mu.Lock()
	s.ln = ln
	s.mu.Unlock()
	return ln.Addr(), nil
}

// unwrapOpError drops net.OpError's repetition of the address ("listen tcp
// 127.0.0.1:7700: bind: address already in use" becomes "address already in use").
func unwrapOpError(err error) error {
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		return op.Err
	}
	return err
}

// Serve serves on the bound listener until ctx is cancelled, then shuts down: it stops
// accepting, waits up to the shutdown timeout for in-flight requests, and closes the
// capabilities. It returns nil after a clean drain.
func (s *Server) Serve(ctx context.Context) error {
	s.mu.Lock()
	ln := s.ln
	s.mu.Unlock()
	if ln == nil {
		return errors.New("server: Serve called before Listen")
	}
	served := make(chan error, 1)
	go func() { served <- s.http.Serve(ln) }()
	s.log.Info("serving", "addr", ln.Addr().String(), "capabilities", s.capabilityNames())

	var result error
	select {
	case err := <-served:
		result = fmt.Errorf("serve on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
		s.log.Info("shutting down: draining in-flight requests", "timeout", s.opts.ShutdownTimeout)
		sctx, cancel := context.WithTimeout(context.Background(), s.opts.ShutdownTimeout)
		err := s.http.Shutdown(sctx)
		cancel()
		if err != nil {
			_ = s.http.Close()
			result = fmt.Errorf("shutdown: requests still running after %s were cut off", s.opts.ShutdownTimeout)
			// Their connections are closed and their contexts cancelled; give the
			// handlers a moment to return before closing what they use.
			s.waitHandlers(handlerGrace)
		}
		<-served // http.ErrServerClosed
	}
	if err := errors.Join(s.closeCapabilities(), closeAll(s.opts.Closers)); err != nil && result == nil {
		result = err
	}
	if result == nil {
		s.log.Info("stopped")
	}
	return result
}

// handlerGrace is how long handlers cut off at the shutdown deadline get to return.
const handlerGrace = 5 * time.Second

func (s *Server) waitHandlers(limit time.Duration) {
	done := make(chan struct{})
	go func() {
		s.running.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(limit):
		s.log.Warn("handlers still running after shutdown; closing capabilities anyway")
	}
}

func (s *Server) closeCapabilities() error {
	var errs []error
	caps := s.opts.Capabilities
	for i := len(caps) - 1; i >= 0; i-- {
		if c, ok := caps[i].(Closer); ok {
			if err := c.Close(); err != nil {
				errs = append(errs, fmt.Errorf("close %s: %w", caps[i].Name(), err))
			}
		}
	}
	return errors.Join(errs...)
}

func (s *Server) capabilityNames() []string {
	names := make([]string, 0, len(s.opts.Capabilities))
	for _, c := range s.opts.Capabilities {
		names = append(names, c.Name())
	}
	return names
}

// readiness is the /readyz reply.
type readiness struct {
	Status string            `json:"status"`           // "ready" or "unavailable"
	Failed map[string]string `json:"failed,omitempty"` // capability name → what is down
}

// serveReady runs every readiness check concurrently, each bounded by readyTimeout.
func (s *Server) serveReady(w http.ResponseWriter, r *http.Request) {
	var (
		mu     sync.Mutex
		wg     sync.WaitGroup
		failed = map[string]string{}
	)
	for _, c := range s.opts.Capabilities {
		rc, ok := c.(ReadinessChecker)
		if !ok {
			continue
		}
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
			defer cancel()
			if err := rc.CheckReady(ctx); err != nil {
				s.log.Warn("not ready", "capability", c.Name(), "err", err)
				mu.Lock()
				failed[c.Name()] = err.Error()
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	reply, code := readiness{Status: "ready"}, http.StatusOK
	if len(failed) > 0 {
		reply, code = readiness{Status: "unavailable", Failed: failed}, http.StatusServiceUnavailable
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(reply)
}
