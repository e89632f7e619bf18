package sigv4

import (
	"context"
	"log/slog"
	"time"
)

// Credentials are an AWS access key pair, with an optional session token and expiry.
//
// The zero value is "no credentials". String and LogValue redact the secret parts so a
// Credentials value can never leak through a log line or an error string.
type Credentials struct {
	AccessKeyID     string
	SecretAccessKey string
	SessionToken    string

	// Source names the provider that produced the credentials (for logs and metrics).
	Source string

	// CanExpire reports whether Expires is meaningful.
	CanExpire bool
	Expires   time.Time
}

// HasKeys reports whether both halves of the access key pair are set.
func (c Credentials) HasKeys() bool {
	return c.AccessKeyID != "" && c.SecretAccessKey != ""
}

// Expired reports whether the credentials have expired at now.
func (c Credentials) Expired(now time.Time) bool {
	return c.CanExpire && !now.Before(c.Expires)
}

// String describes the credentials without their secrets.
func (c Credentials) String() string {
	s := "Credentials{AccessKeyID: " + c.AccessKeyID + ", SecretAccessKey: [redacted]"
	if c.SessionToken != "" {
		s += ", SessionToken: [redacted]"
	}
	if c.Source != "" {
		s += ", Source: " + c.Source
	}
	if c.CanExpire {
		s += ", Expires: " + c.Expires.UTC().Format(time.RFC3339)
	}
	return s + "}"
}

// GoString keeps %#v from printing the secrets.
func (c Credentials) GoString() string { return c.String() }

// LogValue implements slog.LogValuer; it logs the key id and source, never a secret.
func (c Credentials) LogValue() slog.Value {
	attrs := []slog.Attr{slog.String("access_key_id", c.AccessKeyID), slog.String("source", c.Source)}
	if c.CanExpire {
		attrs = append(attrs, slog.Time("expires", c.Expires))
	}
	return slog.GroupValue(attrs...)
}

// CredentialsProvider is anything that can produce credentials, shaped like
// oauth2.TokenSource. Every awscreds provider satisfies it; sigv4 depends on nothing else.
type CredentialsProvider interface {
	Retrieve(ctx context.Context) (Credentials, error)
}

// CredentialsProviderFunc adapts a function to CredentialsProvider.
type CredentialsProviderFunc func(ctx context.Context) (Credentials, error)

// Retrieve calls f(ctx).
func (f CredentialsProviderFunc) Retrieve(ctx context.Context) (Credentials, error) { return f(ctx) }

// StaticCredentials is a CredentialsProvider that always returns the same credentials.
type StaticCredentials Credentials

// Retrieve returns the credentials.
func (s StaticCredentials) Retrieve(context.Context) (Credentials, error) { return Credentials(s), nil }

// String describes the credentials without their secrets. A defined type does not
// inherit Credentials' methods, so each redacting one is repeated here.
func (s StaticCredentials) String() string { return Credentials(s).String() }

// GoString keeps %#v from printing the secrets.
func (s StaticCredentials) GoString() string { return Credentials(s).String() }

// LogValue logs the credentials without their secrets.
func (s StaticCredentials) LogValue() slog.Value { return Credentials(s).LogValue() }
