package awscreds

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
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

func TestChainFirstConfiguredWins(t *testing.T) {
	notHere := func(name string) *namedProvider {
		return &namedProvider{name: name, err: fmt.Errorf("%s: %w", name, ErrNotConfigured)}
	}
	throttled := &APIError{StatusCode: http.StatusBadRequest, Code: "Throttling"}
	tests := []struct {
		name      string
		providers []*namedProvider
		want      string // the credentials' key id; "" for an error
		failed    string // the name of the provider whose error is returned
		calls     []int32
	}{
		{"first configured", []*namedProvider{notHere("a"), {name: "b"}, {name: "c"}}, "b", "", []int32{1, 1, 0}},
		{"configured and failing stops the chain", []*namedProvider{notHere("a"), {name: "b", err: fmt.Errorf("b: %w", throttled)}, {name: "c"}}, "", "b", []int32{1, 1, 0}},
		{"plain error stops the chain", []*namedProvider{{name: "a", err: errors.New("a: token file unreadable")}, {name: "b"}}, "", "a", []int32{1, 0}},
		{"none configured", []*namedProvider{notHere("a"), notHere("b")}, "", "", []int32{1, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ps := make([]Provider, len(tt.providers))
			for i, p := range tt.providers {
				ps[i] = p
			}
			creds, err := NewChain(ps...).Retrieve(context.Background())
			for i, p := range tt.providers {
				if p.calls.Load() != tt.calls[i] {
					t.Errorf("provider %s called %d times, want %d", p.name, p.calls.Load(), tt.calls[i])
				}
			}
			if tt.want != "" {
				if err != nil || creds.AccessKeyID != tt.want {
					t.Fatalf("Retrieve = %v, %v; want %s's credentials", creds, err, tt.want)
				}
				return
			}
			var chainErr *ChainError
			if !errors.As(err, &chainErr) {
				t.Fatalf("Retrieve error = %v, want a *ChainError", err)
			}
			if tt.failed == "" {
				if !chainErr.NotConfigured() || !errors.Is(err, ErrNotConfigured) || chainErr.Provider != "" {
					t.Errorf("nothing configured: NotConfigured() %v, Provider %q, error %v", chainErr.NotConfigured(), chainErr.Provider, err)
				}
				return
			}
			if chainErr.NotConfigured() || errors.Is(err, ErrNotConfigured) {
				t.Errorf("a configured provider failed, yet the error says not configured: %v", err)
			}
			if !strings.Contains(err.Error(), tt.failed+": ") || !strings.Contains(err.Error(), "*awscreds.namedProvider") {
				t.Errorf("error %q does not name the failed provider and its error", err)
			}
			if tt.failed == "b" {
				var apiErr *APIError
				if !errors.As(err, &apiErr) || apiErr != throttled {
					t.Errorf("errors.As(*APIError) through the chain error failed: %v", err)
				}
			}
		})
	}
}

// TestChainKeepsPrecedence: the provider that worked last is not preferred; each
// Retrieve starts from the first, so a failing first provider is never skipped, and
// one that becomes configured is used at once.
func TestChainKeepsPrecedence(t *testing.T) {
	first := &namedProvider{name: "irsa", err: fmt.Errorf("irsa: %w", ErrNotConfigured)}
	second := &namedProvider{name: "node"}
	c := NewChain(first, second)
	if got := mustRetrieve(t, c); got.AccessKeyID != "node" {
		t.Fatalf("with irsa not configured: %s, want node", got.AccessKeyID)
	}
	first.err = nil
	if got := mustRetrieve(t, c); got.AccessKeyID != "irsa" {
		t.Fatalf("once irsa is configured: %s, want irsa", got.AccessKeyID)
	}
	first.err = errors.New("irsa: throttled")
	if creds, err := c.Retrieve(context.Background()); err == nil {
		t.Fatalf("irsa failing: got %s's credentials, want its error", creds.AccessKeyID)
	}
	if second.calls.Load() != 1 {
		t.Errorf("node provider asked %d times, want once (while irsa was not configured)", second.calls.Load())
	}
}

func TestChainError(t *testing.T) {
	apiErr := &APIError{StatusCode: http.StatusForbidden, Code: "AccessDenied"}
	_, err := NewChain(
		Env{},
		&namedProvider{err: fmt.Errorf("assume role: %w", apiErr)},
		&namedProvider{err: errors.New("imds: timeout")},
	).Retrieve(context.Background())
	var chainErr *ChainError
	if !errors.As(err, &chainErr) || len(chainErr.Errs) != 2 {
		t.Fatalf("Retrieve error = %v, want a *ChainError with 2 errors", err)
	}
	for _, want := range []string{"assume role: ", "AccessDenied"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not report %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "imds") {
		t.Errorf("error %q reports a provider after the one that failed", err)
	}

	_, err = NewChain(Env{}, &namedProvider{err: ErrNotConfigured}).Retrieve(context.Background())
	if !errors.As(err, &chainErr) || !chainErr.NotConfigured() || !strings.Contains(err.Error(), "AWS_ACCESS_KEY_ID not set") {
		t.Errorf("chain of unconfigured providers: %v", err)
	}
	if _, err := NewChain().Retrieve(context.Background()); !errors.As(err, &chainErr) || !chainErr.NotConfigured() {
		t.Errorf("empty chain: %v", err)
	}
}

// TestChainNested: a chain inside a chain (the CLI puts its own environment before
// DefaultChain) is passed over when nothing in it is configured, and its failure is
// returned as it is, naming the provider inside that failed.
func TestChainNested(t *testing.T) {
	clearAWSEnv(t)
	outer := &namedProvider{name: "outer", err: fmt.Errorf("outer: %w", ErrNotConfigured)}
	last := &namedProvider{name: "last"}
	inner := NewChain(Env{}, &namedProvider{name: "inner", err: fmt.Errorf("inner: %w", ErrNotConfigured)})
	if got := mustRetrieve(t, NewChain(outer, inner, last)); got.AccessKeyID != "last" {
		t.Errorf("nothing configured in the nested chain: %s, want last", got.AccessKeyID)
	}
	failing := NewChain(Env{}, &IMDS{Endpoint: "http://127.0.0.1:1", MaxAttempts: 1})
	_, err := NewChain(outer, failing, last).Retrieve(context.Background())
	var chainErr *ChainError
	if !errors.As(err, &chainErr) || chainErr.Provider != SourceIMDS || strings.Count(err.Error(), "awscreds: ") != 1 {
		t.Errorf("failure in the nested chain: %v, want one *ChainError naming imds", err)
	}
	if last.calls.Load() != 1 {
		t.Errorf("provider after the nested chain asked %d times, want 1", last.calls.Load())
	}
}

func TestChainStopsOnCancelledContext(t *testing.T) {
	second := &namedProvider{name: "b"}
	ctx, cancel := context.WithCancel(context.Background())
	first := ProviderFunc(func(context.Context) (Credentials, error) {
		cancel()
		return Credentials{}, fmt.Errorf("a: %w", ErrNotConfigured)
	})
	_, err := NewChain(first, second).Retrieve(ctx)
	if !errors.Is(err, context.Canceled) || errors.Is(err, ErrNotConfigured) || second.calls.Load() != 0 {
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

// TestDefaultChainIRSAThrottledDoesNotFallBackToIMDS: on EKS with IRSA, the node's
// IMDS also has a role. A throttled AssumeRoleWithWebIdentity must fail the chain, not
// hand out the node role. STS cannot be made to throttle in moto, so a stand-in
// answers as STS does; IMDS is the IMDSv2 stand-in of imds_test.go.
func TestDefaultChainIRSAThrottledDoesNotFallBackToIMDS(t *testing.T) {
	clearAWSEnv(t)
	var throttle atomic.Bool
	throttle.Store(true)
	var stsCalls atomic.Int32
	sts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		stsCalls.Add(1)
		r.ParseForm()
		if r.Form.Get("Action") != "AssumeRoleWithWebIdentity" {
			http.Error(w, "unexpected action", http.StatusBadRequest)
			return
		}
		if throttle.Load() {
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, `<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error><RequestId>r-1</RequestId></ErrorResponse>`)
			return
		}
		fmt.Fprintf(w, `<AssumeRoleWithWebIdentityResponse><AssumeRoleWithWebIdentityResult><Credentials>`+
			`<AccessKeyId>ASIAPOD</AccessKeyId><SecretAccessKey>pod-secret</SecretAccessKey><SessionToken>pod-token</SessionToken>`+
			`<Expiration>%s</Expiration></Credentials></AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>`,
			time.Now().Add(time.Hour).UTC().Format(time.RFC3339))
	}))
	t.Cleanup(sts.Close)
	imds, imdsSrv := newFakeIMDS(t) // serves ASIAIMDS, the node's role

	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("eyJhbGciOiJSUzI1NiJ9.e30.c2ln"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_WEB_IDENTITY_TOKEN_FILE", tokenFile)
	t.Setenv("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/pod")
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_ENDPOINT_URL_STS", sts.URL)
	t.Setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", imdsSrv.URL)

	chain := DefaultChain(Options{})
	creds, err := chain.Retrieve(context.Background())
	if err == nil {
		t.Fatalf("with STS throttling, the chain returned %s credentials (%s)", creds.Source, creds.AccessKeyID)
	}
	var chainErr *ChainError
	var apiErr *APIError
	if !errors.As(err, &chainErr) || chainErr.Provider != SourceWebIdentity || !errors.As(err, &apiErr) || apiErr.Code != "Throttling" {
		t.Errorf("error %v: want a *ChainError naming web-identity, wrapping the Throttling error", err)
	}
	if puts, gets := imds.counts(); puts+gets != 0 || stsCalls.Load() == 0 {
		t.Errorf("IMDS asked %d times and STS %d times; want IMDS never asked", puts+gets, stsCalls.Load())
	}

	throttle.Store(false)
	if creds := mustRetrieve(t, chain); creds.Source != SourceWebIdentity || creds.AccessKeyID != "ASIAPOD" {
		t.Errorf("once STS answers: %v, want the pod's role", creds)
	}
}
