package scenarios_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brownout-dev/brownout/scenarios"
)

func TestLibraryScenariosPass(t *testing.T) {
	for _, name := range scenarios.Library() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			sc, err := scenarios.LoadLibrary(name)
			require.NoError(t, err)
			wall := time.Now()
			rep := scenarios.Run(t, sc)
			t.Logf("%s: %s of traffic in %s of wall time", name, sc.Duration, time.Since(wall).Round(time.Millisecond))
			if testing.Verbose() {
				var b bytes.Buffer
				rep.WriteText(&b)
				t.Log("\n" + b.String())
			}
			assert.True(t, rep.Passed)
		})
	}
}

// TestSameSeedSameReport: ten runs of a scenario give byte-identical JSON
// reports: the same transitions at the same virtual instants. The runs go
// side by side, each in its own bubble, so shared state between runs (a
// package-level rand, a map's order leaking into the report) shows too.
func TestSameSeedSameReport(t *testing.T) {
	sc, err := scenarios.LoadLibrary("gemini-outage")
	require.NoError(t, err)
	sc.Duration = 8 * time.Minute // long enough for the breaker to open
	reports := make([]bytes.Buffer, 10)
	t.Run("runs", func(t *testing.T) {
		for i := range reports {
			t.Run(fmt.Sprint(i), func(t *testing.T) {
				t.Parallel()
				synctest.Test(t, func(t *testing.T) {
					rep, err := scenarios.Execute(context.Background(), sc, scenarios.Options{})
					require.NoError(t, err)
					require.NoError(t, rep.WriteJSON(&reports[i]))
				})
			})
		}
	})
	require.Contains(t, reports[0].String(), `"to": "open"`)
	for i := 1; i < len(reports); i++ {
		require.Equal(t, reports[0].String(), reports[i].String(), "run %d differs from run 0", i)
	}
}

func TestParseErrorsNameFileLineAndField(t *testing.T) {
	base := "name: x\nduration: 1m\nproviders:\n  p: {vendor: openai, models: {m: {}}}\ngateway:\n  routes: {chat: [p/m]}\ntraffic: {rate: 1, route: chat}\n"
	tests := []struct{ extra, want string }{
		{"faults:\n  - {provider: q, kind: hang, at: 1m}\n", "field faults[0].provider: unknown provider \"q\""},
		{"faults:\n  - {provider: p, kind: meteor, at: 1m}\n", "unknown fault kind \"meteor\""},
		{"expect:\n  breakers: {p: [open]}\n", "field expect.breakers.p[0]: a breaker starts closed"},
		{"expect:\n  breakers: {p: [closed, open in 5m]}\n", "x.yaml:9:"},
		{"expect:\n  succes_rate: 1\n", "unknown field \"succes_rate\""},
		{"expect:\n  min_replayed_share: 2\n", "field expect.min_replayed_share: must be in [0, 1]"},
		{"expect:\n  max_billed_per_key: 0\n", "field expect.max_billed_per_key: must be at least 1"},
	}
	for _, tt := range tests {
		_, err := scenarios.Parse("x.yaml", []byte(base+tt.extra))
		require.Error(t, err, tt.extra)
		assert.Contains(t, err.Error(), tt.want)
	}
	_, err := scenarios.Parse("x.yaml", []byte("name: x\nduration: 1m\nproviders:\n  p: {vendor: openai, models: {m: {}}}\ngateway:\n  routes: {chat: [p/m]}\ntraffic: {rate: 1, route: nope}\n"))
	assert.ErrorContains(t, err, `route "nope" is not one of gateway.routes`)
}

// TestVendorReportsFindTheHiddenSpend: in hidden-reasoning, the
// reconciliation against OpenAI's own reports finds as drift exactly the
// spend the invoice-by-invoice reconciliation finds unmetered (two paths:
// the vendor's aggregated usage and cost reports, and each invoice line
// joined to its ledger row), all of it on OpenAI's o4-mini in output
// tokens, none on Anthropic.
func TestVendorReportsFindTheHiddenSpend(t *testing.T) {
	sc, err := scenarios.LoadLibrary("hidden-reasoning")
	require.NoError(t, err)
	rep := scenarios.Run(t, sc)
	require.Len(t, rep.VendorReports, 2)
	anthropic, openai := rep.VendorReports[0], rep.VendorReports[1]
	assert.Equal(t, "anthropic", anthropic.Provider)
	assert.True(t, anthropic.Drift.IsZero(), "anthropic drift %s", anthropic.Drift)
	require.Equal(t, "openai", openai.Provider)
	assert.True(t, openai.Drift.IsPositive())
	assert.Equal(t, rep.Reconciliation.Unmetered, openai.Drift.String(), "the vendor's report and the invoices agree on the hidden spend")
	require.Len(t, openai.Rows, 1)
	row := openai.Rows[0]
	assert.Equal(t, "o4-mini", row.Model)
	assert.Equal(t, row.Vendor.Input, row.Ledger.Input)
	assert.Greater(t, row.Vendor.Output, row.Ledger.Output)
	assert.Zero(t, (row.Vendor.Output-row.Ledger.Output)%2000, "hidden tokens come 2,000 a generation")
}
