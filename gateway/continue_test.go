package gateway_test

import (
	"context"
	"errors"
	"io"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brownout-dev/brownout/fakeprovider"
	"github.com/brownout-dev/brownout/gateway"
	"github.com/brownout-dev/brownout/gateway/gatewaytest"
	"github.com/brownout-dev/brownout/gateway/llm"
)

const sentence = "The capital of France is Paris."

// cutThenSpare is a gateway whose route streams from OpenAI, which fails
// after its fourth event (the role chunk and three words), then spareVendor,
// recording each attempt before its call (Options.Unfinished).
func cutThenSpare(t *testing.T, spare fakeprovider.Vendor, spareFaults ...fakeprovider.Fault) *gatewaytest.Gateway {
	answer := fakeprovider.Model{Answers: []fakeprovider.Answer{{Text: sentence, Tokens: 8}}}
	spareModel := map[fakeprovider.Vendor]string{fakeprovider.Anthropic: "claude-haiku-4-5", fakeprovider.Gemini: "gemini-2.5-flash-lite"}[spare]
	g, err := gatewaytest.New(gatewaytest.Config{
		Fakes: map[string]fakeprovider.Config{
			"primary": {Vendor: fakeprovider.OpenAI, Seed: 1, Models: map[string]fakeprovider.Model{"gpt-4o-mini": answer},
				Faults: []fakeprovider.Fault{{Kind: fakeprovider.FaultStreamError, AfterEvents: 4, Status: 503}}},
			"spare": {Vendor: spare, Seed: 2, Models: map[string]fakeprovider.Model{spareModel: answer}, Faults: spareFaults},
		},
		Gateway: gateway.Config{Routes: map[string][]string{"chat": {"primary/gpt-4o-mini", "spare/" + spareModel}}},
		// Every attempt's row is recorded before its call too, so the
		// outcomes below also say that each finished row, the
		// continuation's included, replaced its unfinished one.
		Options: func(o *gateway.Options) { o.Unfinished = true },
	})
	require.NoError(t, err)
	t.Cleanup(g.Close)
	return g
}

// read reads a stream to its end: the text and the error it ended with
// (or could not start with).
func read(t *testing.T, g *gatewaytest.Gateway) (string, error) {
	s, err := g.Stream(context.Background(), chat())
	if err != nil {
		return "", err
	}
	defer s.Close()
	var text string
	for {
		c, err := s.Next()
		if errors.Is(err, io.EOF) {
			return text, nil
		}
		if err != nil {
			return text, err
		}
		text += c.Content
	}
}

// TestStreamContinuesOnAPrefillTarget: a stream cut after three words is
// carried on to the route's Anthropic target with the words so far as the
// start of its reply; the client reads the one sentence, whole, and each
// attempt is metered (observed before: the client got an in-band error
// after three words).
func TestStreamContinuesOnAPrefillTarget(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := cutThenSpare(t, fakeprovider.Anthropic)
		text, err := read(t, g)
		require.NoError(t, err)
		assert.Equal(t, sentence, text, "the continuation spliced on, nothing repeated")
		assert.Equal(t, []string{"primary server_error", "spare ok"}, outcomes(t, g))
	})
}

// TestStreamEndsNamingTheFirstFailure: where the next target cannot
// continue a prefill (Gemini), the stream ends with the first failure; a
// continuation that fails itself does not mask it.
func TestStreamEndsNamingTheFirstFailure(t *testing.T) {
	t.Run("no target continues", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			g := cutThenSpare(t, fakeprovider.Gemini)
			text, err := read(t, g)
			require.Error(t, err)
			var pe *llm.ProviderError
			require.True(t, errors.As(err, &pe))
			assert.Equal(t, "primary", pe.Provider, "the first failure: %v", err)
			assert.NotEmpty(t, text)
			assert.Equal(t, []string{"primary server_error"}, outcomes(t, g))
		})
	})
	t.Run("the continuation fails", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			g := cutThenSpare(t, fakeprovider.Anthropic, fakeprovider.Fault{Kind: fakeprovider.FaultServerError, Status: 500})
			_, err := read(t, g)
			require.Error(t, err)
			var pe *llm.ProviderError
			require.True(t, errors.As(err, &pe))
			assert.Equal(t, "primary", pe.Provider, "the first failure first: %v", err)
			assert.Contains(t, err.Error(), "continuing on spare/claude-haiku-4-5 failed too")
			assert.Equal(t, []string{"primary server_error", "spare server_error"}, outcomes(t, g))
		})
	})
}

// TestCutMidEventOverEachVendor: a connection dropped in the middle of an
// SSE event is a transport error the client is told of (not a clean end,
// not a parse of half an event), metered with estimated usage.
func TestCutMidEventOverEachVendor(t *testing.T) {
	models := map[fakeprovider.Vendor]string{fakeprovider.OpenAI: "gpt-4o-mini", fakeprovider.Anthropic: "claude-haiku-4-5", fakeprovider.Gemini: "gemini-2.5-flash"}
	for _, v := range []fakeprovider.Vendor{fakeprovider.OpenAI, fakeprovider.Anthropic, fakeprovider.Gemini} {
		t.Run(string(v), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				g, err := gatewaytest.New(gatewaytest.Config{
					Fakes: map[string]fakeprovider.Config{"p": {Vendor: v, Seed: 1, Faults: []fakeprovider.Fault{{Kind: fakeprovider.FaultReset, AfterEvents: 3}},
						Models: map[string]fakeprovider.Model{models[v]: {Answers: []fakeprovider.Answer{{Text: sentence, Tokens: 8}}}}}},
					Gateway: gateway.Config{Routes: map[string][]string{"chat": {"p/" + models[v]}}},
				})
				require.NoError(t, err)
				t.Cleanup(g.Close)
				text, err := read(t, g)
				require.Error(t, err, "read %q", text)
				assert.Equal(t, llm.ClassTransport, llm.Classify(context.Background(), err), "%v", err)
				assert.NotEqual(t, sentence, text)
				// Cut before the first chunk (Anthropic's first three events
				// carry no text), the attempt is retried; after it, the
				// stream is the client's: one attempt.
				rows := outcomes(t, g)
				require.NotEmpty(t, rows)
				for _, r := range rows {
					assert.Equal(t, "p transport_error", r)
				}
			})
		})
	}
}
