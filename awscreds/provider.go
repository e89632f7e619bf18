package awscreds

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/chancery/chancery/sigv4"
)

// Credentials are an AWS access key pair with an optional session token and expiry.
type Credentials = sigv4.Credentials

// Provider is a source of AWS credentials, shaped like oauth2.TokenSource.
//
// Retrieve returns fresh credentials or an error; it must be safe for concurrent use.
// Providers do not cache: wrap one in a Cache for that.
type Provider interface {
	Retrieve(ctx context.Context) (Credentials, error)
}

// ProviderFunc adapts a function to Provider.
type ProviderFunc func(ctx context.Context) (Credentials, error)

// Retrieve calls f(ctx).
func (f ProviderFunc) Retrieve(ctx context.Context) (Credentials, error) { return f(ctx) }

// Names of the sources, set in Credentials.Source by each provider.
const (
	SourceStatic       = "static"
	SourceEnv          = "env"
	SourceSharedConfig = "shared-config"
	SourceProcess      = "process"
	SourceWebIdentity  = "web-identity"
	SourceContainer    = "ecs"
	SourceIMDS         = "imds"
	SourceAssumeRole   = "assume-role"
)

// ErrNotConfigured is wrapped by the error of a provider whose source is not set up
// in this environment at all (for example no AWS_ACCESS_KEY_ID for the environment
// provider). It tells "nothing here" apart from "configured, but failed".
var ErrNotConfigured = errors.New("awscreds: credential source not configured")

// Static is a Provider that always returns the same credentials.
type Static Credentials

// Retrieve returns the credentials, or an error wrapping ErrNotConfigured when either
// half of the key pair is empty.
func (s Static) Retrieve(context.Context) (Credentials, error) {
	c := Credentials(s)
	if !c.HasKeys() {
		return Credentials{}, fmt.Errorf("static credentials: access key id or secret key empty: %w", ErrNotConfigured)
	}
	if c.Source == "" {
		c.Source = SourceStatic
	}
	return c, nil
}

// String describes the credentials without their secrets.
func (s Static) String() string { return Credentials(s).String() }

// GoString keeps %#v from printing the secrets.
func (s Static) GoString() string { return Credentials(s).String() }

// LogValue logs the credentials without their secrets.
func (s Static) LogValue() slog.Value { return Credentials(s).LogValue() }

// Interface checks: every provider is a sigv4.CredentialsProvider.
var (
	_ sigv4.CredentialsProvider = Provider(nil)
	_ Provider                  = sigv4.CredentialsProvider(nil)
)
