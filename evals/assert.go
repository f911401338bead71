package evals

import (
	"fmt"
	"strings"
	"testing"

	"github.com/shopspring/decimal"
)

// RequirePassRate fails t unless the lower bound of the result's pass rate
// interval at level is at least min: RequirePassRate(t, r, 0.90, 0.95)
// means "with 95% confidence, at least 90% pass". The failure prints the
// distribution, not just a number.
func RequirePassRate(t testing.TB, r *Result, min, level float64) {
	t.Helper()
	iv := Wilson(r.Stats.Passed, r.Stats.N, level)
	if iv.Lo >= min {
		return
	}
	t.Fatalf("evals: %s on %s: pass rate %.3f, %.0f%% interval [%.3f, %.3f]; want its lower bound >= %.3f\n%s",
		r.Suite, r.Model, iv.Value, 100*level, iv.Lo, iv.Hi, min, Distribution(r))
}

// RequireCostRatioBelow fails t unless the upper bound of the comparison's
// cost ratio is below limit ("1.5"): the candidate is shown to cost less
// than limit times the baseline.
func RequireCostRatioBelow(t testing.TB, c *Comparison, limit string) {
	t.Helper()
	if c.CostRatio.Hi.LessThan(decimal.RequireFromString(limit)) {
		return
	}
	t.Fatalf("evals: %s\nwant the cost ratio's upper bound below %s", c.Verdict, limit)
}

// Distribution renders a result's per-case pass counts, score histogram and
// cost figures, as failures and `brownout eval` print them.
func Distribution(r *Result) string {
	var b strings.Builder
	cases := byCase(r.Samples)
	var names []string
	for n := range cases {
		names = append(names, n)
	}
	sortStrings(names)
	fmt.Fprintf(&b, "  %-24s %8s %8s %8s\n", "case", "passed", "errors", "mean")
	for _, n := range names {
		var pass, errs int
		var sum float64
		for _, s := range cases[n] {
			if s.Pass {
				pass++
			}
			if s.Error != "" {
				errs++
			}
			sum += s.Score
		}
		fmt.Fprintf(&b, "  %-24s %4d/%-3d %8d %8.3f\n", n, pass, len(cases[n]), errs, sum/float64(len(cases[n])))
	}
	b.WriteString("  scores: ")
	b.WriteString(bars(r.Stats.ScoreHistogram))
	fmt.Fprintf(&b, "  [%.1f .. %.1f]\n", r.Stats.ScoreHistogram.Lo, r.Stats.ScoreHistogram.Hi)
	return b.String()
}
