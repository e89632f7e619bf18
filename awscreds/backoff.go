package awscreds

import (
	"context"
	"math/rand/v2"
	"time"
)

// backoff computes retry delays: exponential from base, capped, with full jitter so
// that many clients failing together do not retry in step.
type backoff struct {
	base time.Duration
	max  time.Duration
}

// delay returns the wait before retry number attempt (0 for the first retry).
func (b backoff) delay(attempt int) time.Duration {
	d := b.max
	if attempt < 30 && b.base<<attempt < b.max {
		d = b.base << attempt
	}
	if d <= 0 {
		return 0
	}
	return rand.N(d) + 1
}

// sleep waits for d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
