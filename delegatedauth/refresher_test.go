package delegatedauth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// recorder collects the keys a subscriber is told about.
type recorder struct {
	mu   sync.Mutex
	keys []string
}

func (r *recorder) record(k Key) {
	r.mu.Lock()
	r.keys = append(r.keys, k.APIKey.Reveal())
	r.mu.Unlock()
}

func (r *recorder) got() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.keys...)
}

func onCloud(context.Context) bool  { return true }
func offCloud(context.Context) bool { return false }

const staticKey = "static_key_0123456789abcdef"

type refresherEnv struct {
	broker *testBroker
	clock  *fakeClock
	r      *Refresher
	seen   *recorder
}

// newRefresherEnv wires a Refresher to an httptest broker through a real Exchanger,
// with a fake clock. The refresher is not started.
func newRefresherEnv(t *testing.T, h http.HandlerFunc, o RefresherOptions) *refresherEnv {
	t.Helper()
	env := &refresherEnv{broker: newTestBroker(t, h), clock: newFakeClock(), seen: &recorder{}}
	if o.Detect == nil {
		o.Detect = onCloud
	}
	o.Clock = env.clock
	env.r = NewRefresher(&Exchanger{Server: env.broker.URL, Prover: fixedProver{sampleProof()}}, o)
	env.r.Subscribe(env.seen.record)
	t.Cleanup(env.r.Stop)
	return env
}

func brokerDown(w http.ResponseWriter, r *http.Request) {
	errorReplyHandler(http.StatusServiceUnavailable, "down for maintenance")(w, r)
}

func within(d, base time.Duration) bool {
	lo, hi := time.Duration(float64(base)*0.9), time.Duration(float64(base)*1.1)
	return d >= lo && d <= hi
}

func equalKeys(a []string, b ...string) bool {
	return strings.Join(a, ",") == strings.Join(b, ",")
}

func TestRefresherFallsBackUntilBrokerIsBack(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	metrics := NewMetrics(reg)
	env := newRefresherEnv(t, brokerDown, RefresherOptions{Name: "main", Static: NewAPIKey(staticKey), Metrics: metrics})
	if err := env.r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	k, err := env.r.Key(context.Background())
	if err != nil || k.APIKey.Reveal() != staticKey || k.Managed {
		t.Fatalf("with the broker down: key %v, %v; want the static key", k, err)
	}
	st := env.r.Status()
	var xe *ExchangeError
	if st.Failures != 1 || !errors.As(st.LastErr, &xe) || xe.StatusCode != 503 {
		t.Fatalf("status = %+v, want one failure with a 503", st)
	}
	if d := env.clock.nextTimer(t); !within(d, DefaultMinRetry) {
		t.Fatalf("first retry in %v, want %v ±10%%", d, DefaultMinRetry)
	}
	if f, m := gauge(t, reg, "chancery_delegatedauth_consecutive_failures"), gauge(t, reg, "chancery_delegatedauth_key_managed"); f != 1 || m != 0 {
		t.Fatalf("metrics: failures %v, managed %v; want 1, 0", f, m)
	}

	env.broker.set(keyReplyHandler(testKey, ""))
	env.clock.Advance(DefaultMinRetry * 2)
	if d := env.clock.nextTimer(t); !within(d, DefaultRefreshInterval) {
		t.Fatalf("after a success the next refresh is in %v, want %v ±10%%", d, DefaultRefreshInterval)
	}
	if k := env.r.APIKey(); k.Reveal() != testKey {
		t.Fatalf("key = %v, want the managed key", k)
	}
	if st := env.r.Status(); st.Failures != 0 || st.LastErr != nil || !st.Key.Managed {
		t.Fatalf("status after success = %+v", st)
	}
	if got := env.seen.got(); !equalKeys(got, staticKey, testKey) {
		t.Fatalf("subscriber saw %q, want static then managed", got)
	}
	if m := gauge(t, reg, "chancery_delegatedauth_key_managed"); m != 1 {
		t.Fatalf("metrics: managed %v after a success", m)
	}
	if got := counters(t, reg, "chancery_delegatedauth_refreshes_total"); got != "main/failure=1 main/success=1" {
		t.Fatalf("refreshes_total: %s", got)
	}
}

func TestRefresherKeepsLastGoodKeyAndBacksOff(t *testing.T) {
	env := newRefresherEnv(t, keyReplyHandler(testKey, ""), RefresherOptions{
		Static: NewAPIKey(staticKey), MinRetry: time.Minute, MaxRetry: time.Hour,
	})
	if err := env.r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	env.broker.set(brokerDown)
	env.clock.sleepAndFire(t) // the hourly refresh falls due…

	// …and the broker stays down: the waits double from a minute, capped at an hour.
	bases := []time.Duration{1, 2, 4, 8, 16, 32, 60, 60, 60}
	var waits []time.Duration
	for _, base := range bases {
		d := env.clock.sleepAndFire(t)
		waits = append(waits, d)
		if !within(d, base*time.Minute) {
			t.Fatalf("waits %v: the last should be %v ±10%%", waits, base*time.Minute)
		}
		if k := env.r.APIKey(); k.Reveal() != testKey {
			t.Fatalf("while failing the key is %v, want the last good one", k)
		}
	}
	jittered := 0
	for i, d := range waits {
		if d != bases[i]*time.Minute {
			jittered++
		}
	}
	if jittered == 0 {
		t.Fatalf("waits %v carry no jitter", waits)
	}
	d := env.clock.nextTimer(t) // the last attempt is done
	if st := env.r.Status(); st.Failures != len(bases)+1 {
		t.Fatalf("failures = %d, want %d", st.Failures, len(bases)+1)
	}

	// Flapping: one success resets the backoff.
	env.broker.set(keyReplyHandler(testKey, ""))
	if !within(d, time.Hour) {
		t.Fatalf("wait before the success = %v", d)
	}
	env.clock.Advance(d)
	d = env.clock.nextTimer(t)
	if !within(d, DefaultRefreshInterval) {
		t.Fatalf("refresh after success in %v", d)
	}
	env.broker.set(brokerDown)
	env.clock.Advance(d)
	if d := env.clock.nextTimer(t); !within(d, time.Minute) {
		t.Fatalf("after a success, the first retry is in %v, want 1m ±10%%", d)
	}
	if got := env.seen.got(); !equalKeys(got, testKey) {
		t.Fatalf("subscriber saw %q; failures that keep the key must not notify", got)
	}
}

func TestRefresherBackoffJitterBounds(t *testing.T) {
	r := NewRefresher(nil, RefresherOptions{MinRetry: 10 * time.Second, MaxRetry: 100 * time.Second})
	tests := []struct {
		failures int
		jitter   float64
		want     time.Duration
	}{
		{1, 0.5, 10 * time.Second},
		{2, 0.5, 20 * time.Second},
		{4, 0.5, 80 * time.Second},
		{5, 0.5, 100 * time.Second},
		{500, 0.5, 100 * time.Second},
		{1, 0, 9 * time.Second},
		{5, 0, 90 * time.Second},
		{5, 1, 110 * time.Second},
	}
	for _, tt := range tests {
		r.jitter = func() float64 { return tt.jitter }
		if got := r.backoff(tt.failures); got != tt.want {
			t.Errorf("backoff(%d) with jitter %v = %v, want %v", tt.failures, tt.jitter, got, tt.want)
		}
	}
}

func TestRefresherNotifiesOnChangeOnly(t *testing.T) {
	var n atomic.Int32
	env := newRefresherEnv(t, func(w http.ResponseWriter, r *http.Request) {
		key := testKey
		if n.Add(1) >= 3 {
			key = "chk_rotated_0123456789abcdefghij"
		}
		keyReplyHandler(key, "")(w, r)
	}, RefresherOptions{})
	if err := env.r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	env.clock.sleepAndFire(t) // same key again
	env.clock.sleepAndFire(t) // rotated
	env.clock.nextTimer(t)
	if got := env.seen.got(); !equalKeys(got, testKey, "chk_rotated_0123456789abcdefghij") {
		t.Fatalf("subscriber saw %q, want each distinct key once", got)
	}
}

// TestRefresherRejectedRefreshesEarly: a service refusing the key (revoked or rotated
// out) makes the Refresher get a new one at once, paced by MinRetry; a stale key's
// rejection is ignored.
func TestRefresherRejectedRefreshesEarly(t *testing.T) {
	var n atomic.Int32
	env := newRefresherEnv(t, func(w http.ResponseWriter, r *http.Request) {
		keyReplyHandler(fmt.Sprintf("chk_key_%d_0123456789abcdefghijklmn", n.Add(1)), "")(w, r)
	}, RefresherOptions{MinRetry: time.Minute})
	if err := env.r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	first := env.r.APIKey()
	env.clock.nextTimer(t)             // the hourly refresh is scheduled
	env.r.Rejected(first)              // within MinRetry of the first exchange: paced
	env.clock.Advance(2 * time.Minute) // not yet the hourly refresh
	if got := env.r.APIKey(); !got.Equal(first) {
		t.Fatal("a rejection within MinRetry of the last attempt refreshed anyway")
	}
	env.r.Rejected(first)
	env.clock.nextTimer(t) // the early refresh ran and scheduled the next
	second := env.r.APIKey()
	if second.Equal(first) {
		t.Fatal("the rejected key is still served")
	}
	env.clock.Advance(2 * time.Minute)
	env.r.Rejected(first) // stale: no longer served
	env.clock.noTimer(t)
	if !env.r.APIKey().Equal(second) || n.Load() != 2 {
		t.Fatalf("a stale rejection caused an exchange (%d exchanges)", n.Load())
	}
}

func TestRefresherRefreshesBeforeExpiry(t *testing.T) {
	expires := newFakeClock().Now().Add(10 * time.Minute) // every fake clock starts at the same time
	env := newRefresherEnv(t, keyReplyHandler(testKey, expires.Format(time.RFC3339)), RefresherOptions{
		Static: NewAPIKey(staticKey), MinRetry: time.Minute,
	})
	if err := env.r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if d := env.clock.nextTimer(t); d != 5*time.Minute {
		t.Fatalf("a key valid 10m is refreshed in %v, want at half its lifetime", d)
	}
	env.broker.set(brokerDown)
	env.clock.Advance(5 * time.Minute)
	// Failing, with 5m left: retry in a minute, then 2, then at expiry.
	for _, want := range []time.Duration{time.Minute, 2 * time.Minute} {
		if d := env.clock.sleepAndFire(t); !within(d, want) {
			t.Fatalf("retry in %v, want %v ±10%%", d, want)
		}
	}
	if k := env.r.APIKey(); k.Reveal() != testKey {
		t.Fatalf("before expiry the key is %v, want the managed one", k)
	}
	d := env.clock.nextTimer(t)
	if left := expires.Sub(env.clock.Now()); d != left {
		t.Fatalf("retry in %v, want at expiry, in %v", d, left)
	}
	env.clock.Advance(d)
	env.clock.nextTimer(t)
	if k := env.r.APIKey(); k.Reveal() != staticKey {
		t.Fatalf("after expiry the key is %v, want the static one", k)
	}
	if got := env.seen.got(); !equalKeys(got, testKey, staticKey) {
		t.Fatalf("subscriber saw %q", got)
	}
}

func TestRefresherOffCloud(t *testing.T) {
	for _, static := range []string{staticKey, ""} {
		env := newRefresherEnv(t, keyReplyHandler(testKey, ""), RefresherOptions{Detect: offCloud, Static: NewAPIKey(static)})
		if err := env.r.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		env.r.Stop()
		k, err := env.r.Key(context.Background())
		if static != "" && (err != nil || k.APIKey.Reveal() != static) {
			t.Fatalf("off cloud: key %v, %v; want the static key", k, err)
		}
		if static == "" && !errors.Is(err, ErrNoKey) {
			t.Fatalf("off cloud, no static key: err = %v, want ErrNoKey", err)
		}
		if n := env.broker.calls.Load(); n != 0 {
			t.Fatalf("off cloud the broker was called %d times", n)
		}
		env.clock.noTimer(t)
	}
}

func TestRefresherNoKeyAtAll(t *testing.T) {
	env := newRefresherEnv(t, errorReplyHandler(http.StatusForbidden, "not bound"), RefresherOptions{})
	if err := env.r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	_, err := env.r.Key(context.Background())
	var xe *ExchangeError
	if !errors.Is(err, ErrNoKey) || !errors.As(err, &xe) || xe.StatusCode != 403 {
		t.Fatalf("err = %v, want ErrNoKey wrapping the 403", err)
	}
}

// TestRefresherStopCancelsExchange: Stop does not wait for a hung broker; it cancels
// the exchange in flight.
func TestRefresherStopCancelsExchange(t *testing.T) {
	hang := make(chan struct{})
	defer close(hang)
	env := newRefresherEnv(t, keyReplyHandler(testKey, ""), RefresherOptions{})
	if err := env.r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	env.broker.set(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-hang:
		case <-r.Context().Done():
		}
	})
	calls := env.broker.calls.Load()
	env.clock.sleepAndFire(t)
	for env.broker.calls.Load() == calls {
		time.Sleep(time.Millisecond)
	}
	stopped := make(chan struct{})
	go func() { env.r.Stop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(10 * time.Second):
		t.Fatal("Stop waited for the hung broker")
	}
	if k := env.r.APIKey(); k.Reveal() != testKey {
		t.Fatalf("key after Stop = %v", k)
	}
}

// TestRefresherStopDropsLateResult: an answer that arrives after Stop has begun is not
// published, even from a source that ignores cancellation.
func TestRefresherStopDropsLateResult(t *testing.T) {
	var n atomic.Int32
	inFlight, release := make(chan struct{}), make(chan struct{})
	src := KeySourceFunc(func(ctx context.Context) (Key, error) {
		if n.Add(1) == 1 {
			return Key{APIKey: NewAPIKey(testKey)}, nil
		}
		close(inFlight)
		<-ctx.Done() // Stop has begun…
		<-release    // …and the answer comes anyway
		return Key{APIKey: NewAPIKey("chk_late_0123456789abcdefghijklm")}, nil
	})
	clock := newFakeClock()
	r := NewRefresher(src, RefresherOptions{Detect: onCloud, Clock: clock})
	seen := &recorder{}
	r.Subscribe(seen.record)
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	clock.sleepAndFire(t)
	<-inFlight
	stopped := make(chan struct{})
	go func() { r.Stop(); close(stopped) }()
	close(release)
	<-stopped
	if k := r.APIKey(); k.Reveal() != testKey {
		t.Fatalf("key = %v after Stop, want the one from before", k)
	}
	if got := seen.got(); !equalKeys(got, testKey) {
		t.Fatalf("subscriber saw %q; the late key must not be published", got)
	}
	clock.noTimer(t)
}

func TestRefresherStopDuringStart(t *testing.T) {
	inFlight := make(chan struct{})
	src := KeySourceFunc(func(ctx context.Context) (Key, error) {
		close(inFlight)
		<-ctx.Done()
		return Key{APIKey: NewAPIKey(testKey)}, nil
	})
	r := NewRefresher(src, RefresherOptions{Detect: onCloud, Clock: newFakeClock(), Static: NewAPIKey(staticKey)})
	errc := make(chan error, 1)
	go func() { errc <- r.Start(context.Background()) }()
	<-inFlight
	r.Stop()
	if err := <-errc; !errors.Is(err, ErrStopped) {
		t.Fatalf("Start = %v, want ErrStopped", err)
	}
	if k := r.APIKey(); !k.IsZero() {
		t.Fatalf("key = %v after Stop during Start, want none", k)
	}
	if err := r.Start(context.Background()); !errors.Is(err, ErrStopped) {
		t.Fatalf("Start after Stop = %v", err)
	}
}

func TestRefresherStartContextEnds(t *testing.T) {
	src := KeySourceFunc(func(ctx context.Context) (Key, error) { <-ctx.Done(); return Key{}, ctx.Err() })
	r := NewRefresher(src, RefresherOptions{Detect: onCloud, Clock: newFakeClock()})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if err := r.Start(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Start = %v, want DeadlineExceeded", err)
	}
	r.Stop()
	if err := r.Start(context.Background()); !errors.Is(err, ErrStopped) {
		t.Fatalf("second Start = %v, want ErrStopped", err)
	}
}

func TestRefresherNoGoroutineLeak(t *testing.T) {
	before := runtime.NumGoroutine()
	for i := range 50 {
		var n atomic.Int32
		src := KeySourceFunc(func(ctx context.Context) (Key, error) {
			if n.Add(1)%2 == 0 {
				return Key{}, errors.New("flap")
			}
			if i%3 == 0 {
				<-ctx.Done() // stopped mid-exchange
				return Key{}, ctx.Err()
			}
			return Key{APIKey: NewAPIKey(testKey)}, nil
		})
		clock := newFakeClock()
		r := NewRefresher(src, RefresherOptions{Detect: onCloud, Clock: clock})
		if i%3 == 0 {
			go r.Start(context.Background())
		} else if err := r.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 && i%3 != 0 {
			clock.sleepAndFire(t)
		}
		r.Stop()
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines before, %d after:\n%s", before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestRefresherConcurrentReaders(t *testing.T) {
	var n atomic.Int32
	src := KeySourceFunc(func(context.Context) (Key, error) {
		if n.Add(1)%2 == 0 {
			return Key{}, errors.New("flap")
		}
		return Key{APIKey: NewAPIKey(testKey)}, nil
	})
	clock := newFakeClock()
	r := NewRefresher(src, RefresherOptions{Detect: onCloud, Clock: clock, Static: NewAPIKey(staticKey)})
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer r.Stop()
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if k := r.APIKey(); k.Reveal() != testKey {
					t.Errorf("reader saw %v", k)
					return
				}
				_ = r.Status()
			}
		})
	}
	for range 20 {
		clock.sleepAndFire(t)
	}
	close(stop)
	wg.Wait()
}

func TestRefresherRefusesKeyExpiredOnArrival(t *testing.T) {
	past := newFakeClock().Now().Add(-time.Minute).Format(time.RFC3339)
	env := newRefresherEnv(t, keyReplyHandler(testKey, past), RefresherOptions{Static: NewAPIKey(staticKey)})
	if err := env.r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if k := env.r.APIKey(); k.Reveal() != staticKey {
		t.Fatalf("key = %v, want the static one", k)
	}
	if st := env.r.Status(); st.Failures != 1 || st.LastErr == nil || !strings.Contains(st.LastErr.Error(), "clock skew") {
		t.Fatalf("status = %+v", st)
	}
	if d := env.clock.nextTimer(t); !within(d, DefaultMinRetry) {
		t.Fatalf("retry in %v", d)
	}
}

// gauge returns the value of the single series of a gauge.
func gauge(t *testing.T, reg prometheus.Gatherer, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no single series of %s", name)
	return 0
}

// counters renders a counter vector as "label/label=value …", in gather order.
func counters(t *testing.T, reg prometheus.Gatherer, name string) string {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetValue())
			}
			out = append(out, fmt.Sprintf("%s=%v", strings.Join(labels, "/"), m.GetCounter().GetValue()))
		}
	}
	return strings.Join(out, " ")
}
