package gateway

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"
)

// RetrySettings configure the retry loop: the only one between a client and
// a vendor (the adapters never retry). The zero value of each field means
// the default in its comment.
type RetrySettings struct {
	// MaxAttempts is the most attempts on one target, the first included
	// (default 3). Only transient classes (throttled, server, transport) are
	// retried.
	MaxAttempts int `yaml:"max_attempts"`
	// BaseBackoff and MaxBackoff bound the exponential backoff with full
	// jitter: before retry n the loop waits a random duration in
	// [0, min(MaxBackoff, BaseBackoff*2^n)] (defaults 200ms, 10s).
	BaseBackoff time.Duration `yaml:"base_backoff"`
	MaxBackoff  time.Duration `yaml:"max_backoff"`
	// AttemptTimeout bounds one attempt; for a stream, the time to its
	// first chunk (default 60s).
	AttemptTimeout time.Duration `yaml:"attempt_timeout"`
	// Deadline bounds a whole request, every target and wait included
	// (default 120s).
	Deadline time.Duration `yaml:"deadline"`
	// Seed seeds the jitter (default 1), so runs are reproducible.
	Seed uint64 `yaml:"seed"`
}

func (s RetrySettings) withDefaults() RetrySettings {
	if s.MaxAttempts <= 0 {
		s.MaxAttempts = 3
	}
	if s.BaseBackoff <= 0 {
		s.BaseBackoff = 200 * time.Millisecond
	}
	if s.MaxBackoff <= 0 {
		s.MaxBackoff = 10 * time.Second
	}
	if s.AttemptTimeout <= 0 {
		s.AttemptTimeout = 60 * time.Second
	}
	if s.Deadline <= 0 {
		s.Deadline = 120 * time.Second
	}
	if s.Seed == 0 {
		s.Seed = 1
	}
	return s
}

// jitter draws backoffs from a seeded source; safe for concurrent use.
type jitter struct {
	mu  sync.Mutex
	rng *rand.Rand
}

func newJitter(seed uint64) *jitter {
	return &jitter{rng: rand.New(rand.NewPCG(seed, 0x6261636b6f6666))}
}

// backoff returns the wait before retry n (1-based): full jitter over an
// exponentially growing cap.
func (j *jitter) backoff(s RetrySettings, n int) time.Duration {
	limit := s.BaseBackoff << min(n-1, 30)
	if limit <= 0 || limit > s.MaxBackoff {
		limit = s.MaxBackoff
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	return time.Duration(j.rng.Int64N(int64(limit) + 1))
}

// cooldowns remembers targets that answered 429 and when they may be tried
// again.
type cooldowns struct {
	mu    sync.Mutex
	until map[Target]time.Time
}

func (c *cooldowns) set(t Target, until time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.until == nil {
		c.until = map[Target]time.Time{}
	}
	if until.After(c.until[t]) {
		c.until[t] = until
	}
}

func (c *cooldowns) get(t Target) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.until[t]
}

// sleep waits d, or until ctx ends (false).
func sleep(ctx context.Context, d time.Duration) bool {
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
