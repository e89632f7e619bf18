package delegatedauth

import (
	"context"
	"fmt"
	"sort"
	"sync"
)

// A Set holds named Refreshers, for a process that needs several keys (one per config
// prefix, say, each its own tenant). Adding a refresher under a name in use stops the
// old one first and completely, so a late answer for the old one never replaces the
// new one's key. The zero value is an empty Set ready to use.
type Set struct {
	mu   sync.Mutex
	m    map[string]*Refresher
	subs map[int]func(name string, k Key)
	nsub int
}

// Add starts r under name, replacing and stopping the refresher that had the name.
// ctx bounds r's start (see Refresher.Start). If the start fails r is removed.
func (s *Set) Add(ctx context.Context, name string, r *Refresher) error {
	s.mu.Lock()
	if s.m == nil {
		s.m = map[string]*Refresher{}
	}
	old := s.m[name]
	s.m[name] = r
	s.mu.Unlock()

	// Forward r's changes for as long as r is the one named name. Subscribing before
	// Start means the first key is not missed.
	r.Subscribe(func(k Key) { s.notify(name, r, k) })
	if old != nil {
		old.Stop() // waits for old's in-flight work and notifications
	}
	if err := r.Start(ctx); err != nil {
		s.mu.Lock()
		if s.m[name] == r {
			delete(s.m, name)
		}
		s.mu.Unlock()
		return fmt.Errorf("delegatedauth: add %q: %w", name, err)
	}
	return nil
}

// Remove stops and removes the refresher named name, if any; its metrics series go
// with it (see Refresher.Stop).
func (s *Set) Remove(name string) {
	s.mu.Lock()
	r := s.m[name]
	delete(s.m, name)
	s.mu.Unlock()
	if r != nil {
		r.Stop()
	}
}

// Get returns the refresher named name, or nil.
func (s *Set) Get(name string) *Refresher {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m[name]
}

// Names returns the names in the set, sorted.
func (s *Set) Names() []string {
	s.mu.Lock()
	names := make([]string, 0, len(s.m))
	for n := range s.m {
		names = append(names, n)
	}
	s.mu.Unlock()
	sort.Strings(names)
	return names
}

// Key returns the current key of the refresher named name.
func (s *Set) Key(ctx context.Context, name string) (Key, error) {
	r := s.Get(name)
	if r == nil {
		return Key{}, fmt.Errorf("%w: no delegated auth instance %q", ErrNoKey, name)
	}
	return r.Key(ctx)
}

// Subscribe registers fn to be called with the name and new key whenever the key of
// any current member changes. The same rules as Refresher.Subscribe apply; calls for
// different names may run concurrently.
func (s *Set) Subscribe(fn func(name string, k Key)) (unsubscribe func()) {
	s.mu.Lock()
	if s.subs == nil {
		s.subs = map[int]func(string, Key){}
	}
	id := s.nsub
	s.nsub++
	s.subs[id] = fn
	s.mu.Unlock()
	return func() {
		s.mu.Lock()
		delete(s.subs, id)
		s.mu.Unlock()
	}
}

func (s *Set) notify(name string, r *Refresher, k Key) {
	s.mu.Lock()
	if s.m[name] != r {
		s.mu.Unlock()
		return // replaced or removed
	}
	subs := make([]func(string, Key), 0, len(s.subs))
	for _, fn := range s.subs {
		subs = append(subs, fn)
	}
	s.mu.Unlock()
	for _, fn := range subs {
		fn(name, k)
	}
}

// Stop stops and removes every refresher, in parallel.
func (s *Set) Stop() {
	s.mu.Lock()
	rs := s.m
	s.m = nil
	s.mu.Unlock()
	var wg sync.WaitGroup
	for _, r := range rs {
		wg.Go(r.Stop)
	}
	wg.Wait()
}
