package evals_test

import (
	"bytes"
	"context"
	"html"
	"testing"

	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brownout-dev/brownout/evals"
	"github.com/brownout-dev/brownout/internal/browsertest"
)

// TestComparisonHTML: a comparison as a page, checked without a browser:
// four charts with a series per model, the verdict and each failure of the
// check, and the figures of both models.
func TestComparisonHTML(t *testing.T) {
	suite := franceSuite(t, 100)
	run := func(name string, wrong float64, cost string, seed uint64) *evals.Result {
		r, err := evals.Run(context.Background(), suite, name, newStub(wrong, 0, cost, seed), evals.RunOptions{})
		require.NoError(t, err)
		return r
	}
	base, cand := run("cheap", 0.02, "0.001", 4), run("dear", 0.02, "0.003", 5)
	cmp, err := evals.Compare(base, cand, 1)
	require.NoError(t, err)
	check := evals.RegressionCheck(cmp, decimal.NewFromInt(2), 0, evals.DefaultMaxPassRateDrop)
	require.False(t, check.Passed())

	var page bytes.Buffer
	require.NoError(t, evals.WriteComparisonHTML(&page, cmp, check))
	charts, err := browsertest.Parse(page.Bytes())
	require.NoError(t, err)
	assert.Equal(t, map[string]int{evals.ChartCostECDF: 2, evals.ChartPassRate: 2, evals.ChartCostPerPass: 2, evals.ChartReasoning: 2}, charts)
	text := html.UnescapeString(page.String())
	assert.Contains(t, text, cmp.Verdict)
	for _, f := range check.Failures {
		assert.Contains(t, text, f)
	}
	assert.Contains(t, page.String(), ">FAIL</span>")
	for _, r := range []*evals.Result{base, cand} {
		assert.Contains(t, page.String(), "$"+r.Stats.CostPerRequest.Value.StringFixed(9))
	}
}
