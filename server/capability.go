package server

import (
	"context"
	"net/http"
)

// A Capability is one of Chancery's services (keybroker, imds, secrets, profiles)
// mounted into the server.
type Capability interface {
	// Name identifies the capability in logs, metrics and /readyz.
	Name() string
	// Register adds the capability's routes to mux, using method-and-path patterns.
	Register(mux *http.ServeMux)
}

// A ReadinessChecker is a Capability that depends on something that can be down (a
// database, Vault, KMS). /readyz reports 503 while any check fails.
type ReadinessChecker interface {
	CheckReady(ctx context.Context) error
}

// A Closer is a Capability that holds resources; Close is called once, after in-flight
// requests have drained, in the reverse order of registration.
type Closer interface {
	Close() error
}
