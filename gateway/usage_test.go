package gateway_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brownout-dev/brownout/fakeprovider"
	"github.com/brownout-dev/brownout/gateway"
	"github.com/brownout-dev/brownout/gateway/gatewaytest"
	"github.com/brownout-dev/brownout/gateway/ledger"
	"github.com/brownout-dev/brownout/gateway/llm"
	"github.com/brownout-dev/brownout/gateway/pricing"
)

// TestEveryBilledAttemptHasUsage: an attempt the vendor may have billed
// gets a row that says how its usage is known. Where the vendor's usage
// never came back (a timeout, a malformed body, a cut or cancelled stream)
// the row is estimated, never zero: input from the prompt by the vendor's
// rule of thumb, output from what arrived. Before usage_source these rows
// had zero usage (non-streamed) or input 0 (cut streams).
//
// The prompt is 40 characters in one message. Hand-computed estimates:
// OpenAI ceil(40/4) + 4 framing = 14; Anthropic ceil(40/3.5) + 3 = 15;
// Gemini ceil(40/4) = 10. The fake model bills 1 USD per million input
// tokens and 10 per million output tokens (reasoning included).
func TestEveryBilledAttemptHasUsage(t *testing.T) {
	const prompt = "What is the capital of France? One word."
	tests := []struct {
		name    string
		vendor  fakeprovider.Vendor
		fault   fakeprovider.Fault
		stream  bool
		cancel  bool // the client closes the stream after its first chunk
		gone    bool // the client left before the attempt (during its reservation, say)
		outcome ledger.Outcome
		source  ledger.UsageSource
		input   int64 // 0 with source reported: nothing billed
		output  int64 // output and reasoning received
		cost    string
		billed  bool // the fake has an invoice line for it
		joined  bool // the row carries the line's vendor id
	}{
		{name: "timeout before any answer", vendor: fakeprovider.OpenAI, fault: fakeprovider.Fault{Kind: fakeprovider.FaultLatency, Delay: time.Minute},
			outcome: ledger.OutcomeTransportError, source: ledger.UsageEstimated, input: 14, cost: "0.000014", billed: true},
		{name: "hang", vendor: fakeprovider.Gemini, fault: fakeprovider.Fault{Kind: fakeprovider.FaultHang},
			outcome: ledger.OutcomeTransportError, source: ledger.UsageEstimated, input: 10, cost: "0.00001"},
		{name: "malformed body", vendor: fakeprovider.Anthropic, fault: fakeprovider.Fault{Kind: fakeprovider.FaultMalformed},
			outcome: ledger.OutcomeTransportError, source: ledger.UsageEstimated, input: 15, cost: "0.000015", billed: true, joined: true},
		{name: "cut OpenAI stream", vendor: fakeprovider.OpenAI, stream: true, fault: fakeprovider.Fault{Kind: fakeprovider.FaultTruncate, AfterEvents: 4},
			outcome: ledger.OutcomeTransportError, source: ledger.UsageEstimated, input: 14, output: 3, cost: "0.000044", billed: true, joined: true},
		// Anthropic's message_start carries the input tokens: the vendor's
		// count (the fake's 10) is kept, not the estimate.
		{name: "cut Anthropic stream", vendor: fakeprovider.Anthropic, stream: true, fault: fakeprovider.Fault{Kind: fakeprovider.FaultTruncate, AfterEvents: 6},
			outcome: ledger.OutcomeTransportError, source: ledger.UsageEstimated, input: 10, output: 3, cost: "0.00004", billed: true, joined: true},
		{name: "stream the client closes", vendor: fakeprovider.Gemini, stream: true, cancel: true,
			outcome: ledger.OutcomeCancelled, source: ledger.UsageEstimated, input: 10, output: 1, cost: "0.00002", billed: true, joined: true},
		// No call is made: nothing reached a vendor, nothing is estimated.
		{name: "a client gone before the call", vendor: fakeprovider.OpenAI, gone: true,
			outcome: ledger.OutcomeCancelled, source: ledger.UsageNone, cost: "0"},
		{name: "a client gone before the stream", vendor: fakeprovider.Gemini, stream: true, gone: true,
			outcome: ledger.OutcomeCancelled, source: ledger.UsageNone, cost: "0"},
		{name: "an error answer bills nothing", vendor: fakeprovider.OpenAI, fault: fakeprovider.Fault{Kind: fakeprovider.FaultServerError, Status: 503},
			outcome: ledger.OutcomeServerError, source: ledger.UsageReported, cost: "0"},
		{name: "a success", vendor: fakeprovider.Anthropic,
			outcome: ledger.OutcomeOK, source: ledger.UsageReported, input: 10, output: 8, cost: "0.00009", billed: true, joined: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var faults []fakeprovider.Fault
				if tt.fault.Kind != "" {
					faults = append(faults, tt.fault)
				}
				model := fakeprovider.Model{Answers: []fakeprovider.Answer{{Text: "The capital of France is Paris.", Tokens: 8}},
					TTFTms: fakeprovider.Fixed(100), PerTokenMs: fakeprovider.Fixed(10),
					Price: &fakeprovider.ListPrice{Input: decimal.RequireFromString("1"), Output: decimal.RequireFromString("10")}}
				store := ledger.NewMemoryStore()
				g, err := gatewaytest.New(gatewaytest.Config{
					Fakes: map[string]fakeprovider.Config{"p": {Vendor: tt.vendor, Seed: 1, Faults: faults, Models: map[string]fakeprovider.Model{"m": model}}},
					Gateway: gateway.Config{Routes: map[string][]string{"chat": {"p/m"}},
						Prices: gateway.PricesConfig{Models: map[string]pricing.Price{"m": {Input: pricing.MustRate("1"), Output: pricing.MustRate("10")}}},
						Retry:  gateway.RetrySettings{MaxAttempts: 1, AttemptTimeout: 5 * time.Second, Deadline: 10 * time.Second}},
					Store: store})
				require.NoError(t, err)
				defer g.Close()
				req := &gateway.Request{Tenant: gatewaytest.DefaultTenant, Route: "chat",
					LLM: llm.Request{Messages: []llm.Message{{Role: "user", Content: prompt}}}}
				ctx := context.Background()
				if tt.gone {
					gone, cancel := context.WithCancel(ctx)
					cancel()
					ctx = gone
				}
				if tt.stream {
					s, err := g.Stream(ctx, req)
					if err == nil {
						for {
							_, err = s.Next()
							if err != nil || tt.cancel {
								break
							}
						}
						s.Close()
					}
					if !tt.cancel && tt.outcome != ledger.OutcomeOK {
						require.Error(t, err)
						require.False(t, errors.Is(err, io.EOF), "the stream must fail, not end")
					}
				} else {
					_, err := g.Complete(ctx, req)
					assert.Equal(t, tt.outcome == ledger.OutcomeOK, err == nil, "%v", err)
				}
				synctest.Wait()

				var buf exportBuffer
				_, err = store.Export(context.Background(), ledger.Query{}, &buf)
				require.NoError(t, err)
				rows := buf.attempts(t)
				require.Len(t, rows, 1, "one row for the one attempt")
				a := rows[0]
				assert.Equal(t, tt.outcome, a.Outcome)
				assert.Equal(t, tt.source, a.UsageSource)
				assert.Equal(t, tt.input, a.Tokens.Input, "input tokens")
				assert.Equal(t, tt.output, a.Tokens.Output+a.Tokens.Reasoning, "output tokens received")
				assert.Equal(t, tt.cost, a.Cost.String(), "cost")

				lines := g.Fakes["p"].Invoice().Lines
				if !tt.billed {
					assert.Empty(t, lines, "the vendor billed nothing")
					return
				}
				require.Len(t, lines, 1)
				if tt.joined {
					assert.Equal(t, lines[0].RequestID, a.ProviderReqID, "the row names the invoice line")
				}
			})
		})
	}
}

// TestOneRoundingOfOneCost: the exact cost is rounded once, to the
// ledger's scale, and the row, the result (the client's
// X-Brownout-Cost-USD) and the budget settle on that one value. At 0.00000015
// USD per million input tokens and 1 per million output tokens, 10 input and
// 8 output tokens cost exactly 0.0000080000015, which is 0.000008000002
// at 12 places (half away from zero). Before, the ledger truncated it to
// …001 and the header kept all 13 places.
func TestOneRoundingOfOneCost(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		model := fakeprovider.Model{Answers: []fakeprovider.Answer{{Text: "The capital of France is Paris.", Tokens: 8}}}
		store := ledger.NewMemoryStore()
		g, err := gatewaytest.New(gatewaytest.Config{
			Fakes: map[string]fakeprovider.Config{"p": {Vendor: fakeprovider.OpenAI, Seed: 1, Models: map[string]fakeprovider.Model{"m": model}}},
			Gateway: gateway.Config{Routes: map[string][]string{"chat": {"p/m"}},
				Prices: gateway.PricesConfig{Models: map[string]pricing.Price{"m": {Input: pricing.MustRate("0.00000015"), Output: pricing.MustRate("1")}}}},
			Store: store})
		require.NoError(t, err)
		defer g.Close()
		res, err := g.Complete(context.Background(), &gateway.Request{Tenant: gatewaytest.DefaultTenant, Route: "chat",
			LLM: llm.Request{Messages: []llm.Message{{Role: "user", Content: "What is the capital of France? One word."}}}})
		require.NoError(t, err)
		require.Equal(t, llm.Usage{Input: 10, Output: 8}, res.Response.Usage)
		assert.Equal(t, "0.000008000002", res.Cost.String(), "the cost the client is told")
		var buf exportBuffer
		_, err = store.Export(context.Background(), ledger.Query{}, &buf)
		require.NoError(t, err)
		rows := buf.attempts(t)
		require.Len(t, rows, 1)
		assert.Equal(t, "0.000008000002", rows[0].Cost.String(), "the ledger's cost")
	})
}

// TestMidStreamFailuresCountAgainstTheBreaker: a stream that fails after
// its first chunk (an in-band error event after the 200) is a provider
// failure the breaker counts, as a failed call before any chunk is.
func TestMidStreamFailuresCountAgainstTheBreaker(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		model := fakeprovider.Model{Answers: []fakeprovider.Answer{{Text: "The capital of France is Paris.", Tokens: 8}}}
		g, err := gatewaytest.New(gatewaytest.Config{
			Fakes: map[string]fakeprovider.Config{"p": {Vendor: fakeprovider.OpenAI, Seed: 1, Models: map[string]fakeprovider.Model{"gpt-4o-mini": model},
				Faults: []fakeprovider.Fault{{Kind: fakeprovider.FaultStreamError, AfterEvents: 3, Status: 500}}}},
			Gateway: gateway.Config{Routes: map[string][]string{"chat": {"p/gpt-4o-mini"}},
				Breaker: gateway.BreakerConfig{BreakerSettings: gateway.BreakerSettings{ConsecutiveFailures: 3, OpenFor: time.Minute}},
				Retry:   gateway.RetrySettings{MaxAttempts: 1}},
		})
		require.NoError(t, err)
		defer g.Close()
		target := gateway.Target{Provider: "p", Model: "gpt-4o-mini"}
		for i := range 3 {
			assert.Equal(t, "closed", g.BreakerState(target), "before stream %d", i)
			s, err := g.Stream(context.Background(), &gateway.Request{Tenant: gatewaytest.DefaultTenant, Route: "chat",
				LLM: llm.Request{Messages: []llm.Message{{Role: "user", Content: "Capital of France?"}}}})
			require.NoError(t, err, "the stream starts: its first chunk arrives")
			for err == nil {
				_, err = s.Next()
			}
			require.False(t, errors.Is(err, io.EOF), "the stream fails mid-way")
			s.Close()
		}
		assert.Equal(t, "open", g.BreakerState(target), "three streams that died mid-way open the breaker")
	})
}

// TestWhatARequestCostIncludesItsFailedAttempts: the cost a caller is told
// (Result.Cost, X-Brownout-Cost-USD) is every attempt's, the billed ones
// that failed included; a request that fails after billed attempts says
// what they cost (SpentError, and the header on the error answer), where it
// used to say nothing, and an eval counted the failure at $0.
func TestWhatARequestCostIncludesItsFailedAttempts(t *testing.T) {
	setup := func(t *testing.T, faults []fakeprovider.Fault, attempts int) (*gatewaytest.Gateway, *ledger.MemoryStore) {
		model := fakeprovider.Model{Answers: []fakeprovider.Answer{{Text: "Paris", Tokens: 1}},
			Price: &fakeprovider.ListPrice{Input: decimal.RequireFromString("1"), Output: decimal.RequireFromString("10")}}
		store := ledger.NewMemoryStore()
		g, err := gatewaytest.New(gatewaytest.Config{
			Fakes: map[string]fakeprovider.Config{"p": {Vendor: fakeprovider.OpenAI, Seed: 1, Faults: faults, Models: map[string]fakeprovider.Model{"m": model}}},
			Gateway: gateway.Config{Routes: map[string][]string{"mini": {"p/m"}},
				Prices: gateway.PricesConfig{Models: map[string]pricing.Price{"m": {Input: pricing.MustRate("1"), Output: pricing.MustRate("10")}}},
				Retry:  gateway.RetrySettings{MaxAttempts: attempts}},
			Store: store})
		require.NoError(t, err)
		t.Cleanup(g.Close)
		return g, store
	}
	rowsCost := func(t *testing.T, store *ledger.MemoryStore) (decimal.Decimal, int) {
		var buf exportBuffer
		_, err := store.Export(context.Background(), ledger.Query{}, &buf)
		require.NoError(t, err)
		sum, rows := decimal.Zero, buf.attempts(t)
		for _, a := range rows {
			sum = sum.Add(a.Cost)
		}
		return sum, len(rows)
	}
	malformedOnce := []fakeprovider.Fault{{Kind: fakeprovider.FaultMalformed, Count: 1}}
	t.Run("a retry after a billed failure", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			g, store := setup(t, malformedOnce, 2)
			rec := httptest.NewRecorder()
			g.Handler.ServeHTTP(rec, chatRequest(t))
			require.Equal(t, 200, rec.Code, "%s", rec.Body)
			sum, n := rowsCost(t, store)
			require.Equal(t, 2, n)
			// The malformed attempt: 14 estimated input tokens; the answer: 10 input and 1 output.
			assert.Equal(t, "0.000034", sum.String(), "(14*1) + (10*1 + 1*10) per million")
			assert.Equal(t, sum.String(), rec.Header().Get("X-Brownout-Cost-USD"))
		})
	})
	t.Run("a failure after a billed attempt", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			g, store := setup(t, malformedOnce, 1)
			_, err := g.Complete(context.Background(), &gateway.Request{Tenant: gatewaytest.DefaultTenant, Route: "mini",
				LLM: llm.Request{Messages: []llm.Message{{Role: "user", Content: "What is the capital of France? One word."}}}})
			var spent *gateway.SpentError
			require.ErrorAs(t, err, &spent)
			sum, _ := rowsCost(t, store)
			assert.Equal(t, "0.000014", spent.Cost.String())
			assert.Equal(t, sum.String(), spent.Cost.String())

			g2, _ := setup(t, malformedOnce, 1)
			rec := httptest.NewRecorder()
			g2.Handler.ServeHTTP(rec, chatRequest(t))
			assert.Equal(t, 502, rec.Code, "%s", rec.Body)
			assert.Equal(t, "0.000014", rec.Header().Get("X-Brownout-Cost-USD"))
		})
	})
}

// chatRequest is the capital question as a client posts it.
func chatRequest(t *testing.T) *http.Request {
	t.Helper()
	req := httptest.NewRequest("POST", "/v1/chat/completions", strings.NewReader(capitalBody))
	req.Header.Set("Authorization", "Bearer "+gatewaytest.DefaultKey)
	return req
}
