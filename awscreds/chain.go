package awscreds

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
)

// Chain is a Provider that tries providers in order and returns the first
// credentials found. It remembers which provider worked and asks it first next time;
// when none works, its error is a *ChainError holding every provider's error.
type Chain struct {
	providers []Provider
	last      atomic.Int32 // index+1 of the provider that last worked; 0 for none
}

// NewChain returns a Chain of providers, tried in the order given.
func NewChain(providers ...Provider) *Chain {
	return &Chain{providers: providers}
}

// Options configure the providers of DefaultChain.
type Options struct {
	// HTTPClient is used for the container endpoint and IMDS; nil means
	// http.DefaultClient, each request bounded by its own timeout.
	HTTPClient *http.Client
	// STS is the client template for role providers (profiles with role_arn, web
	// identity); its zero value resolves the region and endpoint from the
	// environment and profile.
	STS *STSClient
}

// DefaultChain returns the chain the AWS SDKs use by default: environment variables,
// the shared config and credentials files, web identity (EKS), the container endpoint
// (ECS), then EC2 IMDS. Wrap it in a Cache.
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

// Retrieve returns the credentials of the first provider that has some.
func (c *Chain) Retrieve(ctx context.Context) (Credentials, error) {
	var errs []error
	first := int(c.last.Load()) - 1
	if first >= 0 {
		creds, err := c.providers[first].Retrieve(ctx)
		if err == nil {
			return creds, nil
		}
		errs = append(errs, err)
	}
	for i, p := range c.providers {
		if i == first {
			continue
		}
		if err := ctx.Err(); err != nil {
			errs = append(errs, err)
			break
		}
		creds, err := p.Retrieve(ctx)
		if err == nil {
			c.last.Store(int32(i + 1))
			return creds, nil
		}
		errs = append(errs, err)
	}
	if len(c.providers) == 0 {
		errs = append(errs, fmt.Errorf("empty chain: %w", ErrNotConfigured))
	}
	return Credentials{}, &ChainError{Errs: errs}
}

// ChainError is returned by Chain when no provider produced credentials.
type ChainError struct {
	Errs []error // one per provider tried, in order
}

func (e *ChainError) Error() string {
	msgs := make([]string, len(e.Errs))
	for i, err := range e.Errs {
		msgs[i] = err.Error()
	}
	return "awscreds: no credentials from any source: " + strings.Join(msgs, "; ")
}

// Unwrap returns the providers' errors, so errors.As finds, say, an *APIError from
// any of them.
func (e *ChainError) Unwrap() []error { return e.Errs }

// NotConfigured reports whether no provider was configured at all (every error wraps
// ErrNotConfigured), as opposed to one being configured and failing.
func (e *ChainError) NotConfigured() bool {
	for _, err := range e.Errs {
		if !errors.Is(err, ErrNotConfigured) {
			return false
		}
	}
	return true
}
