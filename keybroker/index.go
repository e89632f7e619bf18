package keybroker

import (
	"context"
	"crypto/sha256"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/chancery/chancery/store"
)

// ErrUnknownKey means the key is not one the broker issued, or is expired or revoked.
// Callers cannot tell which, by design.
var ErrUnknownKey = errors.New("unknown, expired or revoked API key")

const (
	// negativeTTL is how long a miss is remembered, so a flood of made-up keys costs one
	// database read per key per negativeTTL instead of one per request.
	negativeTTL     = 2 * time.Second
	maxNegativeSize = 100_000
	// tombstoneTTL is how long a key that stopped being active is remembered as such, so
	// that a database read that was already in flight when it was revoked cannot bring
	// it back.
	tombstoneTTL = 5 * time.Minute
	// syncMargin widens each resync window for transactions that commit a little after
	// the database clock stamped their rows.
	syncMargin = 30 * time.Second
	// collectEvery is how often a replica deletes old proofs and keys.
	collectEvery = time.Minute
)

// tombstone is a key known to be revoked or expired, as of version.
type tombstone struct {
	version int64
	since   time.Time
}

// index holds every active key's hash in memory, so introspection needs no I/O. Each
// entry carries the version (updated_at) it was read at, and older data never replaces
// newer: a revoked key cannot come back through a read that raced the revocation.
type index struct {
	mu     sync.RWMutex
	active map[[sha256.Size]byte]KeyInfo
	gone   map[[sha256.Size]byte]tombstone
	misses map[[sha256.Size]byte]time.Time // hash → until when it is known unknown
	gauge  prometheus.Gauge                // chancery_keybroker_keys_active
}

func newIndex(gauge prometheus.Gauge) *index {
	return &index{
		active: map[[sha256.Size]byte]KeyInfo{},
		gone:   map[[sha256.Size]byte]tombstone{},
		misses: map[[sha256.Size]byte]time.Time{},
		gauge:  gauge,
	}
}

func (x *index) get(h [sha256.Size]byte, now time.Time) (info KeyInfo, found, knownMiss bool) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	if info, ok := x.active[h]; ok {
		return info, true, false
	}
	if _, ok := x.gone[h]; ok {
		return KeyInfo{}, false, true
	}
	until, ok := x.misses[h]
	return KeyInfo{}, false, ok && now.Before(until)
}

// apply records the state of some keys as read from the database.
func (x *index) apply(infos []KeyInfo, hashes [][sha256.Size]byte, now time.Time) {
	x.mu.Lock()
	defer x.mu.Unlock()
	for i, info := range infos {
		h := hashes[i]
		if cur, ok := x.active[h]; ok && cur.version > info.version {
			continue
		}
		if t, ok := x.gone[h]; ok && t.version >= info.version {
			continue
		}
		delete(x.misses, h)
		if info.Active(now) {
			x.active[h] = info
			delete(x.gone, h)
		} else {
			delete(x.active, h)
			x.gone[h] = tombstone{version: info.version, since: now}
		}
	}
	x.gauge.Set(float64(len(x.active)))
}

func (x *index) miss(h [sha256.Size]byte, now time.Time) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if len(x.misses) >= maxNegativeSize {
		clear(x.misses) // cheap and bounded; misses are only an optimisation
	}
	x.misses[h] = now.Add(negativeTTL)
}

// prune retires expired keys and forgets old tombstones and misses.
func (x *index) prune(now time.Time) {
	x.mu.Lock()
	defer x.mu.Unlock()
	for h, info := range x.active {
		if !info.Active(now) {
			delete(x.active, h)
			x.gone[h] = tombstone{version: info.version, since: now}
		}
	}
	for h, t := range x.gone {
		if now.Sub(t.since) > tombstoneTTL {
			delete(x.gone, h)
		}
	}
	for h, until := range x.misses {
		if !now.Before(until) {
			delete(x.misses, h)
		}
	}
	x.gauge.Set(float64(len(x.active)))
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
	dbInfo, ok, err := b.keys.lookup(ctx, h)
	if err != nil {
		return KeyInfo{}, err
	}
	if !ok {
		b.index.miss(h, now)
		return KeyInfo{}, ErrUnknownKey
	}
	b.index.apply([]KeyInfo{dbInfo}, [][sha256.Size]byte{h}, now)
	// Ask the index again: it may know something newer than this read.
	if info, found, _ := b.index.get(h, now); found && info.Active(now) {
		return info, nil
	}
	return KeyInfo{}, ErrUnknownKey
}

// reload applies the keys a change names.
func (b *Broker) reload(ctx context.Context, c keyChange) error {
	infos, hashes, err := b.keys.changed(ctx, c)
	if err != nil {
		return err
	}
	b.index.apply(infos, hashes, b.now())
	return nil
}

// resyncSince applies every key changed since since (database clock, less the margin)
// and returns the database clock reading to resync from next time.
func (b *Broker) resyncSince(ctx context.Context, since time.Time) (time.Time, error) {
	next, err := b.db.Now(ctx)
	if err != nil {
		return since, err
	}
	infos, hashes, err := b.keys.changedSince(ctx, since.Add(-syncMargin))
	if err != nil {
		return since, err
	}
	b.index.apply(infos, hashes, b.now())
	return next, nil
}

// loadActive fills the index with every active key and returns the database clock
// reading it was taken at.
func (b *Broker) loadActive(ctx context.Context) (time.Time, error) {
	since, err := b.db.Now(ctx)
	if err != nil {
		return since, err
	}
	infos, hashes, err := b.keys.active(ctx, b.now())
	if err != nil {
		return since, err
	}
	b.index.apply(infos, hashes, b.now())
	return since, nil
}

// syncLoop keeps the index in step with the database: it reloads what each
// notification from a replica names, and every SyncInterval re-reads whatever changed
// in case notifications were lost. It also prunes the index and, every collectEvery,
// deletes old proofs and keys.
func (b *Broker) syncLoop(ctx context.Context, since time.Time, notes <-chan string) {
	defer close(b.syncDone)
	tick := time.NewTicker(b.cfg.SyncInterval)
	defer tick.Stop()
	var lastCollect time.Time
	warn := func(what string, err error) {
		if err != nil && ctx.Err() == nil {
			b.log.Warn("keybroker: "+what, "err", err)
		}
	}
	for {
		select {
		case <-ctx.Done():
			return
		case note, ok := <-notes:
			if !ok {
				notes = nil // subscription ended; the ticker still runs
				continue
			}
			if c, ok := parseKeyChange(note); ok && note != store.Resync {
				warn("reload changed keys", b.reload(ctx, c))
				continue
			}
			next, err := b.resyncSince(ctx, since)
			warn("resync keys", err)
			since = next
		case <-tick.C:
			now := b.now()
			b.index.prune(now)
			if now.Sub(lastCollect) >= collectEvery {
				warn("collect old keys", b.keys.collect(ctx, now))
				lastCollect = now
			}
			next, err := b.resyncSince(ctx, since)
			warn("resync keys", err)
			since = next
		}
	}
}
