package gateway_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brownout-dev/brownout/fakeprovider"
	"github.com/brownout-dev/brownout/gateway"
	"github.com/brownout-dev/brownout/gateway/gatewaytest"
	"github.com/brownout-dev/brownout/gateway/llm"
)

// TestContextLengthFallback: each vendor's own 400 for a prompt over its
// window (OpenAI's context_length_exceeded, Anthropic's "prompt is too
// long", Gemini's INVALID_ARGUMENT token count) sends the request to the
// route's on_context_length target, once, metered like any attempt;
// without the fallback the client gets the 400 at once, after one attempt
// (it is not retried: no retry can make the prompt fit).
func TestContextLengthFallback(t *testing.T) {
	models := map[fakeprovider.Vendor]string{fakeprovider.OpenAI: "gpt-4o-mini", fakeprovider.Anthropic: "claude-haiku-4-5", fakeprovider.Gemini: "gemini-2.5-flash"}
	answer := fakeprovider.Model{Answers: []fakeprovider.Answer{{Text: "Paris", Tokens: 1}}}
	for _, v := range []fakeprovider.Vendor{fakeprovider.OpenAI, fakeprovider.Anthropic, fakeprovider.Gemini} {
		for _, withFallback := range []bool{true, false} {
			t.Run(string(v)+map[bool]string{true: "/fallback", false: "/none"}[withFallback], func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					cfg := gateway.Config{Routes: map[string][]string{"chat": {"short/" + models[v]}}}
					if withFallback {
						cfg.Fallbacks = map[string]gateway.FallbackConfig{"chat": {OnContextLength: []string{"large/gemini-2.5-pro"}}}
					}
					g, err := gatewaytest.New(gatewaytest.Config{
						Fakes: map[string]fakeprovider.Config{
							"short": {Vendor: v, Seed: 1, Faults: []fakeprovider.Fault{{Kind: fakeprovider.FaultContextLength}},
								Models: map[string]fakeprovider.Model{models[v]: answer}},
							"large": {Vendor: fakeprovider.Gemini, Seed: 2, Models: map[string]fakeprovider.Model{"gemini-2.5-pro": answer}},
						},
						Gateway: cfg,
					})
					require.NoError(t, err)
					t.Cleanup(g.Close)
					res, err := g.Complete(context.Background(), chat())
					if withFallback {
						require.NoError(t, err)
						assert.Equal(t, "large", res.Target.Provider)
						assert.Equal(t, []string{"short client_error", "large ok"}, outcomes(t, g))
						assert.True(t, res.Cost.IsPositive(), "the fallback's attempt is billed and metered")
						return
					}
					require.Error(t, err)
					assert.True(t, llm.ContextLengthExceeded(err), "the vendor's 400 is recognised: %v", err)
					var pe *llm.ProviderError
					require.True(t, errors.As(err, &pe))
					assert.Equal(t, 400, pe.Status)
					assert.Equal(t, []string{"short client_error"}, outcomes(t, g), "one attempt, not retried")
				})
			})
		}
	}
}

// TestFallbackRejectionDoesNotMaskTheCause: the primary fails (503) and the
// fallback refuses the request (a 400): the request failed because the
// primary did, so that is the error (and the status) the client gets, the
// fallback's refusal beside it. Observed before: the fallback's 400, which
// tells a client its request is bad and not to retry it.
func TestFallbackRejectionDoesNotMaskTheCause(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		answer := fakeprovider.Model{Answers: []fakeprovider.Answer{{Text: "Paris", Tokens: 1}}}
		g, err := gatewaytest.New(gatewaytest.Config{
			Fakes: map[string]fakeprovider.Config{
				"primary": {Vendor: fakeprovider.OpenAI, Seed: 1, Faults: []fakeprovider.Fault{{Kind: fakeprovider.FaultServerError, Status: 503}},
					Models: map[string]fakeprovider.Model{"gpt-4o-mini": answer}},
				"spare": {Vendor: fakeprovider.Anthropic, Seed: 2, Faults: []fakeprovider.Fault{{Kind: fakeprovider.FaultContextLength}},
					Models: map[string]fakeprovider.Model{"claude-haiku-4-5": answer}},
			},
			Gateway: gateway.Config{Routes: map[string][]string{"chat": {"primary/gpt-4o-mini", "spare/claude-haiku-4-5"}},
				Retry: gateway.RetrySettings{MaxAttempts: 1}},
		})
		require.NoError(t, err)
		t.Cleanup(g.Close)
		_, err = g.Complete(context.Background(), chat())
		require.Error(t, err)
		var pe *llm.ProviderError
		require.True(t, errors.As(err, &pe))
		assert.Equal(t, "primary", pe.Provider)
		assert.Equal(t, 503, pe.Status)
		assert.Contains(t, err.Error(), "then spare/claude-haiku-4-5 refused the request")
		assert.Equal(t, []string{"primary server_error", "spare client_error"}, outcomes(t, g))
	})
}
