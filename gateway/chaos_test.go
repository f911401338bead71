package gateway_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brownout-dev/brownout/fakeprovider"
	"github.com/brownout-dev/brownout/gateway"
	"github.com/brownout-dev/brownout/gateway/ledger"
	"github.com/brownout-dev/brownout/gateway/llm"
	"github.com/brownout-dev/brownout/internal/pgtest"
)

// TestChaosLedgerEqualsInvoices runs mixed traffic through every policy
// while the fakes misbehave (an OpenAI outage then 503s, Anthropic 429s,
// Gemini streams cut mid-way) and clients retry with the same
// Idempotency-Key, then checks the ledger in Postgres against the fakes'
// invoices: the same generations, the same tokens, the same cost to the
// last digit, nothing billed twice.
//
// Streams are cut on Gemini, whose chunks carry cumulative usage, so the
// partial usage the gateway meters is exact. (A cut OpenAI or Anthropic
// stream is metered with an estimate; the scenarios' reconciliation shows
// the difference as unmetered spend.)
func TestChaosLedgerEqualsInvoices(t *testing.T) {
	url := pgtest.New(t, pgtest.Template{Name: "ledger", Setup: ledger.Migrate})
	store := ledger.NewPostgresStore(pgtest.Pool(t, url))
	w, err := ledger.NewWriter(store, ledger.WriterConfig{SpoolDir: t.TempDir(), FlushInterval: 10 * time.Millisecond})
	require.NoError(t, err)
	fakes := startFakes(t, map[string][]fakeprovider.Fault{
		"openai": {
			{Kind: fakeprovider.FaultOutage, Until: time.Second},
			{Kind: fakeprovider.FaultServerError, Status: 503, Probability: 0.2},
		},
		"anthropic": {{Kind: fakeprovider.FaultRateLimit, RetryAfter: 5 * time.Millisecond, Probability: 0.3}},
		"gemini":    {{Kind: fakeprovider.FaultTruncate, AfterEvents: 1, Probability: 0.3}},
	})
	r := rigOn(t, fakes, store, w, rigExtras{idempotency: gateway.NewPostgresIdempotency(pgtest.Pool(t, url), gateway.IdempotencySettings{}),
		// A short open state, so OpenAI's breaker opens in the outage and
		// closes again within the run.
		breakers: map[string]gateway.BreakerSettings{"": {OpenFor: 200 * time.Millisecond}}})

	routes := []string{"o4", "sonnet", "long-gemini", "mini", "claude", "flash"}
	for i := range 120 {
		route := routes[i%len(routes)]
		// Gemini is always streamed: its cuts are stream cuts. (A non-streamed
		// body cut in half cannot be metered at all: unmetered spend.)
		stream := i%5 < 2 || route == "long-gemini" || route == "flash"
		body := fmt.Sprintf(`{"model":%q,"stream":%v,"messages":[{"role":"user","content":"Question %d: what is the capital of France?"}]}`, route, stream, i)
		key := fmt.Sprintf("chaos-%d", i)
		post(t, r.server.URL, key, fmt.Sprintf("c%d", i), body)
		if i%4 == 0 {
			post(t, r.server.URL, key, fmt.Sprintf("c%d-again", i), body) // a client retrying with the same key
		}
		time.Sleep(20 * time.Millisecond) // spread the run past the outage and the breaker's open state
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, w.Close(ctx))

	// Every generation a fake billed is a ledger row with its id, tokens and cost.
	rows := map[string]ledger.Attempt{}
	var buf exportBuffer
	_, err = store.Export(context.Background(), ledger.Query{}, &buf)
	require.NoError(t, err)
	outcomes := map[ledger.Outcome]int{}
	for _, a := range buf.attempts(t) {
		outcomes[a.Outcome]++
		if a.ProviderReqID != "" && (a.Tokens != llm.Usage{}) {
			_, dup := rows[a.ProviderReqID]
			assert.False(t, dup, "generation %s metered twice", a.ProviderReqID)
			rows[a.ProviderReqID] = a
		}
	}
	t.Logf("ledger outcomes: %v", outcomes)
	for _, o := range []ledger.Outcome{ledger.OutcomeOK, ledger.OutcomeThrottled, ledger.OutcomeServerError, ledger.OutcomeTransportError} {
		assert.Positive(t, outcomes[o], "the chaos produced no %s attempt", o)
	}
	lines := 0
	for name, f := range fakes {
		for _, l := range f.Invoice().Lines {
			lines++
			a, ok := rows[l.RequestID]
			if !assert.True(t, ok, "%s billed %s, which the ledger does not have", name, l.RequestID) {
				continue
			}
			assert.Equal(t, llm.Usage{Input: l.InputTokens, Output: l.OutputTokens, Reasoning: l.ReasoningTokens,
				CacheRead: l.CacheReadTokens, CacheWrite: l.CacheWriteTokens}, a.Tokens, "tokens of %s", l.RequestID)
			assert.True(t, l.Cost.Equal(a.Cost), "cost of %s: ledger %s, invoice %s", l.RequestID, a.Cost, l.Cost)
		}
	}
	assert.Equal(t, lines, len(rows), "the ledger meters exactly the billed generations")
}
