package delegatedauth

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
)

// namedRecorder collects what Set subscribers are told.
type namedRecorder struct {
	mu   sync.Mutex
	seen []string
}

func (r *namedRecorder) record(name string, k Key) {
	r.mu.Lock()
	r.seen = append(r.seen, name+"="+k.APIKey.Reveal())
	r.mu.Unlock()
}

func (r *namedRecorder) got() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.seen...)
}

func constSource(key string) KeySource {
	return KeySourceFunc(func(context.Context) (Key, error) { return Key{APIKey: NewAPIKey(key)}, nil })
}

func TestSetInstancesPerTenant(t *testing.T) {
	var s Set
	defer s.Stop()
	seen := &namedRecorder{}
	s.Subscribe(seen.record)
	for _, name := range []string{"logs_config", "api"} {
		r := NewRefresher(constSource("key_for_"+name), RefresherOptions{Name: name, Detect: onCloud, Clock: newFakeClock()})
		if err := s.Add(context.Background(), name, r); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"logs_config", "api"} {
		k, err := s.Key(context.Background(), name)
		if err != nil || k.APIKey.Reveal() != "key_for_"+name {
			t.Fatalf("%s: %v, %v", name, k, err)
		}
	}
	if _, err := s.Key(context.Background(), "nope"); !errors.Is(err, ErrNoKey) {
		t.Fatalf("unknown name: %v", err)
	}
	if got := fmt.Sprint(s.Names()); got != "[api logs_config]" {
		t.Fatalf("names = %s", got)
	}
	if got := seen.got(); !equalKeys(got, "logs_config=key_for_logs_config", "api=key_for_api") {
		t.Fatalf("subscriber saw %q", got)
	}
	s.Remove("api")
	if s.Get("api") != nil || s.Get("logs_config") == nil {
		t.Fatal("Remove removed the wrong instance")
	}
}

// TestSetReplaceDropsOldLateResult: replacing an instance whose exchange is in flight
// stops it, and its late answer reaches neither the set nor its subscribers.
func TestSetReplaceDropsOldLateResult(t *testing.T) {
	var s Set
	defer s.Stop()
	seen := &namedRecorder{}
	s.Subscribe(seen.record)

	oldClock := newFakeClock()
	calls := 0
	inFlight, release := make(chan struct{}), make(chan struct{})
	old := NewRefresher(KeySourceFunc(func(ctx context.Context) (Key, error) {
		calls++
		if calls == 1 {
			return Key{APIKey: NewAPIKey("old_key_0123456789abcdefgh")}, nil
		}
		close(inFlight)
		<-ctx.Done()
		<-release
		return Key{APIKey: NewAPIKey("old_late_key_0123456789abcd")}, nil
	}), RefresherOptions{Name: "old", Detect: onCloud, Clock: oldClock})
	if err := s.Add(context.Background(), "main", old); err != nil {
		t.Fatal(err)
	}
	oldClock.sleepAndFire(t)
	<-inFlight

	fresh := NewRefresher(constSource("new_key_0123456789abcdefgh"), RefresherOptions{Name: "new", Detect: onCloud, Clock: newFakeClock()})
	added := make(chan error, 1)
	go func() { added <- s.Add(context.Background(), "main", fresh) }()
	close(release)
	if err := <-added; err != nil {
		t.Fatal(err)
	}
	if k, _ := s.Key(context.Background(), "main"); k.APIKey.Reveal() != "new_key_0123456789abcdefgh" {
		t.Fatalf("key = %v, want the new instance's", k)
	}
	if got := seen.got(); !equalKeys(got, "main=old_key_0123456789abcdefgh", "main=new_key_0123456789abcdefgh") {
		t.Fatalf("subscriber saw %q; the old instance's late key must not appear", got)
	}
	if err := old.Start(context.Background()); !errors.Is(err, ErrStopped) {
		t.Fatalf("the replaced instance is not stopped: %v", err)
	}
}

func TestSetAddStoppedRefresher(t *testing.T) {
	var s Set
	r := NewRefresher(constSource(testKey), RefresherOptions{Detect: onCloud, Clock: newFakeClock()})
	r.Stop()
	if err := s.Add(context.Background(), "x", r); !errors.Is(err, ErrStopped) {
		t.Fatalf("Add = %v, want ErrStopped", err)
	}
	if s.Get("x") != nil {
		t.Fatal("a refresher that failed to start stays in the set")
	}
}
