package delegatedauth

import (
	"sync"
	"testing"
	"time"
)

// fakeClock is a Clock that moves only when told. Every NewTimer is reported on
// timers, so a test can wait until the refresher is asleep and see for how long.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	pending []*fakeTimer
	timers  chan time.Duration
}

func newFakeClock() *fakeClock {
	return &fakeClock{
		now:    time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC),
		timers: make(chan time.Duration, 1000),
	}
}

type fakeTimer struct {
	clock *fakeClock
	at    time.Time
	c     chan time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) NewTimer(d time.Duration) Timer {
	c.mu.Lock()
	t := &fakeTimer{clock: c, at: c.now.Add(d), c: make(chan time.Time, 1)}
	if d <= 0 {
		t.c <- c.now
	} else {
		c.pending = append(c.pending, t)
	}
	c.mu.Unlock()
	c.timers <- d
	return t
}

func (t *fakeTimer) C() <-chan time.Time { return t.c }

func (t *fakeTimer) Stop() bool {
	c := t.clock
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, p := range c.pending {
		if p == t {
			c.pending = append(c.pending[:i], c.pending[i+1:]...)
			return true
		}
	}
	return false
}

// Advance moves the clock on by d, firing the timers that fall due.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	kept := c.pending[:0]
	for _, t := range c.pending {
		if !t.at.After(c.now) {
			t.c <- c.now
		} else {
			kept = append(kept, t)
		}
	}
	c.pending = kept
}

// nextTimer waits (in real time, boundedly) for the next NewTimer and returns its
// duration.
func (c *fakeClock) nextTimer(t *testing.T) time.Duration {
	t.Helper()
	select {
	case d := <-c.timers:
		return d
	case <-time.After(10 * time.Second):
		t.Fatal("no timer was set within 10s")
		return 0
	}
}

// noTimer checks that no timer was set.
func (c *fakeClock) noTimer(t *testing.T) {
	t.Helper()
	select {
	case d := <-c.timers:
		t.Fatalf("unexpected timer of %v", d)
	default:
	}
}

// sleepAndFire waits for the refresher to set its timer and fires it, returning the
// duration it asked for.
func (c *fakeClock) sleepAndFire(t *testing.T) time.Duration {
	t.Helper()
	d := c.nextTimer(t)
	c.Advance(d)
	return d
}
