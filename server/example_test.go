package server_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/chancery/chancery/server"
)

// hello is a minimal capability.
type hello struct{}

func (hello) Name() string { return "hello" }
func (hello) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /hello", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "hello\n") })
}

func Example() {
	srv, err := server.New(server.Options{
		Listen:          "127.0.0.1:0",
		ShutdownTimeout: 5 * time.Second,
		Logger:          slog.New(slog.NewTextHandler(io.Discard, nil)),
		Capabilities:    []server.Capability{hello{}},
	})
	if err != nil {
		panic(err)
	}
	addr, err := srv.Listen() // "address already in use" surfaces here
	if err != nil {
		panic(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- srv.Serve(ctx) }()

	for _, path := range []string{"/hello", "/healthz"} {
		resp, _ := http.Get("http://" + addr.String() + path)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Printf("%s %d %s", path, resp.StatusCode, body)
	}
	stop() // as SIGTERM does in chancery serve: drain, then return
	fmt.Println("stopped:", <-done)
	// Output:
	// /hello 200 hello
	// /healthz 200 ok
	// stopped: <nil>
}
