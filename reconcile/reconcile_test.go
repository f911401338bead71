package reconcile_test

import (
	"bytes"
	"context"
	"fmt"
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
	"github.com/brownout-dev/brownout/gateway/llm"
	"github.com/brownout-dev/brownout/reconcile"
)

// vendorCase is a vendor with a model and the model's output rate (USD per
// million tokens), typed from the vendor's pricing page: what a hidden
// reasoning token costs, computed by hand, not by the fakes or the gateway.
type vendorCase struct {
	vendor fakeprovider.Vendor
	model  string
	output string
}

var vendorCases = []vendorCase{
	{fakeprovider.OpenAI, "o4-mini", "4.4"},
	{fakeprovider.Anthropic, "claude-haiku-4-5", "5"},
	{fakeprovider.Gemini, "gemini-2.5-flash", "2.5"},
}

// run sends n requests through a gateway on one fake of the vendor, with
// the faults, and reconciles the in-memory ledger against the vendor's
// report (its admin API, or for Gemini its billing export) over the day.
// It returns the result and how many generations the fake billed hidden
// tokens for, from its journal.
func run(t *testing.T, c vendorCase, n int, faults ...fakeprovider.Fault) (*reconcile.Result, int) {
	model := fakeprovider.Model{
		Answers:         []fakeprovider.Answer{{Text: "Paris", Tokens: 1}},
		ReasoningTokens: fakeprovider.Uniform(20, 200),
		CacheReadTokens: fakeprovider.Uniform(0, 8),
		TTFTms:          fakeprovider.Uniform(100, 300),
	}
	g, err := gatewaytest.New(gatewaytest.Config{
		Fakes: map[string]fakeprovider.Config{"p": {Vendor: c.vendor, Seed: 7, AdminKey: "admin-key", Faults: faults,
			Models: map[string]fakeprovider.Model{c.model: model}}},
		Gateway: gateway.Config{Routes: map[string][]string{"chat": {"p/" + c.model}}},
	})
	require.NoError(t, err)
	t.Cleanup(g.Close)
	start := time.Now()
	for i := range n {
		req := &gateway.Request{Tenant: gatewaytest.DefaultTenant, Route: "chat",
			LLM: llm.Request{Messages: []llm.Message{{Role: "user", Content: fmt.Sprintf("What is the capital of France? (%d)", i)}}}}
		_, err := g.Complete(context.Background(), req)
		require.NoError(t, err)
	}
	fake := g.Fakes["p"]
	// Forty days, the traffic's on the 36th: the reports come in pages of
	// 31 days at most, so the bill is on the second page.
	day := start.UTC().Truncate(reconcile.Day)
	from, to := day.Add(-35*reconcile.Day), day.Add(5*reconcile.Day)
	var src reconcile.Source
	switch c.vendor {
	case fakeprovider.OpenAI:
		src = reconcile.NewOpenAI(fake.URL, "admin-key", fake.Client())
	case fakeprovider.Anthropic:
		src = reconcile.NewAnthropic(fake.URL, "admin-key", fake.Client())
	case fakeprovider.Gemini:
		src = reconcile.CloudBillingExport{R: bytes.NewReader(fake.BillingExport(from, to)), Name: "export.jsonl"}
	}
	billed, err := src.Bill(context.Background(), from, to)
	require.NoError(t, err)
	metered, err := reconcile.FromLedger(context.Background(), g.Store, "p", from, to)
	require.NoError(t, err)
	hidden := 0
	for _, e := range fake.Journal() {
		if strings.Contains(strings.Join(e.Faults, ","), string(fakeprovider.FaultUnreportedUsage)) {
			hidden++
		}
	}
	return reconcile.Compare("p", string(c.vendor), from, to, billed, metered), hidden
}

// TestCleanLedgerMatchesEachVendorsReport: with nothing hidden, each
// vendor's report (OpenAI's and Anthropic's admin APIs, Gemini's billing
// export) and the ledger agree on every token and to the last digit of
// cost, and the check passes at a zero limit.
func TestCleanLedgerMatchesEachVendorsReport(t *testing.T) {
	for _, c := range vendorCases {
		t.Run(string(c.vendor), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				r, _ := run(t, c, 30)
				require.Len(t, r.Rows, 1, "one day, one model")
				row := r.Rows[0]
				assert.Equal(t, c.model, row.Model)
				assert.True(t, row.Tokens(), "%+v", row)
				assert.Positive(t, row.Vendor.Output)
				assert.True(t, row.Vendor.Cost.IsPositive())
				assert.True(t, r.Drift.IsZero(), "drift %s", r.Drift)
				assert.True(t, r.Check(reconcile.Limit{USD: &decimal.Zero}), "%v", r.Failures)
			})
		})
	}
}

// TestReconcileFindsExactlyTheInjectedDrift: the fake bills 1,000 reasoning
// tokens the response never reports on about a third of the requests; the
// reconciliation finds exactly that many output tokens and their cost at
// the model's output rate (hand-computed) as drift, and the check fails.
func TestReconcileFindsExactlyTheInjectedDrift(t *testing.T) {
	for _, c := range vendorCases {
		t.Run(string(c.vendor), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				r, hidden := run(t, c, 30, fakeprovider.Fault{Kind: fakeprovider.FaultUnreportedUsage, Tokens: 1000, Probability: 0.3})
				require.Positive(t, hidden)
				require.Less(t, hidden, 30)
				want := decimal.NewFromInt(int64(hidden * 1000)).Mul(decimal.RequireFromString(c.output)).Shift(-6)
				require.Len(t, r.Rows, 1)
				row := r.Rows[0]
				assert.Equal(t, int64(hidden*1000), row.Vendor.Output-row.Ledger.Output, "hidden output tokens")
				assert.Equal(t, row.Vendor.Input, row.Ledger.Input)
				assert.Equal(t, row.Vendor.CacheRead, row.Ledger.CacheRead)
				assert.Equal(t, want.String(), r.Drift.String(), "drift: %d hidden generations", hidden)
				assert.True(t, r.Estimated.IsZero())

				assert.False(t, r.Check(reconcile.Limit{USD: new(decimal.RequireFromString("0.001"))}))
				assert.Len(t, r.Failures, 2, "the day's row and the total: %v", r.Failures)
				assert.True(t, r.Check(reconcile.Limit{USD: &want}), "a limit at the drift holds: %v", r.Failures)
			})
		})
	}
}

func TestParseLimit(t *testing.T) {
	l, err := reconcile.ParseLimit("0.01,0.5%")
	require.NoError(t, err)
	assert.Equal(t, "0.01", l.USD.String())
	assert.InDelta(t, 0.5, *l.Percent, 1e-12)
	l, err = reconcile.ParseLimit("$2")
	require.NoError(t, err)
	assert.Equal(t, "2", l.USD.String())
	assert.Nil(t, l.Percent)
	for _, bad := range []string{"", "-1", "x", "1%,2%", "1,2", "-3%", "NaN%"} {
		_, err := reconcile.ParseLimit(bad)
		assert.Error(t, err, "%q", bad)
	}
}

// TestLimitNeedsBothWhenBothAreSet: $0.05 of drift on $10 billed is over
// $0.01 but under 1%: with both limits it holds, with either alone not
// both ways.
func TestLimitNeedsBothWhenBothAreSet(t *testing.T) {
	day := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	billed := reconcile.Bill{{Day: day, Model: "m"}: {Output: 1000, Cost: decimal.RequireFromString("10")}}
	metered := reconcile.LedgerBill{Bill: reconcile.Bill{{Day: day, Model: "m"}: {Output: 995, Cost: decimal.RequireFromString("9.95")}}}
	r := reconcile.Compare("p", "openai", day, day.Add(reconcile.Day), billed, metered)
	check := func(s string) bool {
		l, err := reconcile.ParseLimit(s)
		require.NoError(t, err)
		return r.Check(l)
	}
	assert.False(t, check("0.01"))
	assert.True(t, check("1%"))
	assert.False(t, check("0.1%"))
	assert.True(t, check("0.01,1%"))
	assert.False(t, check("0.01,0.1%"))
}

// TestVendorSnapshotNamesMatchTheLedgersModels: OpenAI reports
// gpt-4o-mini-2024-07-18 for requests the ledger has as gpt-4o-mini.
func TestVendorSnapshotNamesMatchTheLedgersModels(t *testing.T) {
	day := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	billed := reconcile.Bill{{Day: day, Model: "gpt-4o-mini-2024-07-18"}: {Input: 10, Cost: decimal.RequireFromString("1")},
		{Day: day, Model: "gpt-4o"}: {Input: 5, Cost: decimal.RequireFromString("2")}}
	metered := reconcile.LedgerBill{Bill: reconcile.Bill{{Day: day, Model: "gpt-4o-mini"}: {Input: 10, Cost: decimal.RequireFromString("1")}}}
	r := reconcile.Compare("p", "openai", day, day.Add(reconcile.Day), billed, metered)
	require.Len(t, r.Rows, 2)
	assert.Equal(t, "gpt-4o", r.Rows[0].Model, "not a snapshot of gpt-4o-mini")
	assert.Equal(t, "gpt-4o-mini", r.Rows[1].Model)
	assert.True(t, r.Rows[1].Drift.IsZero())
	assert.Equal(t, "2", r.Drift.String())
}
