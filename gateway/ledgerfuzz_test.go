package gateway_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brownout-dev/brownout/fakeprovider"
	"github.com/brownout-dev/brownout/gateway"
	"github.com/brownout-dev/brownout/gateway/gatewaytest"
	"github.com/brownout-dev/brownout/gateway/ledger"
	"github.com/brownout-dev/brownout/gateway/llm"
)

// vendorID answers with the vendor request id id (when set), whatever it is.
type vendorID struct {
	llm.Provider
	id string
}

func (p vendorID) Complete(ctx context.Context, req *llm.Request) (*llm.Response, error) {
	resp, err := p.Provider.Complete(ctx, req)
	if resp != nil && p.id != "" {
		resp.ProviderRequestID = p.id
	}
	return resp, err
}

// FuzzEveryInvoiceLineHasOneRow: whatever a client sends as X-Request-ID
// and Idempotency-Key, whatever tenant name the config gives and whatever
// request id the vendor answers with, a billed call has exactly one ledger
// row, a refused request has no call and no row, the config refuses a name
// the ledger would, and the gateway never answers 5xx. `go test` runs the
// seeds; `go test -fuzz FuzzEveryInvoiceLineHasOneRow ./gateway/` searches.
func FuzzEveryInvoiceLineHasOneRow(f *testing.F) {
	f.Add("req-1", "", "acme", "")
	f.Add("same-id", "key-1", "acme", "req_abc")
	f.Add(strings.Repeat("r", ledger.MaxIDLen+1), "", "acme", "")
	f.Add("", strings.Repeat("k", 200), "acme", "")
	f.Add("has spaces", "key with spaces", "acme", "")
	f.Add("", "", strings.Repeat("t", ledger.MaxIDLen+1), "")
	f.Add("", "", "tab\tname", "")
	f.Add("", "", "", "")
	f.Add("", "", "acme", "req\x00\x1b[31m"+strings.Repeat("x", 300))
	f.Add("\xff", "\xfe", "ünïcode", "\xff\xfe")
	f.Fuzz(func(t *testing.T, clientID, idemKey, tenant, vid string) {
		g, err := gatewaytest.New(gatewaytest.Config{
			Fakes: map[string]fakeprovider.Config{"openai": {Vendor: fakeprovider.OpenAI, Seed: 1, Models: map[string]fakeprovider.Model{"gpt-4o-mini": plain}}},
			Gateway: gateway.Config{Routes: map[string][]string{"mini": {"openai/gpt-4o-mini"}},
				Tenants: []gateway.TenantConfig{{Name: tenant, APIKeySHA256: fmt.Sprintf("%x", gateway.HashKey("key"))}}},
			Idempotency: gateway.NewMemoryIdempotency(gateway.IdempotencySettings{}, nil),
			Options:     func(o *gateway.Options) { o.Providers["openai"] = vendorID{o.Providers["openai"], vid} },
		})
		if err != nil {
			require.True(t, tenant == "" || ledger.CheckID(tenant) != nil, "config refused tenant %q: %v", tenant, err)
			assert.Contains(t, err.Error(), "tenants[0].name")
			return
		}
		defer g.Close()
		req := httptest.NewRequest("POST", "/v1/chat/completions", strings.NewReader(capitalBody))
		req.Header.Set("Authorization", "Bearer key")
		if clientID != "" {
			req.Header["X-Request-Id"] = []string{clientID} // as sent: no client-side check
		}
		if idemKey != "" {
			req.Header["Idempotency-Key"] = []string{idemKey}
		}
		rec := httptest.NewRecorder()
		g.Handler.ServeHTTP(rec, req)
		require.Less(t, rec.Code, 500, "%s", rec.Body)

		lines := g.Invoices()["openai"].Lines
		var buf exportBuffer
		_, err = g.Store.Export(context.Background(), ledger.Query{}, &buf)
		require.NoError(t, err)
		rows := buf.attempts(t)
		if rec.Code != 200 {
			require.Equal(t, 400, rec.Code, "%s", rec.Body)
			assert.Empty(t, lines, "a refused request made a call")
			assert.Empty(t, rows)
			return
		}
		require.Len(t, lines, 1)
		require.Len(t, rows, 1, "one row for the one invoice line")
		want := lines[0].RequestID
		if vid != "" {
			want = ledger.SanitizeID(vid)
		}
		assert.Equal(t, want, rows[0].ProviderReqID)
		assert.Equal(t, tenant, rows[0].Tenant)
		assert.Zero(t, gatewayRefused(g), "the ledger refused a row")
	})
}

// gatewayRefused sums brownout_ledger_refused_total.
func gatewayRefused(g *gatewaytest.Gateway) float64 {
	mfs, err := g.Registry.Gather()
	if err != nil {
		return -1
	}
	n := 0.0
	for _, mf := range mfs {
		if mf.GetName() == "brownout_ledger_refused_total" {
			for _, m := range mf.GetMetric() {
				n += m.GetCounter().GetValue()
			}
		}
	}
	return n
}
