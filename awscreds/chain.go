package awscreds

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// Chain is a Provider that uses the first of its providers that is configured, as
// the AWS SDKs' default chain does. Providers whose error wraps ErrNotConfigured are
// passed over; the first one that returns credentials or any other error ends the
// search. A configured source that fails (a throttled AssumeRoleWithWebIdentity, an
// unreadable token file) is an error, not a reason to fall back: the next source is
// usually a broader identity (on EKS, IMDS holds the node's role), and signing with
// it would be silent privilege escalation. Every Retrieve starts from the first
// provider, so a source that becomes configured takes precedence again at once.
//
// When no credentials come, the error is a *ChainError.
type Chain struct {
	providers []Provider
}

// NewChain returns a Chain of providers, in order of precedence.
func NewChain(providers ...Provider) *Chain {
	return &Chain{providers: providers}
}

// Options configure the providers of DefaultChain.
type Options struct {
	// HTTPClient is used for the container endpoint and IMDS; nil means a client of
	// their own that uses no proxy and follows no redirect, each request bounded by
	// its own timeout.
	HTTPClient *http.Client
	// STS is the client template for role providers (profiles with role_arn, web
	// identity); its zero value resolves the region and endpoint from the
	// environment and profile.
	STS *STSClient
}

// DefaultChain returns the chain the AWS SDKs use by default: environment variables,
// the shared config and credentials files, web identity (EKS), the container endpoint
// (ECS), then EC2 IMDS. The first of them that is configured is used, and its failure
// is the chain's (see Chain). Wrap it in a Cache.
func DefaultChain(o Options) *Chain {
	return NewChain(
		Env{},
		&SharedConfig{STS: o.STS, HTTPClient: o.HTTPClient},
		webIdentityEnv{sts: o.STS},
		&Container{HTTPClient: o.HTTPClient},
		&IMDS{HTTPClient: o.HTTPClient},
	)
}

// webIdentityEnv reads the IRSA environment at every Retrieve rather than once.
type webIdentityEnv struct{ sts *STSClient }

func (w webIdentityEnv) Retrieve(ctx context.Context) (Credentials, error) {
	return WebIdentityFromEnv(w.sts).Retrieve(ctx)
}

// Retrieve returns the credentials of the first configured provider, or its error.
func (c *Chain) Retrieve(ctx context.Context) (Credentials, error) {
	var skipped []error
	for _, p := range c.providers {
		if err := ctx.Err(); err != nil {
			return Credentials{}, &ChainError{Errs: append(skipped, err)}
		}
		creds, err := p.Retrieve(ctx)
		if err == nil {
			return creds, nil
		}
		inner, _ := err.(*ChainError)
		if inner != nil && inner.NotConfigured() {
			skipped = append(skipped, inner.Errs...) // a nested chain with nothing configured
			continue
		}
		if errors.Is(err, ErrNotConfigured) {
			skipped = append(skipped, err)
			continue
		}
		if inner != nil && inner.Provider != "" {
			return Credentials{}, err // a nested chain already named its failed provider
		}
		return Credentials{}, &ChainError{Errs: append(skipped, err), Provider: sourceName(p)}
	}
	if len(c.providers) == 0 {
		skipped = append(skipped, fmt.Errorf("empty chain: %w", ErrNotConfigured))
	}
	return Credentials{}, &ChainError{Errs: skipped}
}

// sourceName names p in errors: its Source constant for the providers of this
// package, else its type.
func sourceName(p Provider) string {
	switch p.(type) {
	case Env:
		return SourceEnv
	case Static:
		return SourceStatic
	case *SharedConfig:
		return SourceSharedConfig
	case *WebIdentity, webIdentityEnv:
		return SourceWebIdentity
	case *Container:
		return SourceContainer
	case *IMDS:
		return SourceIMDS
	case *AssumeRole:
		return SourceAssumeRole
	case *Process:
		return SourceProcess
	}
	return fmt.Sprintf("%T", p)
}

// ChainError is returned by Chain when it has no credentials to give: either a
// configured provider failed, which ended the search (Provider names it), or no
// provider was configured at all, or the context ended first.
type ChainError struct {
	// Errs holds the error of each provider asked, in order: all but the last wrap
	// ErrNotConfigured, and the last is the failure when Provider is set.
	Errs []error
	// Provider names the configured provider that failed (a Source constant, or its
	// Go type); empty when none was configured.
	Provider string
}

func (e *ChainError) Error() string {
	if e.Provider != "" {
		return fmt.Sprintf("awscreds: credential source %s is configured but failed (later sources are not tried): %v",
			e.Provider, e.Errs[len(e.Errs)-1])
	}
	msgs := make([]string, len(e.Errs))
	for i, err := range e.Errs {
		msgs[i] = err.Error()
	}
	return "awscreds: no credentials from any source: " + strings.Join(msgs, "; ")
}

// Unwrap returns, when a provider failed or the context ended, that one error, so
// that errors.As finds, say, its *APIError, and errors.Is(err, ErrNotConfigured) is
// false; when nothing was configured, every provider's error.
func (e *ChainError) Unwrap() []error {
	if len(e.Errs) > 0 && !e.NotConfigured() {
		return e.Errs[len(e.Errs)-1:]
	}
	return e.Errs
}

// NotConfigured reports whether no provider was configured at all (every error wraps
// ErrNotConfigured), as opposed to one being configured and failing.
func (e *ChainError) NotConfigured() bool {
	if e.Provider != "" {
		return false
	}
	for _, err := range e.Errs {
		if !errors.Is(err, ErrNotConfigured) {
			return false
		}
	}
	return true
}
