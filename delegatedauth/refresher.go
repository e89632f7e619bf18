package delegatedauth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/chancery/chancery/awscreds"
)

// Refresher defaults.
const (
	DefaultRefreshInterval = 60 * time.Minute
	DefaultMinRetry        = 30 * time.Second
	DefaultMaxRetry        = time.Hour
	// jitterFraction spreads refreshes and retries by ±10 % so a fleet started together
	// does not call the broker together.
	jitterFraction = 0.10
)

// ErrStopped is returned by Start on a Refresher that was stopped (or replaced in a
// Set) before it started.
var ErrStopped = errors.New("delegatedauth: refresher stopped")

// RefresherOptions configure a Refresher. The zero value is usable: AWS detection,
// hourly refresh, retries from 30 s doubling up to an hour, no static key.
type RefresherOptions struct {
	// Name identifies the instance in logs (e.g. the config prefix it serves).
	Name string
	// Static is the fallback key, served when no cloud identity is detected, and
	// when delegated auth has never succeeded or its key has expired.
	Static APIKey
	// Detect reports whether the process has a cloud identity to prove. Nil means
	// awscreds.Detect. It is called once, by Start.
	Detect func(ctx context.Context) bool
	// Interval between refreshes after a success; zero means DefaultRefreshInterval.
	// A key that expires sooner is refreshed at half its remaining lifetime.
	Interval time.Duration
	// MinRetry is the wait after a first failure, doubled at each further failure up
	// to MaxRetry. Zero means DefaultMinRetry and DefaultMaxRetry.
	MinRetry, MaxRetry time.Duration
	// Clock defaults to SystemClock.
	Clock Clock
	// Logger defaults to discarding.
	Logger *slog.Logger
	// Metrics, if not nil, records attempts and the key served, labelled with Name;
	// Stop deletes the series of Name, so refreshers that share a Metrics need
	// distinct names (a Set replaces a name's refresher only after stopping the old).
	Metrics *Metrics
}

// A Refresher keeps an API key fresh in the background. Start gets a first key, then a
// goroutine refreshes it on a schedule, backing off with jitter on failure. It serves
// the last good key while refreshes fail, and the static key when there is no managed
// key to serve. Off-cloud it serves the static key and never calls the broker.
//
// No lock is held while the key source runs, and once Stop has begun no result is
// published: a late answer from an exchange that was in flight is dropped.
type Refresher struct {
	src      KeySource
	name     string
	static   APIKey
	detect   func(context.Context) bool
	interval time.Duration
	minRetry time.Duration
	maxRetry time.Duration
	clock    Clock
	log      *slog.Logger
	metrics  *Metrics
	jitter   func() float64 // in [0, 1); tests pin it

	// notifyMu serialises publishing, so subscribers see changes in order and Stop can
	// wait for a notification in progress. It is taken before mu, never after.
	notifyMu sync.Mutex

	mu       sync.Mutex
	started  bool
	stopped  bool
	cancel   context.CancelFunc
	cur      Key
	lastErr  error
	failures int
	next     time.Time
	subs     map[int]func(Key)
	nextSub  int
	lastTry  time.Time // when the last attempt finished, to pace Rejected

	wake chan struct{} // Rejected asks the loop to refresh now

	wg sync.WaitGroup // Start and the refresh loop

	forget sync.Once // deletes the metrics series, on the first Stop
}

// NewRefresher returns a Refresher of keys from src. Call Start to begin.
func NewRefresher(src KeySource, o RefresherOptions) *Refresher {
	r := &Refresher{
		src:      src,
		name:     o.Name,
		static:   o.Static,
		detect:   o.Detect,
		interval: o.Interval,
		minRetry: o.MinRetry,
		maxRetry: o.MaxRetry,
		clock:    o.Clock,
		log:      o.Logger,
		metrics:  o.Metrics,
		jitter:   rand.Float64,
		subs:     map[int]func(Key){},
		wake:     make(chan struct{}, 1),
	}
	if r.detect == nil {
		r.detect = func(ctx context.Context) bool { _, ok := awscreds.Detect(ctx); return ok }
	}
	if r.interval <= 0 {
		r.interval = DefaultRefreshInterval
	}
	if r.minRetry <= 0 {
		r.minRetry = DefaultMinRetry
	}
	if r.maxRetry <= 0 {
		r.maxRetry = DefaultMaxRetry
	}
	if r.maxRetry < r.minRetry {
		r.maxRetry = r.minRetry
	}
	if r.clock == nil {
		r.clock = SystemClock{}
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	r.log = r.log.With("instance", r.name)
	return r
}

// Start detects the cloud identity and, if there is one, gets a first key and starts
// refreshing it in the background until Stop. Off-cloud it serves the static key and
// starts nothing. A failed first exchange is not an error: the static key is served
// while retries go on. Start returns an error only when ctx ends before the first
// attempt completes, or when the Refresher was stopped or already started.
//
// ctx bounds detection and the first exchange; the background refresh outlives it.
func (r *Refresher) Start(ctx context.Context) error {
	r.mu.Lock()
	switch {
	case r.stopped:
		r.mu.Unlock()
		return ErrStopped
	case r.started:
		r.mu.Unlock()
		return fmt.Errorf("delegatedauth: refresher %q already started", r.name)
	}
	r.started = true
	// The loop keeps ctx's values but not its deadline.
	loopCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	r.cancel = cancel
	r.wg.Add(1)
	r.mu.Unlock()

	loopStarted := false
	defer func() {
		if !loopStarted {
			r.wg.Done()
		}
	}()

	// The first attempt ends with ctx or with Stop, whichever comes first.
	firstCtx, cancelFirst := context.WithCancel(ctx)
	defer cancelFirst()
	defer context.AfterFunc(loopCtx, cancelFirst)()

	if !r.detect(firstCtx) {
		if err := ctx.Err(); err != nil {
			r.halt()
			return fmt.Errorf("delegatedauth: start %q: detect cloud identity: %w", r.name, err)
		}
		r.log.Info("delegated auth: no cloud identity detected; serving the static API key", "static_key", !r.static.IsZero())
		r.publish(Key{APIKey: r.static}, nil)
		return r.stoppedErr()
	}

	wait, ok := r.attempt(firstCtx)
	if err := ctx.Err(); err != nil && !ok {
		r.halt()
		return fmt.Errorf("delegatedauth: start %q: first key: %w", r.name, err)
	}
	r.mu.Lock()
	if r.stopped {
		r.mu.Unlock()
		return ErrStopped
	}
	loopStarted = true
	r.mu.Unlock()
	go r.loop(loopCtx, wait)
	return nil
}

func (r *Refresher) stoppedErr() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopped {
		return ErrStopped
	}
	return nil
}

// loop refreshes the key until ctx ends.
func (r *Refresher) loop(ctx context.Context, wait time.Duration) {
	defer r.wg.Done()
	for {
		t := r.clock.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C():
		case <-r.wake:
			t.Stop()
		}
		wait, _ = r.attempt(ctx)
		if ctx.Err() != nil {
			return
		}
	}
}

// Rejected tells the Refresher that a service refused key (an HTTP 401 or 403, say):
// the broker revoked it or rotated it out early. If key is the managed key being
// served, the Refresher gets a new one now rather than at its next scheduled refresh.
// It does so at most once per MinRetry, so a service that refuses every key cannot
// make it hammer the broker; a key that is no longer served is ignored.
func (r *Refresher) Rejected(key APIKey) {
	now := r.clock.Now()
	r.mu.Lock()
	current := r.cur.Managed && r.cur.APIKey.Equal(key)
	paced := now.Sub(r.lastTry) < r.minRetry
	r.mu.Unlock()
	if !current || paced {
		return
	}
	r.log.Info("delegated auth: the API key was refused; refreshing now")
	select {
	case r.wake <- struct{}{}:
	default: // a refresh is already asked for
	}
}

// attempt gets a key from the source, publishes the outcome and returns how long to
// wait before the next attempt, and whether it succeeded.
func (r *Refresher) attempt(ctx context.Context) (time.Duration, bool) {
	defer func() {
		now := r.clock.Now()
		r.mu.Lock()
		r.lastTry = now
		r.mu.Unlock()
	}()
	k, err := r.src.Key(ctx) // no lock held: this is network I/O
	if err == nil && k.APIKey.IsZero() {
		err = errors.New("key source returned an empty key")
	}
	if err == nil && k.Expired(r.clock.Now()) {
		// Most likely a clock skew between here and the broker; using the key would fail.
		err = fmt.Errorf("the broker's key expired at %s, before it arrived (clock skew?)", k.Expires.UTC().Format(time.RFC3339))
	}
	if err != nil {
		if ctx.Err() != nil {
			return 0, false // stopped or cancelled: nothing to record
		}
		return r.fail(err), false
	}
	k.Managed = true
	now := r.clock.Now()
	wait := r.jittered(r.interval)
	if !k.Expires.IsZero() {
		if half := k.Expires.Sub(now) / 2; half < wait {
			wait = max(half, r.minRetry)
		}
	}
	if !r.publish(k, func() {
		r.failures, r.lastErr, r.next = 0, nil, now.Add(wait)
	}) {
		return 0, false // stopped meanwhile
	}
	r.metrics.record(r.name, true, 0, k)
	r.log.Info("delegated auth: got an API key", "key", k, "next_refresh", wait)
	return wait, true
}

// fail records a failed attempt and returns the backoff before the next one. When the
// managed key is gone or expired, the static key takes its place.
func (r *Refresher) fail(err error) time.Duration {
	now := r.clock.Now()
	r.mu.Lock()
	failures := r.failures + 1
	cur := r.cur
	r.mu.Unlock()

	wait := r.backoff(failures)
	if cur.Managed && !cur.Expired(now) {
		// Try again by the time the key expires, so the fallback starts on time.
		if left := cur.Expires.Sub(now); !cur.Expires.IsZero() && left < wait {
			wait = max(left, time.Second)
		}
	}
	replacement := cur
	if !cur.Managed || cur.Expired(now) {
		replacement = Key{APIKey: r.static}
	}
	if !r.publish(replacement, func() {
		r.failures, r.lastErr, r.next = failures, err, now.Add(wait)
	}) {
		return wait // stopped meanwhile
	}
	r.metrics.record(r.name, false, failures, replacement)
	r.log.Warn("delegated auth: getting an API key failed", "error", err, "failures", failures,
		"retry_in", wait, "serving", replacement)
	return wait
}

// backoff is the wait after the n-th consecutive failure: MinRetry doubled n-1 times,
// capped at MaxRetry, then jittered by ±10 %.
func (r *Refresher) backoff(n int) time.Duration {
	d := r.minRetry
	for i := 1; i < n && d < r.maxRetry; i++ {
		d *= 2
	}
	return r.jittered(min(d, r.maxRetry))
}

func (r *Refresher) jittered(d time.Duration) time.Duration {
	f := 1 + jitterFraction*(2*r.jitter()-1)
	return time.Duration(float64(d) * f)
}

// publish makes k the current key, runs update (bookkeeping, under the lock) and tells
// subscribers if the key changed. Once Stop has begun it does nothing and returns false.
func (r *Refresher) publish(k Key, update func()) bool {
	r.notifyMu.Lock()
	defer r.notifyMu.Unlock()
	r.mu.Lock()
	if r.stopped {
		r.mu.Unlock()
		return false
	}
	changed := !k.APIKey.Equal(r.cur.APIKey)
	r.cur = k
	if update != nil {
		update()
	}
	var subs []func(Key)
	if changed {
		subs = make([]func(Key), 0, len(r.subs))
		for _, fn := range r.subs {
			subs = append(subs, fn)
		}
	}
	r.mu.Unlock()
	for _, fn := range subs {
		fn(k)
	}
	return true
}

// Stop ends the background refresh and waits for it, including an exchange in flight
// (which is cancelled) and a subscriber notification in progress. After Stop returns
// the key no longer changes, no subscriber is called, and the refresher's metrics
// series are gone. Stop is idempotent; it must not be called from a subscriber.
func (r *Refresher) Stop() {
	r.halt()
	r.notifyMu.Lock() // wait out a notification in progress
	r.notifyMu.Unlock()
	r.wg.Wait() // every metrics update happens on Start's or the loop's goroutine
	// Once only: by a later Stop, a new refresher may own the name (Set.Add).
	r.forget.Do(func() { r.metrics.forget(r.name) })
}

// halt marks the refresher stopped and cancels its work without waiting for it.
func (r *Refresher) halt() {
	r.mu.Lock()
	r.stopped = true
	cancel := r.cancel
	r.mu.Unlock()
	if cancel != nil {
		cancel()
	}
}

// Key returns the key to use now: the managed key while it is valid, else the static
// key. It does not block on the network; with no key to give it returns an error
// wrapping ErrNoKey and the last failure.
func (r *Refresher) Key(ctx context.Context) (Key, error) {
	if err := ctx.Err(); err != nil {
		return Key{}, err
	}
	now := r.clock.Now()
	r.mu.Lock()
	k, lastErr := r.cur, r.lastErr
	r.mu.Unlock()
	if k.Managed && k.Expired(now) {
		k = Key{APIKey: r.static}
	}
	if k.APIKey.IsZero() {
		if lastErr != nil {
			return Key{}, fmt.Errorf("%w for %q: %w", ErrNoKey, r.name, lastErr)
		}
		return Key{}, fmt.Errorf("%w for %q", ErrNoKey, r.name)
	}
	return k, nil
}

// APIKey returns the key to use now, or the zero APIKey when there is none.
func (r *Refresher) APIKey() APIKey {
	k, _ := r.Key(context.Background())
	return k.APIKey
}

// Subscribe registers fn to be called with the new key each time the key changes
// (not when a refresh returns the same key). Calls are serialised, in order, on the
// refreshing goroutine: fn must be quick and must not call Stop. The returned function
// unsubscribes.
func (r *Refresher) Subscribe(fn func(Key)) (unsubscribe func()) {
	r.mu.Lock()
	id := r.nextSub
	r.nextSub++
	r.subs[id] = fn
	r.mu.Unlock()
	return func() {
		r.mu.Lock()
		delete(r.subs, id)
		r.mu.Unlock()
	}
}

// Status is a snapshot of a Refresher, for status pages and health checks.
type Status struct {
	Name     string
	Key      Key       // the current key (APIKey redacts itself)
	Failures int       // consecutive failed attempts
	LastErr  error     // the last failure, nil after a success
	Next     time.Time // when the next attempt is due; zero off-cloud or before Start
}

// Status returns a snapshot of the refresher's state.
func (r *Refresher) Status() Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	return Status{Name: r.name, Key: r.cur, Failures: r.failures, LastErr: r.lastErr, Next: r.next}
}
