package keybroker

import (
	"net"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// clientLimiter limits exchanges per client address, so one client cannot spend the
// broker's STS quota (every well-formed proof costs an STS call).
type clientLimiter struct {
	mu      sync.Mutex
	perMin  int
	clients map[string]*clientRate
}

type clientRate struct {
	lim      *rate.Limiter
	lastSeen time.Time
}

// maxTrackedClients bounds the limiter's memory.
const maxTrackedClients = 10_000

func newClientLimiter(perMinute int) *clientLimiter {
	if perMinute <= 0 {
		return nil
	}
	return &clientLimiter{perMin: perMinute, clients: map[string]*clientRate{}}
}

// allow reports whether the client at remoteAddr may exchange a proof now.
func (l *clientLimiter) allow(remoteAddr string, now time.Time) bool {
	if l == nil {
		return true
	}
	client := clientKey(remoteAddr)
	l.mu.Lock()
	defer l.mu.Unlock()
	c, ok := l.clients[client]
	if !ok {
		if len(l.clients) >= maxTrackedClients && !l.evict(now) {
			return false // full of clients that are being throttled: refuse newcomers
		}
		// A burst of a tenth of the minute's budget (at least 1): a restart's
		// exchanges go through, a loop does not.
		c = &clientRate{lim: rate.NewLimiter(rate.Limit(float64(l.perMin)/60), max(1, l.perMin/10))}
		l.clients[client] = c
	}
	c.lastSeen = now
	return c.lim.AllowN(now, 1)
}

// evict forgets clients whose bucket has refilled (they lose nothing by being
// forgotten), never one that is being throttled. It reports whether room was made.
func (l *clientLimiter) evict(now time.Time) bool {
	for k, c := range l.clients {
		if c.lim.TokensAt(now) >= float64(c.lim.Burst()) {
			delete(l.clients, k)
		}
	}
	return len(l.clients) < maxTrackedClients
}

// clientKey is what the limit counts by: the IPv4 address, or the IPv6 /64 (one host
// usually owns a whole /64 and can pick any address in it).
func clientKey(remoteAddr string) string {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	ip := net.ParseIP(host)
	if ip == nil || ip.To4() != nil {
		return host
	}
	return ip.Mask(net.CIDRMask(64, 128)).String() + "/64"
}
