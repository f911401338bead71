// Package backoff is brownout's one jittered exponential backoff and its one
// context-aware sleep. The gateway's retry loop, the ledger writer's batch
// retries and the fake vendors' latencies all wait through Sleep, so under
// testing/synctest every wait is on the bubble's clock.
package backoff

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"
)

// Jitter draws full-jitter backoffs from a seeded source: before retry n
// (1-based) a uniformly random duration in [0, min(Max, Base*2^(n-1))]
// (AWS's "full jitter"). The same seed gives the same sequence of draws.
// Safe for concurrent use.
type Jitter struct {
	base, max time.Duration

	mu  sync.Mutex
	rng *rand.Rand
}

// NewJitter returns a Jitter with the given base and cap, seeded with seed.
func NewJitter(base, max time.Duration, seed uint64) *Jitter {
	return &Jitter{base: base, max: max, rng: rand.New(rand.NewPCG(seed, 0x6261636b6f6666))}
}

// Next returns the wait before retry n (1-based).
func (j *Jitter) Next(n int) time.Duration {
	limit := j.base << min(max(n-1, 0), 30)
	if limit <= 0 || limit > j.max {
		limit = j.max
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	return time.Duration(j.rng.Int64N(int64(limit) + 1))
}

// Sleep waits d, or until ctx ends; it reports whether d elapsed. A d of
// zero or less returns at once, true unless ctx has ended.
func Sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
