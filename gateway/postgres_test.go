package gateway_test

import (
	"bytes"
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brownout-dev/brownout/fakeprovider"
	"github.com/brownout-dev/brownout/gateway/ledger"
	"github.com/brownout-dev/brownout/internal/pgtest"
)

// TestLedgerInPostgresMatchesInvoices sends plain, streamed and failing
// requests to all three vendors through the real async writer into the
// containerized Postgres: every attempt is a row, and the ledger's cost
// equals the sum of the fakes' invoices to the last digit.
func TestLedgerInPostgresMatchesInvoices(t *testing.T) {
	store := ledger.NewPostgresStore(pgtest.NewPool(t, pgtest.Template{Name: "ledger", Setup: ledger.Migrate}))
	w, err := ledger.NewWriter(store, ledger.WriterConfig{SpoolDir: t.TempDir(), FlushInterval: 10 * time.Millisecond})
	require.NoError(t, err)
	r := newRig(t, store, w, map[string][]fakeprovider.Fault{
		"gemini": {{Kind: fakeprovider.FaultServerError, Status: 503, Probability: 0.3}},
	})
	sent := 0
	for i := range 30 {
		for _, route := range []string{"claude", "sonnet", "flash", "o4", "long-openai"} {
			sent++
			if i%3 == 0 {
				params := ask(route)
				params.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
				s := r.client.Chat.Completions.NewStreaming(context.Background(), params)
				for s.Next() {
				}
				continue
			}
			_, _ = r.client.Chat.Completions.New(context.Background(), ask(route))
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, w.Close(ctx))

	totals, err := store.Totals(context.Background(), ledger.Query{})
	require.NoError(t, err)
	require.Len(t, totals, 1)
	metered := totals[0].Cost
	assert.Equal(t, int64(sent), totals[0].Requests, "every request has attempt rows")
	assert.Greater(t, totals[0].Attempts, totals[0].Requests, "503s were retried, and each retry is a row")
	billed := decimal.Zero
	var billedLines int
	for _, f := range r.fakes {
		inv := f.Invoice()
		billed = billed.Add(inv.Totals.Cost)
		billedLines += len(inv.Lines)
	}
	assert.Less(t, billedLines, sent, "some requests failed (and bill nothing)")
	assert.True(t, metered.Equal(billed), "ledger %s; invoices %s", metered, billed)
	assert.Equal(t, billed.String(), metered.String())
}

// FuzzChatDecoder: no request body makes the front answer 5xx or panic.
func FuzzChatDecoder(f *testing.F) {
	f.Add([]byte(`{"model":"claude","messages":[{"role":"user","content":"hi"}],"max_tokens":5,"stop":["a"]}`))
	f.Add([]byte(`{"model":"claude","messages":[{"role":"user","content":[{"type":"text","text":"hi"}]}],"stream":true,"stream_options":{"include_usage":true}}`))
	f.Add([]byte(`{"model":"nope","messages":[{}]}`))
	f.Add([]byte(`[]`))
	r := newRig(f, ledger.NewMemoryStore(), nil, nil)
	h := r.server.Config.Handler
	f.Fuzz(func(t *testing.T, body []byte) {
		req := httptest.NewRequest("POST", "/v1/chat/completions", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tenantKey)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("status %d for %q: %s", rec.Code, body, rec.Body)
		}
	})
}
