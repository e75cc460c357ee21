// Package ratelimit limits attempts per key (an IP address, a user, a token
// prefix) with token buckets. It is in memory, per process: with several
// replicas each enforces its own share, which is documented for brokers.
// Attempt counters that must hold across replicas (2FA codes) live in the
// database instead.
package ratelimit

import (
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/opencashier/cashier/internal/clock"
)

// Limiter allows Burst attempts at once per key, refilled at Every.
type Limiter struct {
	mu      sync.Mutex
	every   time.Duration
	burst   int
	clock   clock.Clock
	buckets map[string]*bucket
	sweep   time.Time
}

type bucket struct {
	lim  *rate.Limiter
	seen time.Time
}

// New returns a limiter that refills one attempt every `every` up to burst.
// A nil clock means the system clock.
func New(every time.Duration, burst int, c clock.Clock) *Limiter {
	if c == nil {
		c = clock.System{}
	}
	return &Limiter{every: every, burst: burst, clock: c, buckets: map[string]*bucket{}}
}

// Allow reports whether one more attempt for key is allowed now, and takes
// it if so.
func (l *Limiter) Allow(key string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.clock.Now()
	if now.Sub(l.sweep) > 10*time.Minute {
		for k, b := range l.buckets {
			if now.Sub(b.seen) > time.Duration(l.burst+1)*l.every {
				delete(l.buckets, k)
			}
		}
		l.sweep = now
	}
	b, ok := l.buckets[key]
	if !ok {
		b = &bucket{lim: rate.NewLimiter(rate.Every(l.every), l.burst)}
		l.buckets[key] = b
	}
	b.seen = now
	return b.lim.AllowN(now, 1)
}

// Reset forgets key, e.g. after a successful login.
func (l *Limiter) Reset(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.buckets, key)
}
