package keybroker

import (
	"strconv"
	"testing"
	"time"
)

func TestClientKey(t *testing.T) {
	tests := []struct{ in, want string }{
		{"192.0.2.7:4321", "192.0.2.7"},
		{"[2001:db8:1:2:aaaa::1]:443", "2001:db8:1:2::/64"},
		{"[2001:db8:1:2:bbbb::9]:443", "2001:db8:1:2::/64"},
		{"[::ffff:192.0.2.7]:80", "::ffff:192.0.2.7"},
		{"not an address", "not an address"},
	}
	for _, tt := range tests {
		if got := clientKey(tt.in); got != tt.want {
			t.Errorf("clientKey(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestClientLimiter(t *testing.T) {
	now := time.Now()
	l := newClientLimiter(60) // 1/s, burst 6
	for i := range 6 {
		if !l.allow("[2001:db8::"+strconv.Itoa(i+1)+"]:1", now) {
			t.Fatalf("request %d of the burst refused", i)
		}
	}
	if l.allow("[2001:db8::99]:1", now) {
		t.Fatal("a new address in the same /64 got a fresh burst")
	}
	if !l.allow("[2001:db8::99]:1", now.Add(time.Second)) {
		t.Fatal("refused after the bucket refilled by one")
	}
	if newClientLimiter(-1).allow("192.0.2.1:1", now) != true {
		t.Fatal("a disabled limiter refused")
	}
}

func TestClientLimiterFullKeepsThrottledClients(t *testing.T) {
	now := time.Now()
	l := newClientLimiter(60)
	for i := range maxTrackedClients {
		ip := "10." + strconv.Itoa(i/65536) + "." + strconv.Itoa(i/256%256) + "." + strconv.Itoa(i%256)
		for range 6 { // drain each bucket: all throttled
			l.allow(ip+":1", now)
		}
	}
	if l.allow("192.0.2.1:1", now) {
		t.Fatal("a newcomer was let in by forgetting throttled clients")
	}
	if l.allow("10.0.0.0:1", now) {
		t.Fatal("a throttled client was reset")
	}
	// Once buckets refill, the idle can be forgotten and newcomers served.
	if !l.allow("192.0.2.1:1", now.Add(10*time.Second)) {
		t.Fatal("newcomer refused after the tracked clients refilled")
	}
}
