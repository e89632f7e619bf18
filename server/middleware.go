package server

import (
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// statusRecorder remembers the status code and size of a response. It unwraps to the
// underlying writer so http.ResponseController (Flush, deadlines) keeps working for
// streaming handlers.
type statusRecorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(p []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	n, err := r.ResponseWriter.Write(p)
	r.bytes += int64(n)
	return n, err
}

func (r *statusRecorder) Flush() {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	_ = http.NewResponseController(r.ResponseWriter).Flush()
}

func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// quietRoutes are logged at debug level: probes hit them every few seconds.
func quietRoute(pattern string) bool {
	switch pattern {
	case "GET /healthz", "GET /readyz", "GET /metrics":
		return true
	}
	return false
}

// instrument logs and measures every request. It records the method, the path without
// its query (a presigned URL's query is a credential), the matched route, status,
// size, duration and peer — never a header or a body.
func instrument(next http.Handler, log *slog.Logger, m *httpMetrics, running *sync.WaitGroup) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		running.Add(1)
		defer running.Done()
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		m.inFlight.Inc()
		defer func() {
			m.inFlight.Dec()
			if rec.status == 0 {
				rec.status = http.StatusOK // handler wrote nothing
			}
			route := r.Pattern // set by ServeMux on this request once matched
			if route == "" {
				route = "unmatched"
			}
			elapsed := time.Since(start)
			method := methodLabel(r.Method)
			m.requests.WithLabelValues(route, method, strconv.Itoa(rec.status)).Inc()
			m.duration.WithLabelValues(route, method).Observe(elapsed.Seconds())
			level := slog.LevelInfo
			if quietRoute(route) && rec.status < 500 {
				level = slog.LevelDebug
			}
			log.LogAttrs(r.Context(), level, "request",
				slog.String("method", r.Method),
				slog.String("path", r.URL.Path),
				slog.String("route", route),
				slog.Int("status", rec.status),
				slog.Int64("bytes", rec.bytes),
				slog.Duration("duration", elapsed),
				slog.String("remote", r.RemoteAddr),
			)
		}()
		next.ServeHTTP(rec, r)
	})
}

// methodLabel bounds the method label: net/http accepts any token as a method, and
// each distinct label value is a new time series.
func methodLabel(method string) string {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return method
	}
	return "other"
}

// recoverPanics turns a handler panic into a 500 and an error log line instead of a
// dropped connection, except for http.ErrAbortHandler, which means "drop it".
func recoverPanics(next http.Handler, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if v == http.ErrAbortHandler {
				panic(v)
			}
			log.Error("handler panicked", "method", r.Method, "path", r.URL.Path, "panic", v)
			http.Error(w, "internal error", http.StatusInternalServerError)
		}()
		next.ServeHTTP(w, r)
	})
}
