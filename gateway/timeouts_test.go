package gateway_test

import (
	"context"
	"errors"
	"io"
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
)

// primaryAndSpare is a gateway in virtual time on a route of two targets:
// "primary" (OpenAI, with the faults) and "spare" (Anthropic).
func primaryAndSpare(t *testing.T, retry gateway.RetrySettings, faults ...fakeprovider.Fault) *gatewaytest.Gateway {
	t.Helper()
	return onRoute(t, []string{"primary/gpt-4o-mini", "spare/claude-haiku-4-5"}, retry, faults...)
}

// onRoute is primaryAndSpare's gateway with the route's targets given.
func onRoute(t *testing.T, route []string, retry gateway.RetrySettings, faults ...fakeprovider.Fault) *gatewaytest.Gateway {
	t.Helper()
	answer := fakeprovider.Model{Answers: []fakeprovider.Answer{{Text: "The capital of France is Paris.", Tokens: 8}},
		TTFTms: fakeprovider.Fixed(200), PerTokenMs: fakeprovider.Fixed(20)}
	g, err := gatewaytest.New(gatewaytest.Config{
		Fakes: map[string]fakeprovider.Config{
			"primary": {Vendor: fakeprovider.OpenAI, Seed: 1, Faults: faults, Models: map[string]fakeprovider.Model{"gpt-4o-mini": answer}},
			"spare":   {Vendor: fakeprovider.Anthropic, Seed: 2, Models: map[string]fakeprovider.Model{"claude-haiku-4-5": answer}},
		},
		Gateway: gateway.Config{Routes: map[string][]string{"chat": route}, Retry: retry},
	})
	require.NoError(t, err)
	t.Cleanup(g.Close)
	return g
}

func chat() *gateway.Request {
	return &gateway.Request{Tenant: gatewaytest.DefaultTenant, Route: "chat",
		LLM: llm.Request{Messages: []llm.Message{{Role: "user", Content: "What is the capital of France?"}}}}
}

// outcomes are the ledger's rows of the gateway, as "provider outcome".
func outcomes(t *testing.T, g *gatewaytest.Gateway) []string {
	t.Helper()
	var rows exportBuffer
	_, err := g.Store.Export(context.Background(), ledger.Query{}, &rows)
	require.NoError(t, err)
	var out []string
	for _, a := range rows.attempts(t) {
		out = append(out, a.Provider+" "+string(a.Outcome))
	}
	return out
}

// TestSilentTargetFailsOverAfterOneTimeout: a target that never answers
// costs one attempt timeout, then the spare answers (observed before: three
// timeouts on the silent target, 31 s in all). With on_timeout: retry the
// silent target gets its three attempts first. Plain and streamed alike.
func TestSilentTargetFailsOverAfterOneTimeout(t *testing.T) {
	for _, c := range []struct {
		policy string
		want   time.Duration // from the request to the spare's answer, about
		rows   []string
	}{
		{gateway.OnTimeoutFailover, 10 * time.Second, []string{"primary transport_error", "spare ok"}},
		{gateway.OnTimeoutRetry, 30 * time.Second, []string{"primary transport_error", "primary transport_error", "primary transport_error", "spare ok"}},
	} {
		for _, stream := range []bool{false, true} {
			name := c.policy + map[bool]string{false: "/plain", true: "/stream"}[stream]
			t.Run(name, func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					g := primaryAndSpare(t, gateway.RetrySettings{MaxAttempts: 3, AttemptTimeout: 10 * time.Second, BaseBackoff: time.Millisecond,
						MaxBackoff: time.Millisecond, Deadline: time.Minute, OnTimeout: c.policy}, fakeprovider.Fault{Kind: fakeprovider.FaultHang})
					start := time.Now()
					if stream {
						text, err := read(t, g)
						require.NoError(t, err)
						assert.Equal(t, "The capital of France is Paris.", text, "answered by the spare")
					} else {
						res, err := g.Complete(context.Background(), chat())
						require.NoError(t, err)
						assert.Equal(t, "spare", res.Target.Provider)
					}
					took := time.Since(start)
					assert.GreaterOrEqual(t, took, c.want)
					assert.Less(t, took, c.want+2*time.Second, "one timeout per attempt on the silent target")
					assert.Equal(t, c.rows, outcomes(t, g))
				})
			})
		}
	}
}

// TestStallEndsAtTheIdleTimeout: a stream that stops after its first chunk
// ends at the idle timeout (observed before: held until the provider's
// ten-minute timeout) with an error naming it; its breaker learns the
// failure and its row is a transport error with estimated usage. (On a
// route with a target that continues a prefill, the stream would carry on
// there: TestStreamContinuesOnAPrefillTarget.)
func TestStallEndsAtTheIdleTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := onRoute(t, []string{"primary/gpt-4o-mini"}, gateway.RetrySettings{IdleTimeout: 5 * time.Second},
			fakeprovider.Fault{Kind: fakeprovider.FaultStall, AfterEvents: 2})
		events := make(chan gateway.BreakerEvent, 16)
		g.SubscribeBreakers(events)
		s, err := g.Stream(context.Background(), chat())
		require.NoError(t, err)
		var lastChunk time.Time
		var streamErr error
		for {
			_, err := s.Next()
			if err != nil {
				streamErr = err
				break
			}
			lastChunk = time.Now()
		}
		assert.Equal(t, 5*time.Second, time.Since(lastChunk), "ended at the idle timeout after the last chunk")
		require.NotErrorIs(t, streamErr, io.EOF)
		var pe *llm.ProviderError
		require.True(t, errors.As(streamErr, &pe))
		assert.Equal(t, "idle_timeout", pe.Type)
		require.NoError(t, s.Close())

		var rows exportBuffer
		_, err = g.Store.Export(context.Background(), ledger.Query{}, &rows)
		require.NoError(t, err)
		attempts := rows.attempts(t)
		require.Len(t, attempts, 1)
		assert.Equal(t, ledger.OutcomeTransportError, attempts[0].Outcome)
		assert.Equal(t, ledger.UsageEstimated, attempts[0].UsageSource)
		assert.Positive(t, attempts[0].Tokens.Input)

		// Four more stalls open the primary's breaker (five in a row).
		for range 4 {
			s, err := g.Stream(context.Background(), chat())
			require.NoError(t, err)
			for {
				if _, err := s.Next(); err != nil {
					break
				}
			}
			require.NoError(t, s.Close())
		}
		synctest.Wait()
		select {
		case ev := <-events:
			assert.Equal(t, "primary", ev.Provider)
			assert.Equal(t, "open", ev.To)
		default:
			t.Fatal("the breaker never learned of the stalls")
		}
	})
}

// TestShortRetryAfterIsWaitedOut: a 429 asking for 1 s is waited out on the
// same target when max_retry_after_wait allows it; without it, the request
// fails over to the spare at once.
func TestShortRetryAfterIsWaitedOut(t *testing.T) {
	for _, c := range []struct {
		wait     time.Duration
		provider string
		rows     []string
	}{
		{2 * time.Second, "primary", []string{"primary throttled", "primary ok"}},
		{0, "spare", []string{"primary throttled", "spare ok"}},
	} {
		t.Run(c.provider, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				g := primaryAndSpare(t, gateway.RetrySettings{MaxRetryAfterWait: c.wait},
					fakeprovider.Fault{Kind: fakeprovider.FaultRateLimit, RetryAfter: time.Second, Count: 1})
				start := time.Now()
				res, err := g.Complete(context.Background(), chat())
				require.NoError(t, err)
				assert.Equal(t, c.provider, res.Target.Provider)
				if c.wait > 0 {
					assert.GreaterOrEqual(t, time.Since(start), time.Second, "waited out the Retry-After")
				} else {
					assert.Less(t, time.Since(start), time.Second, "failed over at once")
				}
				assert.Equal(t, c.rows, outcomes(t, g))
			})
		})
	}
}

// TestPerProviderTimeouts: a provider's own attempt timeout overrides the
// route-wide one, for a plain call and (it follows by default) a stream's
// first token.
func TestPerProviderTimeouts(t *testing.T) {
	for _, stream := range []bool{false, true} {
		synctest.Test(t, func(t *testing.T) {
			g := primaryAndSpare(t, gateway.RetrySettings{AttemptTimeout: 10 * time.Second,
				Providers: map[string]gateway.Timeouts{"primary": {AttemptTimeout: 2 * time.Second}}},
				fakeprovider.Fault{Kind: fakeprovider.FaultHang})
			start := time.Now()
			if stream {
				s, err := g.Stream(context.Background(), chat())
				require.NoError(t, err)
				require.NoError(t, s.Close())
			} else {
				_, err := g.Complete(context.Background(), chat())
				require.NoError(t, err)
			}
			assert.Less(t, time.Since(start), 3*time.Second, "stream %v: the primary's 2 s, not the route's 10 s", stream)
		})
	}
}

// TestStreamWithoutTerminalMarkerIsASuccess: over each vendor, a stream
// that ends after its finish reason and usage but without [DONE] or
// message_stop is a success, metered with the vendor's usage.
func TestStreamWithoutTerminalMarkerIsASuccess(t *testing.T) {
	models := map[fakeprovider.Vendor]string{fakeprovider.OpenAI: "gpt-4o-mini", fakeprovider.Anthropic: "claude-haiku-4-5", fakeprovider.Gemini: "gemini-2.5-flash"}
	for _, v := range []fakeprovider.Vendor{fakeprovider.OpenAI, fakeprovider.Anthropic, fakeprovider.Gemini} {
		t.Run(string(v), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				g, err := gatewaytest.New(gatewaytest.Config{
					Fakes: map[string]fakeprovider.Config{"p": {Vendor: v, Seed: 1, Faults: []fakeprovider.Fault{{Kind: fakeprovider.FaultNoTerminal}},
						Models: map[string]fakeprovider.Model{models[v]: {Answers: []fakeprovider.Answer{{Text: "The capital of France is Paris.", Tokens: 8}}}}}},
					Gateway: gateway.Config{Routes: map[string][]string{"chat": {"p/" + models[v]}}},
				})
				require.NoError(t, err)
				t.Cleanup(g.Close)
				text, err := read(t, g)
				require.NoError(t, err, "a clean end after the usage")
				assert.Equal(t, "The capital of France is Paris.", text)
				var rows exportBuffer
				_, err = g.Store.Export(context.Background(), ledger.Query{}, &rows)
				require.NoError(t, err)
				attempts := rows.attempts(t)
				require.Len(t, attempts, 1)
				assert.Equal(t, ledger.OutcomeOK, attempts[0].Outcome)
				assert.Equal(t, ledger.UsageReported, attempts[0].UsageSource)
				assert.Equal(t, int64(8), attempts[0].Tokens.Output)
			})
		})
	}
}

// TestSlowBody: a plain answer dribbled slower than the attempt timeout
// allows is timed out and failed over; a slow stream whose events each
// arrive within the idle timeout is not cut, however long it takes in all.
func TestSlowBody(t *testing.T) {
	t.Run("plain", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			g := primaryAndSpare(t, gateway.RetrySettings{AttemptTimeout: 3 * time.Second, MaxAttempts: 1},
				fakeprovider.Fault{Kind: fakeprovider.FaultSlowBody, BytesPerSecond: 50})
			res, err := g.Complete(context.Background(), chat())
			require.NoError(t, err)
			assert.Equal(t, "spare", res.Target.Provider)
			assert.Equal(t, []string{"primary transport_error", "spare ok"}, outcomes(t, g))
		})
	})
	t.Run("stream", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			// 200 bytes a second: each event (a few hundred bytes) within
			// the 5 s timeouts, the whole stream far beyond them.
			g := primaryAndSpare(t, gateway.RetrySettings{FirstTokenTimeout: 5 * time.Second, IdleTimeout: 5 * time.Second},
				fakeprovider.Fault{Kind: fakeprovider.FaultSlowBody, BytesPerSecond: 200})
			start := time.Now()
			_, err := read(t, g)
			require.NoError(t, err)
			assert.Greater(t, time.Since(start), 10*time.Second, "longer in all than either timeout")
			assert.Equal(t, []string{"primary ok"}, outcomes(t, g))
		})
	})
}
