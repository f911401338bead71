package gateway

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestSlowSubscriberDelaysNobody: while one subscriber reads nothing, a
// second gets every transition at once and in order; the slow one then
// gets them all, in order, none missed.
func TestSlowSubscriberDelaysNobody(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBreakers(nil, time.Now)
		slow, fast := make(chan BreakerEvent), make(chan BreakerEvent)
		b.subscribe(slow)
		b.subscribe(fast)
		for i := range 100 {
			b.publish(BreakerEvent{Provider: "p", Requests: uint32(i)})
		}
		for i := range 100 {
			select {
			case ev := <-fast:
				require.Equal(t, uint32(i), ev.Requests, "in order")
			default:
				synctest.Wait() // the delivery may not have run yet; it must not be stuck
				ev, ok := <-fast
				require.True(t, ok)
				require.Equal(t, uint32(i), ev.Requests, "in order")
			}
		}
		for i := range 100 {
			ev := <-slow
			assert.Equal(t, uint32(i), ev.Requests, "in order")
			assert.Zero(t, ev.Missed)
		}
		b.close()
	})
}

// TestSubscriberToldWhatItMissed: a subscriber that falls more than the
// backlog behind loses the overflow, and the next event it gets says how
// many: what it received and what it was told it missed add up to every
// transition.
func TestSubscriberToldWhatItMissed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBreakers(nil, time.Now)
		ch := make(chan BreakerEvent)
		b.subscribe(ch)
		const total = subscriberBacklog + 1000
		for i := range total {
			b.publish(BreakerEvent{Provider: "p", Requests: uint32(i)})
		}
		synctest.Wait()
		var got []BreakerEvent
	drain:
		for {
			select {
			case ev := <-ch:
				got = append(got, ev)
			default:
				synctest.Wait()
				select {
				case ev := <-ch:
					got = append(got, ev)
				default:
					break drain
				}
			}
		}
		require.NotEmpty(t, got)
		for i, ev := range got {
			assert.Equal(t, uint32(i), ev.Requests, "in order, from the first")
			assert.Zero(t, ev.Missed)
		}
		b.publish(BreakerEvent{Provider: "p", Requests: total})
		last := <-ch
		assert.Equal(t, uint32(total), last.Requests)
		assert.Equal(t, uint64(total-len(got)), last.Missed, "told how many it missed")
		assert.Positive(t, last.Missed)
		b.close()
	})
}
