package awscreds

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// testClock is a settable clock for Cache tests.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func newTestClock() *testClock {
	return &testClock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// countingProvider issues numbered credentials that live for life, counting calls.
type countingProvider struct {
	clock *testClock
	life  time.Duration // zero: the credentials do not expire
	calls atomic.Int32
	fail  atomic.Bool
	// gate, when set, is waited on by every call, so tests can hold a refresh open.
	gate    chan struct{}
	entered chan context.Context
}

func (p *countingProvider) Retrieve(ctx context.Context) (Credentials, error) {
	n := p.calls.Add(1)
	if p.entered != nil {
		p.entered <- ctx
	}
	if p.gate != nil {
		<-p.gate
	}
	if p.fail.Load() {
		return Credentials{}, fmt.Errorf("source unavailable (call %d)", n)
	}
	c := Credentials{AccessKeyID: fmt.Sprintf("AKID%d", n), SecretAccessKey: "secret", Source: "test"}
	if p.life > 0 {
		c.CanExpire, c.Expires = true, p.clock.Now().Add(p.life)
	}
	return c, nil
}

func quietCache(p Provider, o CacheOptions) *Cache {
	o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	return NewCache(p, o)
}

func mustRetrieve(t *testing.T, p Provider) Credentials {
	t.Helper()
	c, err := p.Retrieve(context.Background())
	if err != nil {
		t.Fatalf("Retrieve: %v", err)
	}
	return c
}

func TestCacheSingleFlight(t *testing.T) {
	clock := newTestClock()
	p := &countingProvider{clock: clock, life: time.Hour, gate: make(chan struct{}), entered: make(chan context.Context, 1)}
	c := quietCache(p, CacheOptions{Now: clock.Now})

	const n = 100
	var wg sync.WaitGroup
	got := make(chan string, n)
	for range n {
		wg.Go(func() {
			creds, err := c.Retrieve(context.Background())
			if err != nil {
				t.Errorf("Retrieve: %v", err)
				return
			}
			got <- creds.AccessKeyID
		})
	}
	<-p.entered // one refresh is in flight; let the others pile up behind it
	time.Sleep(10 * time.Millisecond)
	close(p.gate)
	wg.Wait()
	close(got)
	for id := range got {
		if id != "AKID1" {
			t.Errorf("caller got %s, want AKID1", id)
		}
	}
	if calls := p.calls.Load(); calls != 1 {
		t.Errorf("provider called %d times for %d concurrent callers, want 1", calls, n)
	}
}

func TestCacheRefreshAhead(t *testing.T) {
	tests := []struct {
		name      string
		life      time.Duration
		window    time.Duration
		advance   time.Duration
		wantCalls int32
		wantID    string
	}{
		{"fresh", time.Hour, 5 * time.Minute, 54 * time.Minute, 1, "AKID1"},
		{"just before window", time.Hour, 5 * time.Minute, 55*time.Minute - time.Nanosecond, 1, "AKID1"},
		{"in window", time.Hour, 5 * time.Minute, 55 * time.Minute, 2, "AKID2"},
		{"expired", time.Hour, 5 * time.Minute, 2 * time.Hour, 2, "AKID2"},
		{"default window", time.Hour, 0, 56 * time.Minute, 2, "AKID2"},
		{"short-lived at half life", 4 * time.Minute, 5 * time.Minute, 2 * time.Minute, 2, "AKID2"},
		{"short-lived before half life", 4 * time.Minute, 5 * time.Minute, 119 * time.Second, 1, "AKID1"},
		{"never expires", 0, 5 * time.Minute, 1000 * time.Hour, 1, "AKID1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := newTestClock()
			p := &countingProvider{clock: clock, life: tt.life}
			c := quietCache(p, CacheOptions{Now: clock.Now, ExpiryWindow: tt.window})
			mustRetrieve(t, c)
			clock.Advance(tt.advance)
			got := mustRetrieve(t, c)
			if got.AccessKeyID != tt.wantID || p.calls.Load() != tt.wantCalls {
				t.Errorf("after %v: got %s with %d provider calls, want %s with %d", tt.advance, got.AccessKeyID, p.calls.Load(), tt.wantID, tt.wantCalls)
			}
		})
	}
}

func TestCacheStaleIfError(t *testing.T) {
	clock := newTestClock()
	p := &countingProvider{clock: clock, life: time.Hour}
	c := quietCache(p, CacheOptions{Now: clock.Now})
	mustRetrieve(t, c)

	p.fail.Store(true)
	clock.Advance(58 * time.Minute) // in the refresh window, not expired
	if got := mustRetrieve(t, c); got.AccessKeyID != "AKID1" {
		t.Fatalf("during failing refresh got %s, want the cached AKID1", got.AccessKeyID)
	}
	if calls := p.calls.Load(); calls != 2 {
		t.Fatalf("provider calls = %d, want 2 (one failed refresh)", calls)
	}
	// Right after a failure the source is left alone (backoff), not hit per call.
	mustRetrieve(t, c)
	if calls := p.calls.Load(); calls != 2 {
		t.Errorf("provider calls = %d right after a failed refresh, want 2", calls)
	}
	// After the backoff (at most a minute) another refresh is tried.
	clock.Advance(61 * time.Second)
	mustRetrieve(t, c)
	if calls := p.calls.Load(); calls != 3 {
		t.Errorf("provider calls = %d after the backoff, want 3", calls)
	}
	// Once expired, the old credentials are never served.
	clock.Advance(2 * time.Minute)
	got, err := c.Retrieve(context.Background())
	if err == nil {
		t.Fatalf("Retrieve after expiry with failing source = %v, want error", got)
	}
	// And the source recovering brings the cache back.
	p.fail.Store(false)
	if got := mustRetrieve(t, c); got.Expired(clock.Now()) {
		t.Errorf("after recovery got expired credentials %v", got)
	}
}

func TestCacheRejectsBadCredentials(t *testing.T) {
	clock := newTestClock()
	tests := []struct {
		name  string
		creds Credentials
	}{
		{"expired", Credentials{AccessKeyID: "A", SecretAccessKey: "S", CanExpire: true, Expires: clock.Now().Add(-time.Second)}},
		{"expires now", Credentials{AccessKeyID: "A", SecretAccessKey: "S", CanExpire: true, Expires: clock.Now()}},
		{"no secret", Credentials{AccessKeyID: "A"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := quietCache(ProviderFunc(func(context.Context) (Credentials, error) { return tt.creds, nil }), CacheOptions{Now: clock.Now})
			if got, err := c.Retrieve(context.Background()); err == nil {
				t.Errorf("Retrieve = %v, want error", got)
			}
		})
	}
}

func TestCacheJitterBounds(t *testing.T) {
	clock := newTestClock()
	const window, jitter = 5 * time.Minute, 2 * time.Minute
	c := quietCache(nil, CacheOptions{Now: clock.Now, ExpiryWindow: window, Jitter: jitter})
	exp := clock.Now().Add(time.Hour)
	creds := Credentials{CanExpire: true, Expires: exp}
	seen := map[time.Time]bool{}
	for range 1000 {
		at := c.refreshAt(creds, clock.Now())
		if at.Before(exp.Add(-window-jitter)) || at.After(exp.Add(-window)) {
			t.Fatalf("refresh at %v, want within [%v, %v]", at, exp.Add(-window-jitter), exp.Add(-window))
		}
		seen[at] = true
	}
	if len(seen) < 100 {
		t.Errorf("only %d distinct refresh times out of 1000: jitter is not random", len(seen))
	}
	// Without jitter the time is exact.
	c = quietCache(nil, CacheOptions{Now: clock.Now, ExpiryWindow: window})
	if at := c.refreshAt(creds, clock.Now()); !at.Equal(exp.Add(-window)) {
		t.Errorf("refresh at %v without jitter, want %v", at, exp.Add(-window))
	}
}

func TestCacheCallerContext(t *testing.T) {
	clock := newTestClock()
	p := &countingProvider{clock: clock, life: time.Hour, gate: make(chan struct{}), entered: make(chan context.Context, 2)}
	c := quietCache(p, CacheOptions{Now: clock.Now})

	// A caller that gives up gets its context's error...
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := c.Retrieve(ctx)
		errc <- err
	}()
	refreshCtx := <-p.entered
	patient := make(chan Credentials, 1)
	go func() {
		creds, err := c.Retrieve(context.Background())
		if err != nil {
			t.Errorf("patient caller: %v", err)
		}
		patient <- creds
	}()
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("impatient caller got %v, want context.Canceled", err)
	}
	// ...without cancelling the refresh the other caller waits on.
	if err := refreshCtx.Err(); err != nil {
		t.Fatalf("shared refresh context cancelled with its first caller: %v", err)
	}
	close(p.gate)
	if got := <-patient; got.AccessKeyID != "AKID1" {
		t.Errorf("patient caller got %s, want AKID1", got.AccessKeyID)
	}

	// In the refresh window, a caller that cannot wait still gets the valid credentials.
	p.gate = make(chan struct{})
	clock.Advance(58 * time.Minute)
	ctx, cancel = context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	got, err := c.Retrieve(ctx)
	if err != nil || got.AccessKeyID != "AKID1" {
		t.Errorf("in window with short deadline: got %v, %v; want AKID1", got, err)
	}
	<-p.entered
	close(p.gate)
}

func TestCacheRefreshTimeout(t *testing.T) {
	clock := newTestClock()
	block := ProviderFunc(func(ctx context.Context) (Credentials, error) {
		<-ctx.Done()
		return Credentials{}, ctx.Err()
	})
	c := quietCache(block, CacheOptions{Now: clock.Now, RefreshTimeout: 10 * time.Millisecond})
	if _, err := c.Retrieve(context.Background()); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Retrieve with a hung provider = %v, want DeadlineExceeded from RefreshTimeout", err)
	}
}

func TestCacheInvalidate(t *testing.T) {
	clock := newTestClock()
	p := &countingProvider{clock: clock} // non-expiring
	c := quietCache(p, CacheOptions{Now: clock.Now})
	mustRetrieve(t, c)
	c.Invalidate()
	if got := mustRetrieve(t, c); got.AccessKeyID != "AKID2" {
		t.Errorf("after Invalidate got %s, want AKID2", got.AccessKeyID)
	}
	mustRetrieve(t, c)
	if calls := p.calls.Load(); calls != 2 {
		t.Errorf("provider calls = %d, want 2", calls)
	}
}

// TestCacheConcurrentRefreshes runs many callers while time moves through several
// credential lifetimes; run with -race. No caller may ever get expired credentials.
func TestCacheConcurrentRefreshes(t *testing.T) {
	clock := newTestClock()
	p := &countingProvider{clock: clock, life: 10 * time.Minute}
	c := quietCache(p, CacheOptions{Now: clock.Now, ExpiryWindow: time.Minute, Jitter: 30 * time.Second})
	var wg sync.WaitGroup
	var stop atomic.Bool
	for range 20 {
		wg.Go(func() {
			for !stop.Load() {
				before := clock.Now()
				creds, err := c.Retrieve(context.Background())
				if err != nil {
					t.Errorf("Retrieve: %v", err)
					return
				}
				if creds.Expired(before) {
					t.Errorf("got credentials expired at %v, before the call at %v", creds.Expires, before)
					return
				}
			}
		})
	}
	for range 100 {
		clock.Advance(30 * time.Second)
		time.Sleep(200 * time.Microsecond)
	}
	stop.Store(true)
	wg.Wait()
	// 50 minutes of 10-minute credentials refreshed ahead: a handful of refreshes.
	if calls := p.calls.Load(); calls < 2 || calls > 100 {
		t.Errorf("provider calls = %d, want a few refreshes", calls)
	}
}
