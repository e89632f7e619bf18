package awscreds

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
)

// namedProvider returns credentials named after it, or fails as told.
type namedProvider struct {
	name  string
	err   error
	calls atomic.Int32
}

func (p *namedProvider) Retrieve(context.Context) (Credentials, error) {
	p.calls.Add(1)
	if p.err != nil {
		return Credentials{}, p.err
	}
	return Credentials{AccessKeyID: p.name, SecretAccessKey: "s", Source: p.name}, nil
}

func TestChainOrderAndMemory(t *testing.T) {
	notHere := &namedProvider{name: "a", err: fmt.Errorf("a: %w", ErrNotConfigured)}
	broken := &namedProvider{name: "b", err: errors.New("b: broken")}
	works := &namedProvider{name: "c"}
	later := &namedProvider{name: "d"}
	c := NewChain(notHere, broken, works, later)

	if got := mustRetrieve(t, c); got.AccessKeyID != "c" {
		t.Fatalf("first Retrieve = %s, want c", got.AccessKeyID)
	}
	if got := mustRetrieve(t, c); got.AccessKeyID != "c" {
		t.Fatalf("second Retrieve = %s, want c", got.AccessKeyID)
	}
	// The second call went straight to the provider that worked.
	if notHere.calls.Load() != 1 || broken.calls.Load() != 1 || works.calls.Load() != 2 || later.calls.Load() != 0 {
		t.Errorf("calls a=%d b=%d c=%d d=%d, want 1 1 2 0", notHere.calls.Load(), broken.calls.Load(), works.calls.Load(), later.calls.Load())
	}
	// When the remembered provider stops working, the whole chain is tried again.
	works.err = errors.New("c: gone")
	if got := mustRetrieve(t, c); got.AccessKeyID != "d" {
		t.Fatalf("after c failed Retrieve = %s, want d", got.AccessKeyID)
	}
}

func TestChainError(t *testing.T) {
	apiErr := &APIError{StatusCode: http.StatusForbidden, Code: "AccessDenied"}
	c := NewChain(
		&namedProvider{err: fmt.Errorf("env: %w", ErrNotConfigured)},
		&namedProvider{err: fmt.Errorf("assume role: %w", apiErr)},
		&namedProvider{err: errors.New("imds: timeout")},
	)
	_, err := c.Retrieve(context.Background())
	var chainErr *ChainError
	if !errors.As(err, &chainErr) || len(chainErr.Errs) != 3 {
		t.Fatalf("Retrieve error = %v, want a *ChainError with 3 errors", err)
	}
	for _, want := range []string{"env: ", "assume role: ", "AccessDenied", "imds: timeout"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not report %q", err, want)
		}
	}
	var gotAPI *APIError
	if !errors.As(err, &gotAPI) || gotAPI != apiErr {
		t.Errorf("errors.As(*APIError) through the chain error failed")
	}
	if chainErr.NotConfigured() {
		t.Error("NotConfigured() = true with configured providers failing")
	}

	_, err = NewChain(&namedProvider{err: ErrNotConfigured}, &namedProvider{err: ErrNotConfigured}).Retrieve(context.Background())
	if !errors.As(err, &chainErr) || !chainErr.NotConfigured() {
		t.Errorf("chain of unconfigured providers: NotConfigured() false, error %v", err)
	}
	if _, err := NewChain().Retrieve(context.Background()); !errors.As(err, &chainErr) || !chainErr.NotConfigured() {
		t.Errorf("empty chain: %v", err)
	}
}

func TestChainStopsOnCancelledContext(t *testing.T) {
	second := &namedProvider{name: "b"}
	ctx, cancel := context.WithCancel(context.Background())
	first := ProviderFunc(func(context.Context) (Credentials, error) {
		cancel()
		return Credentials{}, errors.New("a: failed")
	})
	_, err := NewChain(first, second).Retrieve(ctx)
	if !errors.Is(err, context.Canceled) || second.calls.Load() != 0 {
		t.Errorf("Retrieve = %v with %d calls to the next provider; want context.Canceled and none", err, second.calls.Load())
	}
}

func TestDefaultChainOrder(t *testing.T) {
	clearAWSEnv(t)
	writeSharedFiles(t, "", "[default]\naws_access_key_id = AKFILE\naws_secret_access_key = s\n")
	c := DefaultChain(Options{})
	if got := mustRetrieve(t, c); got.Source != SourceSharedConfig {
		t.Errorf("with only a credentials file: source %s", got.Source)
	}
	t.Setenv("AWS_ACCESS_KEY_ID", "AKENV")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "s")
	if got := mustRetrieve(t, DefaultChain(Options{})); got.Source != SourceEnv {
		t.Errorf("with env and file: source %s, want env first", got.Source)
	}
}
