package brownout_test

// The end-to-end harness: what brownout guarantees, checked in CI against a
// real Postgres in a container.
//
//   - Every library scenario, run in virtual time through the real gateway
//     core against fake vendors, with the ledger in Postgres, meets its
//     expectations: breaker transitions in their windows, success rates,
//     latency, cost; and no generation is metered twice.
//   - Where a scenario says so, the ledger equals the fakes' invoices to the
//     last digit.
//   - The shipped eval suites pass with 95% confidence on the shipped model
//     profiles, judged by distributions, not exact strings.
//   - The cost regression check catches the thinking tax: a model cheaper
//     per token that costs over twice as much per request fails at 2x, and
//     a swap for an equal-cost model passes.
//
// A failure prints the scenario's seed and the command that replays it.

import (
	"context"
	"fmt"
	"testing"
	"testing/synctest"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/require"

	"github.com/brownout-dev/brownout/evals"
	"github.com/brownout-dev/brownout/gateway/ledger"
	"github.com/brownout-dev/brownout/internal/pgtest"
	"github.com/brownout-dev/brownout/scenarios"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func TestScenarioLibraryOnPostgres(t *testing.T) {
	for _, name := range scenarios.Library() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			sc, err := scenarios.LoadLibrary(name)
			require.NoError(t, err)
			url := pgtest.New(t, pgtest.Template{Name: "ledger", Setup: ledger.Migrate})
			var rep *scenarios.Report
			synctest.Test(t, func(t *testing.T) {
				pool, err := pgxpool.New(context.Background(), url)
				require.NoError(t, err)
				defer pool.Close()
				rep, err = scenarios.Execute(context.Background(), sc, scenarios.Options{Store: ledger.NewPostgresStore(pool)})
				require.NoError(t, err)
			})
			replay := fmt.Sprintf("seed %d; replay it with: brownout replay %s --seed %d --speed 60", sc.Seed, name, sc.Seed)
			for _, c := range rep.Checks {
				if !c.Pass {
					t.Errorf("%s: %s: want %s; observed %s (%s)", name, c.Name, c.Want, c.Observed, replay)
				}
			}
			if rep.Reconciliation.DoubleBilled != 0 {
				t.Errorf("%s: %d generations metered twice (%s)", name, rep.Reconciliation.DoubleBilled, replay)
			}
			// Reported spend equals the invoices to the digit; what the
			// gateway estimated (usage that never came back) is apart.
			if rc := rep.Reconciliation; sc.Expect.LedgerEqualsInvoices && rc.Invoiced != rc.Reported {
				t.Errorf("%s: ledger $%s reported (and $%s estimated), invoices $%s (%s)", name, rc.Reported, rc.Estimated, rc.Invoiced, replay)
			}
		})
	}
}

func TestEvalSuitesOnFakes(t *testing.T) {
	for _, file := range []string{"evals/suites/capitals.yaml", "evals/suites/json-extraction.yaml"} {
		suite, err := evals.LoadSuite(file)
		require.NoError(t, err)
		fakes, err := evals.NewFakes(suite.Models, suite.Seed)
		require.NoError(t, err)
		for _, model := range suite.Models {
			r, err := evals.Run(context.Background(), suite, model, fakes.Target(), evals.RunOptions{})
			require.NoError(t, err)
			// With 95% confidence, at least 90% of samples pass.
			evals.RequirePassRate(t, r, 0.90, 0.95)
		}
		require.NoError(t, fakes.Close())
	}
}

func TestCostRegressionCheck(t *testing.T) {
	suite, err := evals.LoadSuite("evals/suites/capitals.yaml")
	require.NoError(t, err)
	compare := func(baseline, candidate string, maxRatio int64) *evals.Check {
		fakes, err := evals.NewFakes([]string{baseline, candidate}, suite.Seed)
		require.NoError(t, err)
		defer fakes.Close()
		base, err := evals.Run(context.Background(), suite, baseline, fakes.Target(), evals.RunOptions{})
		require.NoError(t, err)
		cand, err := evals.Run(context.Background(), suite, candidate, fakes.Target(), evals.RunOptions{})
		require.NoError(t, err)
		cmp, err := evals.Compare(base, cand, suite.Seed)
		require.NoError(t, err)
		t.Log(cmp.Verdict)
		return evals.RegressionCheck(cmp, decimal.NewFromInt(maxRatio), 0.9, evals.DefaultMaxPassRateDrop)
	}
	thinkingTax := compare("anthropic/claude-haiku-4-5", "gemini/gemini-2.5-flash", 2)
	require.False(t, thinkingTax.Passed(), "the thinking tax passed a 2x cost check")
	equal := compare("anthropic/claude-haiku-4-5", "anthropic/claude-haiku-4-5", 1)
	require.True(t, equal.Passed(), "an equal-cost swap failed: %v", equal.Failures)
}
