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
	// fullResyncEvery bounds how long any anomaly (a lost notification and a database
	// clock that stepped back together) can keep a replica's view stale: this often it
	// re-reads every unexpired key.
	fullResyncEvery = 10 * time.Minute
	// lookupTimeout bounds a database read for a key not in the index.
	lookupTimeout = 2 * time.Second
	// maxNoteBatch is how many distinct notifications are reloaded one by one before a
	// backlog is handled as one resync.
	maxNoteBatch = 32
)

// index holds every active key's hash in memory, so introspection needs no I/O.
//
// Reads from the database may arrive out of order (a lookup that started before a
// revocation can land after it), so apply merges by state rather than by arrival or
// timestamp: a key's life only moves one way — revocation is final and expiry only
// moves earlier — so a revoked read always wins, and of two active reads the earlier
// expiry does. A key that stopped being active is remembered (a tombstone) for
// tombstoneTTL so that a late, stale read cannot bring it back.
type index struct {
	mu     sync.RWMutex
	active map[[sha256.Size]byte]KeyInfo
	gone   map[[sha256.Size]byte]time.Time // hash → when it stopped being active here
	misses map[[sha256.Size]byte]time.Time // hash → until when it is known unknown
	gauge  prometheus.Gauge                // chancery_keybroker_keys_active
}

func newIndex(gauge prometheus.Gauge) *index {
	return &index{
		active: map[[sha256.Size]byte]KeyInfo{},
		gone:   map[[sha256.Size]byte]time.Time{},
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

// apply merges the state of some keys as read from the database.
func (x *index) apply(infos []KeyInfo, hashes [][sha256.Size]byte, now time.Time) {
	x.mu.Lock()
	defer x.mu.Unlock()
	for i, info := range infos {
		h := hashes[i]
		delete(x.misses, h)
		if _, gone := x.gone[h]; gone {
			continue // revoked or expired here already: final
		}
		if cur, ok := x.active[h]; ok && cur.ExpiresAt.Before(info.ExpiresAt) {
			info.ExpiresAt = cur.ExpiresAt // a stale read of a key since cut short
		}
		if info.Active(now) {
			x.active[h] = info
		} else {
			delete(x.active, h)
			x.gone[h] = now
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
			x.gone[h] = now
		}
	}
	for h, since := range x.gone {
		if now.Sub(since) > tombstoneTTL {
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
	// Not seen here yet: maybe issued by another replica a moment ago. The read is
	// bounded well below tombstoneTTL, so it cannot outlive a revocation's tombstone.
	lctx, cancel := context.WithTimeout(ctx, lookupTimeout)
	defer cancel()
	dbInfo, ok, err := b.keys.lookup(lctx, h)
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
	infos, hashes, err := b.keys.changed(ctx, c, b.now())
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

// loadAll applies every unexpired key, active or revoked, and returns the database
// clock reading it was taken at.
func (b *Broker) loadAll(ctx context.Context) (time.Time, error) {
	since, err := b.db.Now(ctx)
	if err != nil {
		return since, err
	}
	infos, hashes, err := b.keys.unexpired(ctx, b.now())
	if err != nil {
		return since, err
	}
	b.index.apply(infos, hashes, b.now())
	return since, nil
}

// drainNotes collects first and whatever else is already queued, without waiting,
// de-duplicated; resync is true when a note asks for one or the backlog is large.
func drainNotes(first string, notes <-chan string) (changes []keyChange, resync bool) {
	seen := map[string]bool{}
	add := func(note string) {
		c, ok := parseKeyChange(note)
		if !ok || note == store.Resync {
			resync = true
			return
		}
		if !seen[note] {
			seen[note] = true
			changes = append(changes, c)
		}
	}
	add(first)
	for len(changes) <= maxNoteBatch && !resync {
		select {
		case note, ok := <-notes:
			if !ok {
				return changes, resync
			}
			add(note)
		default:
			return changes, resync
		}
	}
	return changes, true
}

// syncLoop keeps the index in step with the database: it reloads what notifications
// from replicas name, re-reads whatever changed every SyncInterval in case
// notifications were lost, and everything unexpired every fullResyncEvery. It also
// prunes the index and, every collectEvery, deletes old proofs and keys.
func (b *Broker) syncLoop(ctx context.Context, since time.Time, notes <-chan string) {
	defer close(b.syncDone)
	tick := time.NewTicker(b.cfg.SyncInterval)
	defer tick.Stop()
	lastCollect, lastFull := b.now(), b.now()
	warn := func(what string, err error) {
		if err != nil && ctx.Err() == nil {
			b.log.Warn("keybroker: "+what, "err", err)
		}
	}
	resync := func() {
		next, err := b.resyncSince(ctx, since)
		warn("resync keys", err)
		since = next
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
			changes, all := drainNotes(note, notes)
			if all {
				resync()
				continue
			}
			for _, c := range changes {
				warn("reload changed keys", b.reload(ctx, c))
			}
		case <-tick.C:
			now := b.now()
			b.index.prune(now)
			if now.Sub(lastCollect) >= collectEvery {
				warn("collect old keys", b.keys.collect(ctx, now))
				lastCollect = now
			}
			if now.Sub(lastFull) >= fullResyncEvery {
				next, err := b.loadAll(ctx)
				warn("reload all keys", err)
				if err == nil {
					since, lastFull = next, now
				}
				continue
			}
			resync()
		}
	}
}
