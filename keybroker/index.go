package keybroker

import (
	"context"
	"crypto/sha256"
	"errors"
	"strings"
	"sync"
	"time"
)

// ErrUnknownKey means the key is not one the broker issued, or is expired or revoked.
// Callers cannot tell which, by design.
var ErrUnknownKey = errors.New("unknown, expired or revoked API key")

// negativeTTL is how long a miss is remembered, so a flood of made-up keys costs one
// database read per key per negativeTTL instead of one per request. A key issued by
// another replica is never affected: the index is updated before a key is returned.
const (
	negativeTTL     = 2 * time.Second
	maxNegativeSize = 100_000
)

// index holds every active key's hash in memory, so introspection needs no I/O.
type index struct {
	mu     sync.RWMutex
	active map[[sha256.Size]byte]KeyInfo
	misses map[[sha256.Size]byte]time.Time // hash → until when it is known unknown
}

func newIndex() *index {
	return &index{active: map[[sha256.Size]byte]KeyInfo{}, misses: map[[sha256.Size]byte]time.Time{}}
}

func (x *index) get(h [sha256.Size]byte, now time.Time) (info KeyInfo, found, knownMiss bool) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	if info, ok := x.active[h]; ok {
		return info, true, false
	}
	until, ok := x.misses[h]
	return KeyInfo{}, false, ok && now.Before(until)
}

// apply records the current state of some keys.
func (x *index) apply(infos []KeyInfo, hashes [][sha256.Size]byte, now time.Time) {
	x.mu.Lock()
	defer x.mu.Unlock()
	for i, info := range infos {
		h := hashes[i]
		delete(x.misses, h)
		if info.Active(now) {
			x.active[h] = info
		} else {
			delete(x.active, h)
		}
	}
}

func (x *index) miss(h [sha256.Size]byte, now time.Time) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if len(x.misses) >= maxNegativeSize {
		clear(x.misses) // cheap and bounded; misses are only an optimisation
	}
	x.misses[h] = now.Add(negativeTTL)
}

// prune drops expired keys and misses.
func (x *index) prune(now time.Time) {
	x.mu.Lock()
	defer x.mu.Unlock()
	for h, info := range x.active {
		if !info.Active(now) {
			delete(x.active, h)
		}
	}
	for h, until := range x.misses {
		if !now.Before(until) {
			delete(x.misses, h)
		}
	}
}

func (x *index) size() int {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return len(x.active)
}

// Introspect returns what the broker knows about key, or ErrUnknownKey. A key in the
// index costs a hash and a map read; an unknown one is looked up in the database at most
// once per negativeTTL.
func (b *Broker) Introspect(ctx context.Context, key string) (KeyInfo, error) {
	if !strings.HasPrefix(key, KeyPrefix) || len(key) != len(KeyPrefix)+43 {
		return KeyInfo{}, ErrUnknownKey
	}
	h := sha256.Sum256([]byte(key))
	now := b.now()
	info, found, knownMiss := b.index.get(h, now)
	if found {
		if info.Active(now) {
			return info, nil
		}
		return KeyInfo{}, ErrUnknownKey
	}
	if knownMiss {
		return KeyInfo{}, ErrUnknownKey
	}
	// Not seen here yet: maybe issued by another replica a moment ago.
	info, ok, err := b.keys.lookup(ctx, h)
	if err != nil {
		return KeyInfo{}, err
	}
	b.index.apply([]KeyInfo{info}, [][sha256.Size]byte{h}, now)
	if !ok || !info.Active(now) {
		b.index.miss(h, now)
		return KeyInfo{}, ErrUnknownKey
	}
	return info, nil
}

// syncMargin widens each resync window to absorb clock differences between replicas
// (updated_at is written with the writer's clock).
const syncMargin = 2 * time.Minute

// resync reloads every key changed since the last resync (less the margin).
func (b *Broker) resync(ctx context.Context, since time.Time) (time.Time, error) {
	started := b.now()
	infos, hashes, err := b.keys.changedSince(ctx, since.Add(-syncMargin))
	if err != nil {
		return since, err
	}
	b.index.apply(infos, hashes, b.now())
	return started, nil
}

// syncLoop keeps the index in step with the database: on every notification from
// another replica, and every SyncInterval in case notifications were lost. It also
// prunes expired entries and forgets old proof signatures.
func (b *Broker) syncLoop(ctx context.Context, since time.Time, notes <-chan string) {
	defer close(b.syncDone)
	tick := time.NewTicker(b.cfg.SyncInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case _, ok := <-notes:
			if !ok {
				notes = nil // subscription ended; the ticker still runs
				continue
			}
		case <-tick.C:
			now := b.now()
			b.index.prune(now)
			if err := b.keys.forgetSeen(ctx, now); err != nil && ctx.Err() == nil {
				b.log.Warn("keybroker: forget old proofs", "err", err)
			}
		}
		next, err := b.resync(ctx, since)
		if err != nil {
			if ctx.Err() == nil {
				b.log.Warn("keybroker: resync keys", "err", err)
			}
			continue
		}
		since = next
	}
}
