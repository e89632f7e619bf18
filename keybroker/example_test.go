package keybroker_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/chancery/chancery/keybroker"
	"github.com/chancery/chancery/store"
)

func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "chancery-keybroker")
	defer os.RemoveAll(dir)
	db, err := store.Open(ctx, store.Config{}, dir)
	if err != nil {
		panic(err)
	}
	defer db.Close()

	broker, err := keybroker.New(ctx, keybroker.Config{
		ServerID: "chancery.example.internal",
		// STSEndpoints defaults to AWS's public STS endpoints.
		Bindings: []keybroker.Binding{{
			Role:   "arn:aws:iam::123456789012:role/web-*",
			Tenant: "acme",
			TTL:    24 * time.Hour,
			Scopes: []string{"secrets:read"},
		}},
	}, db, keybroker.Options{})
	if err != nil {
		panic(err)
	}
	defer broker.Close()

	mux := http.NewServeMux()
	broker.Register(mux) // POST /api/v2/intake-key, GET /v1/keys/self

	// Other services validate keys in process, from memory.
	_, err = broker.Introspect(ctx, "chy_not-a-key")
	fmt.Println(err)
	// Output: unknown, expired or revoked API key
}
