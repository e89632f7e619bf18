package delegatedauth_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/chancery/chancery/delegatedauth"
	"github.com/chancery/chancery/sigv4"
)

func ExampleRefresher() {
	// A stand-in broker; in production this is `chancery serve` or Datadog's intake.
	broker := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"data":{"attributes":{"api_key":"chk_managed_0123456789abcdef","expires_at":"2099-01-01T00:00:00Z"}}}`)
	}))
	defer broker.Close()

	exchanger := &delegatedauth.Exchanger{
		Server: broker.URL,
		Prover: &delegatedauth.AWSProver{
			// In production: awscreds.DefaultChain wrapped in an awscreds.Cache.
			Credentials: sigv4.StaticCredentials{AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: "example-secret"},
			OrgID:       "acme",
			ServerID:    "chancery.example.com",
		},
	}
	r := delegatedauth.NewRefresher(exchanger, delegatedauth.RefresherOptions{
		Name:   "main",
		Static: delegatedauth.NewAPIKey("static_fallback_key_0123"),
		// In production leave Detect nil: awscreds.Detect decides.
		Detect: func(context.Context) bool { return true },
	})
	r.Subscribe(func(k delegatedauth.Key) { fmt.Println("key changed:", k.APIKey) })
	if err := r.Start(context.Background()); err != nil {
		fmt.Println(err)
		return
	}
	defer r.Stop()

	k, err := r.Key(context.Background())
	if err != nil {
		fmt.Println(err)
		return
	}
	// Send k.APIKey.Reveal() with each request; print only the redacted form.
	fmt.Println("managed:", k.Managed, "key:", k.APIKey)
	// Output:
	// key changed: chk_…[redacted]
	// managed: true key: chk_…[redacted]
}

func ExampleRefresher_offCloud() {
	r := delegatedauth.NewRefresher(nil, delegatedauth.RefresherOptions{
		Static: delegatedauth.NewAPIKey("static_fallback_key_0123"),
		Detect: func(context.Context) bool { return false },
	})
	if err := r.Start(context.Background()); err != nil {
		fmt.Println(err)
		return
	}
	defer r.Stop()
	k, _ := r.Key(context.Background())
	fmt.Println("managed:", k.Managed, "key:", k.APIKey)
	// Output: managed: false key: stat…[redacted]
}
