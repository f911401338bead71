package scenarios_test

import (
	"bytes"
	"html"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brownout-dev/brownout/internal/browsertest"
	"github.com/brownout-dev/brownout/scenarios"
)

// TestReportHTML: the budget-exhaustion replay as a page, checked without
// a browser (browsertest.Parse: well-formed SVG, nothing outside the page):
// a chart per view with the series the scenario defines (one provider;
// cost: the total and the budgeted tenant), every expectation with its
// result, and the per-minute figures the charts draw from agree with the
// report's totals, which summarize computes on their own.
func TestReportHTML(t *testing.T) {
	sc, err := scenarios.LoadLibrary("budget-exhaustion")
	require.NoError(t, err)
	rep := scenarios.Run(t, sc)

	var page bytes.Buffer
	require.NoError(t, rep.WriteHTML(&page))
	charts, err := browsertest.Parse(page.Bytes())
	require.NoError(t, err)
	assert.Equal(t, map[string]int{
		scenarios.ChartBreakers: len(sc.Providers), scenarios.ChartTraffic: len(sc.Providers),
		scenarios.ChartLatency: 2, scenarios.ChartCost: 1 + len(sc.Gateway.Budgets),
	}, charts)
	for _, c := range rep.Checks {
		assert.Contains(t, page.String(), "<td>"+html.EscapeString(c.Name)+"</td>")
	}
	assert.Contains(t, page.String(), "acme budget $0.05")

	// The windows' costs add up to the total; the tenant's spend in its
	// (hour-long) budget window only grows, never above the limit, and ends
	// at the budget's spend.
	sum, last := decimal.Zero, decimal.Zero
	var maxP99 time.Duration
	for _, w := range rep.Windows {
		sum = sum.Add(decimal.RequireFromString(w.Cost))
		spent := decimal.RequireFromString(w.BudgetSpent["acme"])
		assert.True(t, spent.GreaterThanOrEqual(last), "minute %s: %s after %s", w.From, spent, last)
		assert.True(t, spent.LessThanOrEqual(decimal.RequireFromString("0.05")), "minute %s: %s", w.From, spent)
		last = spent
		assert.LessOrEqual(t, w.P50, w.P99)
		maxP99 = max(maxP99, w.P99)
	}
	assert.Equal(t, rep.Cost.Total, sum.String())
	require.Len(t, rep.Budgets, 1)
	assert.Equal(t, rep.Budgets[0].Spent, last.String())
	assert.LessOrEqual(t, maxP99, rep.Latency.Max)
	assert.Positive(t, maxP99)
}
