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

// maxTrackedClients bounds the limiter's memory; idle clients are forgotten first.
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
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	c, ok := l.clients[host]
	if !ok {
		if len(l.clients) >= maxTrackedClients {
			for h, c := range l.clients {
				if now.Sub(c.lastSeen) > time.Minute {
					delete(l.clients, h)
				}
			}
			if len(l.clients) >= maxTrackedClients {
				clear(l.clients) // under a flood from many addresses, start over
			}
		}
		// A burst of a tenth of the minute's budget (at least 1): a restart's
		// exchanges go through, a loop does not.
		c = &clientRate{lim: rate.NewLimiter(rate.Limit(float64(l.perMin)/60), max(1, l.perMin/10))}
		l.clients[host] = c
	}
	c.lastSeen = now
	return c.lim.AllowN(now, 1)
}
