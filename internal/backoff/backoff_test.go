package backoff_test

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/brownout-dev/brownout/internal/backoff"
)

func TestJitterStaysUnderItsCap(t *testing.T) {
	j := backoff.NewJitter(100*time.Millisecond, time.Second, 7)
	for _, tc := range []struct {
		n   int
		cap time.Duration
	}{{1, 100 * time.Millisecond}, {2, 200 * time.Millisecond}, {3, 400 * time.Millisecond}, {4, 800 * time.Millisecond},
		{5, time.Second}, {40, time.Second}, {0, 100 * time.Millisecond}} {
		var most time.Duration
		for range 2000 {
			d := j.Next(tc.n)
			assert.GreaterOrEqual(t, d, time.Duration(0))
			most = max(most, d)
		}
		assert.LessOrEqual(t, most, tc.cap, "Next(%d)", tc.n)
		// Full jitter spreads over the whole range: 2000 draws reach its top half.
		assert.Greater(t, most, tc.cap/2, "Next(%d) never reached the top half of [0, %v]", tc.n, tc.cap)
	}
}

func TestJitterIsSeeded(t *testing.T) {
	a, b, c := backoff.NewJitter(time.Millisecond, time.Second, 1), backoff.NewJitter(time.Millisecond, time.Second, 1),
		backoff.NewJitter(time.Millisecond, time.Second, 2)
	same, differ := true, false
	for n := 1; n <= 20; n++ {
		x, y, z := a.Next(n), b.Next(n), c.Next(n)
		same = same && x == y
		differ = differ || x != z
	}
	assert.True(t, same, "the same seed gives the same draws")
	assert.True(t, differ, "another seed gives other draws")
}

func TestSleep(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		assert.True(t, backoff.Sleep(t.Context(), 5*time.Second))
		assert.Equal(t, 5*time.Second, time.Since(start))

		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		defer cancel()
		start = time.Now()
		assert.False(t, backoff.Sleep(ctx, time.Hour), "a context that ends first")
		assert.Equal(t, 2*time.Second, time.Since(start))
		assert.False(t, backoff.Sleep(ctx, 0), "zero on an ended context")
		assert.True(t, backoff.Sleep(t.Context(), 0), "zero on a live context")
	})
}
