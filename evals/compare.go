package evals

import (
	"fmt"
	"math/rand/v2"
	"slices"

	"github.com/shopspring/decimal"
)

// Comparison is a candidate model against a baseline on the same suite.
type Comparison struct {
	Suite     string  `json:"suite"`
	Baseline  *Result `json:"baseline"`
	Candidate *Result `json:"candidate"`
	// PassRateDiff is candidate minus baseline, with a bootstrap interval
	// resampled within each case (paired by case).
	PassRateDiff Interval `json:"pass_rate_diff"`
	// CostRatio is candidate over baseline mean cost per request, with a
	// bootstrap interval resampled within each case.
	CostRatio MoneyInterval `json:"cost_ratio"`
	Verdict   string        `json:"verdict"`
}

// Compare compares two runs of the same suite; seed seeds the bootstrap.
func Compare(base, cand *Result, seed uint64) (*Comparison, error) {
	if base.Suite != cand.Suite || len(base.Samples) != len(cand.Samples) {
		return nil, fmt.Errorf("evals: compare: runs of different suites or sizes (%s/%d, %s/%d)",
			base.Suite, len(base.Samples), cand.Suite, len(cand.Samples))
	}
	rng := rand.New(rand.NewPCG(seed, 0x636f6d70617265))
	bCases, cCases := byCase(base.Samples), byCase(cand.Samples)
	names := make([]string, 0, len(bCases))
	for name := range bCases {
		names = append(names, name)
	}
	slices.Sort(names)

	diffs := make([]float64, Bootstraps)
	ratios := make([]decimal.Decimal, Bootstraps)
	for b := range Bootstraps {
		var bPass, cPass, n int
		bCost, cCost := decimal.Zero, decimal.Zero
		for _, name := range names {
			bs, cs := bCases[name], cCases[name]
			for range bs {
				x, y := bs[rng.IntN(len(bs))], cs[rng.IntN(len(cs))]
				n++
				if x.Pass {
					bPass++
				}
				if y.Pass {
					cPass++
				}
				bCost, cCost = bCost.Add(x.Cost), cCost.Add(y.Cost)
			}
		}
		diffs[b] = float64(cPass-bPass) / float64(n)
		ratios[b] = ratio(cCost, bCost)
	}
	slices.Sort(diffs)
	slices.SortFunc(ratios, func(a, b decimal.Decimal) int { return a.Cmp(b) })
	lo, hi := (1-Confidence)/2, 1-(1-Confidence)/2
	c := &Comparison{Suite: base.Suite, Baseline: base, Candidate: cand,
		PassRateDiff: Interval{Value: cand.Stats.PassRate.Value - base.Stats.PassRate.Value, Lo: Quantile(diffs, lo), Hi: Quantile(diffs, hi)},
		CostRatio: MoneyInterval{Value: ratio(cand.Stats.CostPerRequest.Value, base.Stats.CostPerRequest.Value),
			Lo: decimalQuantile(ratios, lo), Hi: decimalQuantile(ratios, hi)},
	}
	c.Verdict = fmt.Sprintf("%s costs %sx %s per request (95%% CI %s-%s), $%s against $%s per passing answer; pass rate %+.1f points (95%% CI %+.1f to %+.1f)",
		cand.Model, c.CostRatio.Value.StringFixed(2), base.Model, c.CostRatio.Lo.StringFixed(2), c.CostRatio.Hi.StringFixed(2),
		cand.Stats.CostPerPass.Value.StringFixed(9), base.Stats.CostPerPass.Value.StringFixed(9),
		100*c.PassRateDiff.Value, 100*c.PassRateDiff.Lo, 100*c.PassRateDiff.Hi)
	return c, nil
}

func ratio(a, b decimal.Decimal) decimal.Decimal {
	if b.IsZero() {
		return decimal.Zero
	}
	return a.DivRound(b, 6)
}

func byCase(samples []Sample) map[string][]Sample {
	m := map[string][]Sample{}
	for _, s := range samples {
		m[s.Case] = append(m[s.Case], s)
	}
	return m
}

// Check is the cost regression check: it fails when the lower bound of the
// candidate/baseline cost ratio exceeds MaxCostRatio (the candidate is
// dearer beyond doubt), when the candidate's pass rate may be worse than
// the baseline's by more than MaxPassRateDrop (the lower bound of the
// paired difference's interval is below -MaxPassRateDrop: a
// non-inferiority check), or when the lower bound of the candidate's pass
// rate is below MinPassRate (it is not shown good enough).
type Check struct {
	MaxCostRatio    decimal.Decimal `json:"max_cost_ratio"`
	MaxPassRateDrop float64         `json:"max_pass_rate_drop"`
	MinPassRate     float64         `json:"min_pass_rate"`
	Failures        []string        `json:"failures"`
}

// DefaultMaxPassRateDrop is the non-inferiority margin of a cost check:
// a cheaper model that may be worse by more than 2 points is a regression.
const DefaultMaxPassRateDrop = 0.02

// Passed reports whether the check found nothing.
func (c *Check) Passed() bool { return len(c.Failures) == 0 }

// RegressionCheck applies the thresholds to a comparison: the most the
// candidate may cost per request relative to the baseline, the most its
// pass rate may drop below the baseline's (DefaultMaxPassRateDrop), and the
// least pass rate it must show.
func RegressionCheck(cmp *Comparison, maxRatio decimal.Decimal, minPass, maxDrop float64) *Check {
	ch := &Check{MaxCostRatio: maxRatio, MaxPassRateDrop: maxDrop, MinPassRate: minPass, Failures: []string{}}
	if cmp.CostRatio.Lo.GreaterThan(maxRatio) {
		ch.Failures = append(ch.Failures, fmt.Sprintf("cost: %s costs at least %sx %s per request (lower bound of the 95%% interval), above the allowed %sx",
			cmp.Candidate.Model, cmp.CostRatio.Lo.StringFixed(2), cmp.Baseline.Model, maxRatio))
	}
	if d := cmp.PassRateDiff; d.Lo < -maxDrop {
		ch.Failures = append(ch.Failures, fmt.Sprintf("quality: %s may pass up to %.1f points less than %s (95%% CI of the difference %+.1f to %+.1f), more than the allowed %.1f",
			cmp.Candidate.Model, -100*d.Lo, cmp.Baseline.Model, 100*d.Lo, 100*d.Hi, 100*maxDrop))
	}
	if pr := cmp.Candidate.Stats.PassRate; pr.Lo < minPass {
		ch.Failures = append(ch.Failures, fmt.Sprintf("quality: %s passes %.1f%% (95%% CI %.1f%%-%.1f%%); its lower bound is below the required %.1f%%",
			cmp.Candidate.Model, 100*pr.Value, 100*pr.Lo, 100*pr.Hi, 100*minPass))
	}
	return ch
}
