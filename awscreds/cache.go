package awscreds

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"
)

const (
	defaultExpiryWindow   = 5 * time.Minute
	defaultRefreshTimeout = time.Minute
)

// CacheOptions configure a Cache. The zero value is a good default.
type CacheOptions struct {
	// ExpiryWindow is how long before expiry credentials are refreshed; zero means
	// 5 minutes. Credentials that live shorter than the window are refreshed at half
	// their life instead.
	ExpiryWindow time.Duration
	// Jitter adds a random amount, up to Jitter, to the window of each credentials,
	// so that many processes given credentials at the same time do not all refresh
	// at the same moment. Zero means no jitter.
	Jitter time.Duration
	// RefreshTimeout bounds one refresh, which is shared by every waiting caller and
	// so is not bounded by any one caller's context; zero means one minute.
	RefreshTimeout time.Duration
	// Now is the clock; nil means time.Now. For tests.
	Now func() time.Time
	// Logger receives a warning when a refresh fails while the cached credentials are
	// still served; nil means slog.Default().
	Logger *slog.Logger
}

// Cache is a Provider that caches the credentials of another, like
// oauth2.ReuseTokenSource and aws.CredentialsCache:
//
//   - credentials are served from memory, without locking, until ExpiryWindow (plus
//     jitter) before they expire;
//   - then one refresh runs for all callers (single flight); each caller waits for
//     it only as long as its own context allows, and a caller giving up does not
//     cancel the refresh for the others;
//   - if the refresh fails while the cached credentials are still valid, those are
//     served and the refresh is retried after a capped, jittered backoff;
//   - expired credentials are never served.
type Cache struct {
	provider Provider
	opts     CacheOptions
	now      func() time.Time
	logger   *slog.Logger

	entry  atomic.Pointer[cacheEntry]
	flight singleflight.Group
}

// cacheEntry is immutable once stored; only a refresh, one at a time, replaces it.
type cacheEntry struct {
	creds     Credentials
	refreshAt time.Time
	forever   bool // credentials that do not expire are not refreshed unless invalidated
	failures  int  // consecutive failed refreshes since creds were fetched
}

// NewCache returns a Cache around p.
func NewCache(p Provider, opts CacheOptions) *Cache {
	c := &Cache{provider: p, opts: opts, now: opts.Now, logger: opts.Logger}
	if c.now == nil {
		c.now = time.Now
	}
	if c.logger == nil {
		c.logger = slog.Default()
	}
	c.opts.ExpiryWindow = cmp.Or(c.opts.ExpiryWindow, defaultExpiryWindow)
	c.opts.RefreshTimeout = cmp.Or(c.opts.RefreshTimeout, defaultRefreshTimeout)
	return c
}

// fresh reports whether e can be served without a refresh at now.
func (e *cacheEntry) fresh(now time.Time) bool {
	return e != nil && (e.forever || now.Before(e.refreshAt))
}

// usable reports whether e holds credentials that have not expired at now.
func (e *cacheEntry) usable(now time.Time) bool {
	return e != nil && !e.creds.Expired(now)
}

// Retrieve returns the cached credentials, refreshing them when they are due.
func (c *Cache) Retrieve(ctx context.Context) (Credentials, error) {
	if e := c.entry.Load(); e.fresh(c.now()) {
		return e.creds, nil
	}
	// The refresh must outlive this caller (others may be waiting on it) but keeps
	// its values, such as trace IDs.
	shared := context.WithoutCancel(ctx)
	ch := c.flight.DoChan("", func() (any, error) { return c.refresh(shared) })
	select {
	case r := <-ch:
		if r.Err == nil {
			return r.Val.(Credentials), nil
		}
		if e := c.entry.Load(); e.usable(c.now()) {
			return e.creds, nil // stale-if-error, already logged by refresh
		}
		return Credentials{}, r.Err
	case <-ctx.Done():
		// Still-valid credentials beat an error for a caller that cannot wait.
		if e := c.entry.Load(); e.usable(c.now()) {
			return e.creds, nil
		}
		return Credentials{}, fmt.Errorf("awscreds: waiting for credentials refresh: %w", context.Cause(ctx))
	}
}

// Invalidate makes the next Retrieve refresh, for when a service has rejected the
// credentials. The current ones stay as the fallback should that refresh fail.
func (c *Cache) Invalidate() {
	if e := c.entry.Load(); e != nil {
		c.entry.CompareAndSwap(e, &cacheEntry{creds: e.creds, failures: e.failures})
	}
}

// refresh runs inside the single flight.
func (c *Cache) refresh(ctx context.Context) (Credentials, error) {
	cur := c.entry.Load()
	if cur.fresh(c.now()) {
		// A flight that ended just before this one started already refreshed.
		return cur.creds, nil
	}
	ctx, cancel := context.WithTimeout(ctx, c.opts.RefreshTimeout)
	defer cancel()
	creds, err := c.provider.Retrieve(ctx)
	now := c.now()
	if err == nil && creds.Expired(now) {
		err = fmt.Errorf("provider returned credentials %s that expired at %s", creds.AccessKeyID, creds.Expires.UTC().Format(time.RFC3339))
	}
	if err == nil && !creds.HasKeys() {
		err = errors.New("provider returned empty credentials")
	}
	if err != nil {
		err = fmt.Errorf("awscreds: refreshing credentials: %w", err)
		if cur.usable(now) {
			failures := cur.failures + 1
			// Space the retries so that a failing source is not hit on every call.
			retryAt := now.Add(backoff{base: time.Second, max: time.Minute}.delay(failures - 1))
			if retryAt.After(cur.creds.Expires) {
				retryAt = cur.creds.Expires
			}
			c.entry.Store(&cacheEntry{creds: cur.creds, refreshAt: retryAt, failures: failures})
			c.logger.LogAttrs(ctx, slog.LevelWarn, "AWS credentials refresh failed; serving cached credentials until they expire",
				slog.Any("credentials", cur.creds), slog.Int("failures", failures),
				slog.Time("retry_at", retryAt), slog.String("error", err.Error()))
		}
		return Credentials{}, err
	}
	c.entry.Store(&cacheEntry{creds: creds, refreshAt: c.refreshAt(creds, now), forever: !creds.CanExpire})
	return creds, nil
}

// refreshAt returns when creds, fetched at now, become due for a refresh.
func (c *Cache) refreshAt(creds Credentials, now time.Time) time.Time {
	if !creds.CanExpire {
		return time.Time{}
	}
	window := c.opts.ExpiryWindow
	if c.opts.Jitter > 0 {
		window += rand.N(c.opts.Jitter + 1)
	}
	if life := creds.Expires.Sub(now); window >= life {
		window = life / 2
	}
	return creds.Expires.Add(-window)
}
