package gateway_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brownout-dev/brownout/fakeprovider"
	"github.com/brownout-dev/brownout/gateway"
	"github.com/brownout-dev/brownout/gateway/gatewaytest"
	"github.com/brownout-dev/brownout/gateway/ledger"
	"github.com/brownout-dev/brownout/gateway/llm"
	"github.com/brownout-dev/brownout/gateway/pricing"
)

// vrig is a gateway on in-memory fakes, for use inside a synctest bubble:
// every wait (latency, backoff, Retry-After, breaker timeout) is virtual.
type vrig struct {
	gw     *gateway.Gateway
	fakes  map[string]*fakeprovider.Server
	store  *ledger.MemoryStore
	events chan gateway.BreakerEvent
	seq    int
}

// newVrig builds providers "a" and "b" (OpenAI wire format, model "m"), and
// the route "chat" over targets.
func newVrig(t *testing.T, targets []string, breaker gateway.BreakerSettings, retry gateway.RetrySettings, faults map[string][]fakeprovider.Fault) *vrig {
	t.Helper()
	r := &vrig{store: ledger.NewMemoryStore(), events: make(chan gateway.BreakerEvent, 100)}
	fakes := map[string]fakeprovider.Config{}
	for _, name := range []string{"a", "b"} {
		fakes[name] = fakeprovider.Config{Vendor: fakeprovider.OpenAI, Seed: 1, Faults: faults[name],
			Models: map[string]fakeprovider.Model{"gpt-4o-mini": {Answers: []fakeprovider.Answer{{Text: "Paris"}}, TTFTms: fakeprovider.Fixed(100)}}}
	}
	g, err := gatewaytest.New(gatewaytest.Config{Fakes: fakes, Store: r.store,
		Gateway: gateway.Config{Routes: map[string][]string{"chat": targets}, Prices: gateway.PricesConfig{Models: vrigPrices},
			Breaker: gateway.BreakerConfig{BreakerSettings: breaker}, Retry: retry}})
	require.NoError(t, err)
	g.SubscribeBreakers(r.events)
	t.Cleanup(g.Close)
	r.gw, r.fakes = g.Gateway, g.Fakes
	return r
}

func (r *vrig) do(ctx context.Context, id string) error {
	_, err := r.gw.Complete(ctx, &gateway.Request{ID: id, Tenant: "t", Route: "chat",
		LLM: llm.Request{Messages: []llm.Message{{Role: "user", Content: "Capital of France?"}}}})
	return err
}

func (r *vrig) outcomes(t *testing.T, id string) []string {
	t.Helper()
	return outcomesOf(t, r.store, id)
}

// transitions drains the events published so far.
func (r *vrig) transitions() []string {
	synctest.Wait()
	var out []string
	for {
		select {
		case ev := <-r.events:
			out = append(out, ev.From+"->"+ev.To)
		default:
			return out
		}
	}
}

// vrigPrices prices the models the fakes do not have, so their 404s can be routed.
var vrigPrices = map[string]pricing.Price{
	"no-such-model": {Input: pricing.MustRate("1"), Output: pricing.MustRate("1")},
	"unknown-model": {Input: pricing.MustRate("1"), Output: pricing.MustRate("1")},
}

var oneTry = gateway.RetrySettings{MaxAttempts: 1}

// TestBreakerTimeline walks a breaker through its states step by step, in
// virtual time.
func TestBreakerTimeline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		settings := gateway.BreakerSettings{ConsecutiveFailures: 3, OpenFor: 30 * time.Second, HalfOpenProbes: 2}
		r := newVrig(t, []string{"a/gpt-4o-mini"}, settings, oneTry, map[string][]fakeprovider.Fault{
			"a": {{Kind: fakeprovider.FaultServerError, Status: 500, Until: 40 * time.Second}},
		})
		ctx := context.Background()
		a := gateway.Target{Provider: "a", Model: "gpt-4o-mini"}

		// A 5xx burst opens it at the third failure.
		for i := range 3 {
			require.Error(t, r.do(ctx, "burst"+string(rune('0'+i))))
			if i < 2 {
				assert.Equal(t, "closed", r.gw.BreakerState(a), "after %d failures", i+1)
			}
		}
		assert.Equal(t, "open", r.gw.BreakerState(a))
		assert.Equal(t, []string{"closed->open"}, r.transitions())

		// Open: rejected without a call, metered at zero cost.
		err := r.do(ctx, "rejected")
		require.Error(t, err)
		assert.Equal(t, []string{"a:rejected_breaker"}, r.outcomes(t, "rejected"))
		assert.Len(t, r.fakes["a"].Journal(), 3, "no call reached the provider")

		// After OpenFor, half-open; the fault still holds (until 40s): a failed probe reopens it.
		time.Sleep(31 * time.Second)
		assert.Equal(t, "half_open", r.gw.BreakerState(a))
		require.Error(t, r.do(ctx, "probe-fails"))
		assert.Equal(t, "open", r.gw.BreakerState(a))
		assert.Equal(t, []string{"open->half_open", "half_open->open"}, r.transitions())

		// 30s later the provider has recovered. Half-open admits exactly two
		// probes at once; a third concurrent request is rejected.
		time.Sleep(31 * time.Second)
		var wg sync.WaitGroup
		errs := make([]error, 3)
		for i := range 3 {
			wg.Go(func() { errs[i] = r.do(ctx, "probe"+string(rune('0'+i))) })
			synctest.Wait() // each request reaches the breaker before the next starts
		}
		wg.Wait()
		var ok, rejected int
		for _, e := range errs {
			if e == nil {
				ok++
			} else {
				rejected++
			}
		}
		assert.Equal(t, 2, ok, "two probes admitted")
		assert.Equal(t, 1, rejected, "the third rejected while half-open")
		assert.Equal(t, "closed", r.gw.BreakerState(a), "two successful probes close it")
		assert.Equal(t, []string{"open->half_open", "half_open->closed"}, r.transitions())
	})
}

func TestClientErrorsNeverOpenTheBreaker(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newVrig(t, []string{"a/no-such-model"}, gateway.BreakerSettings{ConsecutiveFailures: 3}, gateway.RetrySettings{}, nil)
		for i := range 20 {
			err := r.do(context.Background(), "c"+string(rune('a'+i)))
			require.Error(t, err)
			assert.Equal(t, llm.ClassClient, llm.Classify(context.Background(), err))
		}
		assert.Equal(t, "closed", r.gw.BreakerState(gateway.Target{Provider: "a", Model: "no-such-model"}))
		assert.Empty(t, r.transitions())
		assert.Len(t, r.fakes["a"].Journal(), 20, "a client error is not retried")
	})
}

func TestThrottlingAloneNeverOpensTheBreaker(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newVrig(t, []string{"a/gpt-4o-mini"}, gateway.BreakerSettings{ConsecutiveFailures: 3},
			gateway.RetrySettings{MaxAttempts: 2, Deadline: 10 * time.Second},
			map[string][]fakeprovider.Fault{"a": {{Kind: fakeprovider.FaultRateLimit, RetryAfter: time.Second}}})
		for i := range 10 {
			require.Error(t, r.do(context.Background(), "t"+string(rune('a'+i))))
		}
		assert.Equal(t, "closed", r.gw.BreakerState(gateway.Target{Provider: "a", Model: "gpt-4o-mini"}))
		assert.Empty(t, r.transitions())
	})
}

func TestRetryHonoursRetryAfter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newVrig(t, []string{"a/gpt-4o-mini"}, gateway.BreakerSettings{}, gateway.RetrySettings{},
			map[string][]fakeprovider.Fault{"a": {{Kind: fakeprovider.FaultRateLimit, RetryAfter: 7 * time.Second, Count: 1}}})
		start := time.Now()
		require.NoError(t, r.do(context.Background(), "ra"))
		// The 429 comes at once, then the 7s it asked for, then 100ms for the answer.
		assert.Equal(t, 7100*time.Millisecond, time.Since(start))
		assert.Equal(t, []string{"a:throttled", "a:ok"}, r.outcomes(t, "ra"))
	})
}

func TestNoRetryOn400(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newVrig(t, []string{"a/unknown-model", "b/gpt-4o-mini"}, gateway.BreakerSettings{}, gateway.RetrySettings{}, nil)
		err := r.do(context.Background(), "c400")
		require.Error(t, err)
		assert.Equal(t, []string{"a:client_error"}, r.outcomes(t, "c400"), "no retry, no failover on a client error")
	})
}

func TestFailoverWhileCoolingDownOrOpen(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newVrig(t, []string{"a/gpt-4o-mini", "b/gpt-4o-mini"}, gateway.BreakerSettings{ConsecutiveFailures: 2, OpenFor: time.Minute},
			gateway.RetrySettings{MaxAttempts: 1},
			map[string][]fakeprovider.Fault{"a": {
				{Kind: fakeprovider.FaultRateLimit, RetryAfter: 30 * time.Second, Until: 10 * time.Second},
				{Kind: fakeprovider.FaultServerError, Status: 503, From: 40 * time.Second},
			}})
		ctx := context.Background()
		require.NoError(t, r.do(ctx, "r1"))
		assert.Equal(t, []string{"a:throttled", "b:ok"}, r.outcomes(t, "r1"), "a 429 fails over at once")
		require.NoError(t, r.do(ctx, "r2"))
		assert.Equal(t, []string{"b:ok"}, r.outcomes(t, "r2"), "a cools down for its Retry-After: not even tried")

		time.Sleep(40 * time.Second) // a's cool-down is over; it now answers 503
		require.NoError(t, r.do(ctx, "r3"))
		require.NoError(t, r.do(ctx, "r4"))
		assert.Equal(t, []string{"a:server_error", "b:ok"}, r.outcomes(t, "r4"))
		require.NoError(t, r.do(ctx, "r5"))
		assert.Equal(t, []string{"a:rejected_breaker", "b:ok"}, r.outcomes(t, "r5"), "a's breaker is open: rejected, b serves")
	})
}

// TestNoOrphanRetry: the client leaves during the backoff; the provider
// never sees another attempt.
func TestNoOrphanRetry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newVrig(t, []string{"a/gpt-4o-mini"}, gateway.BreakerSettings{},
			gateway.RetrySettings{MaxAttempts: 5, BaseBackoff: 10 * time.Second, MaxBackoff: 10 * time.Second, Seed: 3},
			map[string][]fakeprovider.Fault{"a": {{Kind: fakeprovider.FaultServerError, Status: 500}}})
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			time.Sleep(150 * time.Millisecond) // after the first attempt, inside the backoff
			cancel()
		}()
		err := r.do(ctx, "orphan")
		require.Error(t, err)
		assert.Equal(t, llm.ClassCancelled, llm.Classify(ctx, err))
		time.Sleep(time.Minute)
		assert.Len(t, r.fakes["a"].Journal(), 1, "no attempt after the client left")
	})
}

func TestDeadlineBoundsTheRequest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newVrig(t, []string{"a/gpt-4o-mini"}, gateway.BreakerSettings{ConsecutiveFailures: 100},
			gateway.RetrySettings{MaxAttempts: 100, BaseBackoff: time.Second, MaxBackoff: time.Second, Deadline: 5 * time.Second},
			map[string][]fakeprovider.Fault{"a": {{Kind: fakeprovider.FaultHang}}})
		start := time.Now()
		err := r.do(context.Background(), "dl")
		require.Error(t, err)
		assert.LessOrEqual(t, time.Since(start), 5*time.Second)
		assert.False(t, errors.Is(err, context.Canceled))
	})
}
