package evals

import (
	"math"
	"math/rand/v2"
	"slices"

	"github.com/shopspring/decimal"
	"gonum.org/v1/gonum/stat"
	"gonum.org/v1/gonum/stat/distuv"
)

// Interval is an estimate with a confidence interval.
type Interval struct {
	Value float64 `json:"value"`
	Lo    float64 `json:"lo"`
	Hi    float64 `json:"hi"`
}

// MoneyInterval is a cost estimate with a confidence interval, exact.
type MoneyInterval struct {
	Value decimal.Decimal `json:"value"`
	Lo    decimal.Decimal `json:"lo"`
	Hi    decimal.Decimal `json:"hi"`
}

// Confidence is the level of every interval evals reports.
const Confidence = 0.95

// Bootstraps is the number of bootstrap resamples.
const Bootstraps = 2000

// z returns the standard normal quantile for a two-sided interval at level.
func z(level float64) float64 { return distuv.UnitNormal.Quantile(1 - (1-level)/2) }

// Wilson returns the Wilson score interval of k successes in n trials at
// the given level (Wilson 1927; what gonum lacks, written here). For 17 of
// 20 at 95% it is [0.640, 0.948].
func Wilson(k, n int, level float64) Interval {
	if n == 0 {
		return Interval{Value: 0, Lo: 0, Hi: 1}
	}
	p := float64(k) / float64(n)
	zz := z(level)
	z2 := zz * zz
	nf := float64(n)
	center := (p + z2/(2*nf)) / (1 + z2/nf)
	half := zz / (1 + z2/nf) * math.Sqrt(p*(1-p)/nf+z2/(4*nf*nf))
	return Interval{Value: p, Lo: math.Max(0, center-half), Hi: math.Min(1, center+half)}
}

// BootstrapMean returns the mean of xs with a percentile bootstrap interval
// from resamples drawn with r.
func BootstrapMean(xs []float64, level float64, r *rand.Rand) Interval {
	if len(xs) == 0 {
		return Interval{}
	}
	means := make([]float64, Bootstraps)
	buf := make([]float64, len(xs))
	for b := range means {
		for i := range buf {
			buf[i] = xs[r.IntN(len(xs))]
		}
		means[b] = stat.Mean(buf, nil)
	}
	slices.Sort(means)
	return Interval{Value: stat.Mean(xs, nil),
		Lo: stat.Quantile((1-level)/2, stat.Empirical, means, nil),
		Hi: stat.Quantile(1-(1-level)/2, stat.Empirical, means, nil)}
}

// Quantile returns the p-quantile of xs (empirical, as gonum defines it).
func Quantile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return stat.Quantile(p, stat.Empirical, s, nil)
}

// decimalQuantile returns the p-quantile of sorted exact values, by the same
// empirical rule (the smallest value with at least p of the data at or below it).
func decimalQuantile(sorted []decimal.Decimal, p float64) decimal.Decimal {
	if len(sorted) == 0 {
		return decimal.Zero
	}
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func meanDecimal(xs []decimal.Decimal) decimal.Decimal {
	if len(xs) == 0 {
		return decimal.Zero
	}
	sum := decimal.Zero
	for _, x := range xs {
		sum = sum.Add(x)
	}
	return sum.DivRound(decimal.NewFromInt(int64(len(xs))), 15)
}

// bootstrapMoney is BootstrapMean for exact amounts: every resampled mean
// is an exact decimal. Amounts are summed as integers of 10^-12 dollars
// (the ledger's scale) when they fit, which is exact and much faster than
// decimal additions.
func bootstrapMoney(xs []decimal.Decimal, level float64, r *rand.Rand) MoneyInterval {
	if len(xs) == 0 {
		return MoneyInterval{}
	}
	means := make([]decimal.Decimal, Bootstraps)
	n := decimal.NewFromInt(int64(len(xs)))
	if units, ok := toUnits(xs); ok {
		for b := range means {
			var sum int64
			for range units {
				sum += units[r.IntN(len(units))]
			}
			means[b] = decimal.New(sum, -12).DivRound(n, 15)
		}
	} else {
		buf := make([]decimal.Decimal, len(xs))
		for b := range means {
			for i := range buf {
				buf[i] = xs[r.IntN(len(xs))]
			}
			means[b] = meanDecimal(buf)
		}
	}
	slices.SortFunc(means, func(a, b decimal.Decimal) int { return a.Cmp(b) })
	return MoneyInterval{Value: meanDecimal(xs), Lo: decimalQuantile(means, (1-level)/2), Hi: decimalQuantile(means, 1-(1-level)/2)}
}

// bootstrapCostPerPass is the total cost of samples over their passes, with
// a percentile bootstrap interval over resampled samples; a replicate with
// no pass has no cost per pass and is left out. Costs are summed as
// integers of 10^-12 USD (the ledger's scale) when they fit, as decimals
// otherwise.
func bootstrapCostPerPass(samples []Sample, level float64, r *rand.Rand) MoneyInterval {
	perPass := func(total decimal.Decimal, passes int) decimal.Decimal {
		return total.DivRound(decimal.NewFromInt(int64(passes)), 12)
	}
	costs := make([]decimal.Decimal, len(samples))
	total, passes := decimal.Zero, 0
	for i, s := range samples {
		costs[i] = s.Cost
		total = total.Add(s.Cost)
		if s.Pass {
			passes++
		}
	}
	if passes == 0 {
		return MoneyInterval{}
	}
	units, exact := toUnits(costs)
	reps := make([]decimal.Decimal, 0, Bootstraps)
	for range Bootstraps {
		var sum int64
		t, p := decimal.Zero, 0
		for range samples {
			i := r.IntN(len(samples))
			if exact {
				sum += units[i]
			} else {
				t = t.Add(costs[i])
			}
			if samples[i].Pass {
				p++
			}
		}
		if exact {
			t = decimal.New(sum, -12)
		}
		if p > 0 {
			reps = append(reps, perPass(t, p))
		}
	}
	slices.SortFunc(reps, func(a, b decimal.Decimal) int { return a.Cmp(b) })
	return MoneyInterval{Value: perPass(total, passes), Lo: decimalQuantile(reps, (1-level)/2), Hi: decimalQuantile(reps, 1-(1-level)/2)}
}

// Histogram counts values into equal bins over [lo, hi].
type Histogram struct {
	Lo     float64 `json:"lo"`
	Hi     float64 `json:"hi"`
	Counts []int   `json:"counts"`
}

func histogram(xs []float64, lo, hi float64, bins int) Histogram {
	h := Histogram{Lo: lo, Hi: hi, Counts: make([]int, bins)}
	if hi <= lo {
		h.Counts[0] = len(xs)
		return h
	}
	for _, x := range xs {
		i := int((x - lo) / (hi - lo) * float64(bins))
		h.Counts[max(0, min(i, bins-1))]++
	}
	return h
}

// toUnits converts amounts to integers of 10^-12, if every amount has at
// most 12 decimal places and any sum of len(xs) of them fits an int64.
func toUnits(xs []decimal.Decimal) ([]int64, bool) {
	limit := decimal.NewFromInt(math.MaxInt64 / int64(len(xs)))
	out := make([]int64, len(xs))
	for i, x := range xs {
		u := x.Shift(12)
		if !u.IsInteger() || u.IsNegative() || u.GreaterThan(limit) {
			return nil, false
		}
		out[i] = u.IntPart()
	}
	return out, true
}
