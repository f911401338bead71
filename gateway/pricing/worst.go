package pricing

import (
	"math"

	"github.com/shopspring/decimal"
)

// Worst is the worst case of the dearest of some prices (a route's
// targets): Cost is the largest of their WorstCase, rounded up once, in
// integers where they fit (see coefficients). The zero Worst has no price:
// its Cost is zero.
type Worst struct {
	prices []Price
	tiers  []worstTiers // by price; nil: the integer path is off
	exp    int32        // every rate in tiers is its coefficient × 10^exp
}

// worstTiers are one price's worst rates, input and output, as
// coefficients of 10^Worst.exp: [0:2] below its long-context tier, [2:4]
// in it (when long).
type worstTiers struct {
	coefs []int64
	long  bool
	above int64
}

// NewWorst works out the worst case of prices.
func NewWorst(prices ...Price) Worst {
	var rates []decimal.Decimal
	for _, p := range prices {
		for _, q := range [2]Price{p, p.At(math.MaxInt64)} {
			rates = append(rates, worstInputRate(q), worstOutputRate(q))
		}
	}
	coefs, exp, ok := coefficients(rates)
	if !ok {
		return Worst{prices: prices} // Cost takes WorstCase's path
	}
	tiers := make([]worstTiers, len(prices))
	for i, p := range prices {
		tiers[i] = worstTiers{coefs: coefs[4*i : 4*i+4], long: p.Long != nil, above: p.LongAbove}
	}
	return Worst{prices: prices, tiers: tiers, exp: exp}
}

// Cost is the largest WorstCase(input, maxOutput) of w's prices, and
// zero at least, rounded up to places decimal places.
func (w Worst) Cost(input, maxOutput int64, places int32) decimal.Decimal {
	if c, ok := w.fast(input, maxOutput, places); ok {
		return c
	}
	worst := decimal.Zero
	for _, p := range w.prices {
		worst = decimal.Max(worst, p.WorstCase(input, maxOutput))
	}
	return worst.RoundUp(places)
}

// fast is Cost in integers; ok is false where they could overflow.
func (w Worst) fast(input, maxOutput int64, places int32) (_ decimal.Decimal, ok bool) {
	if w.tiers == nil {
		return decimal.Decimal{}, false
	}
	var worst uint64
	for _, t := range w.tiers {
		c := t.coefs[:2]
		if t.long && input > t.above {
			c = t.coefs[2:]
		}
		v, ok := dot(c, []int64{input, maxOutput})
		if !ok {
			return decimal.Decimal{}, false
		}
		worst = max(worst, v)
	}
	return rounded(worst, w.exp-6, places, true) // per million, as WorstCase
}

// worstInputRate is the dearest rate a prompt token can bill at p (input,
// cache reads and writes; the 1-hour write only where its rate is set, as
// WorstCase).
func worstInputRate(p Price) decimal.Decimal {
	in := decimal.Max(p.Input.Decimal, p.CacheWriteRate(), p.CacheReadRate())
	if p.CacheWrite1h != nil {
		in = decimal.Max(in, p.CacheWrite1h.Decimal)
	}
	return in
}

// worstOutputRate is the dearest rate a completion token can bill at p.
func worstOutputRate(p Price) decimal.Decimal {
	return decimal.Max(p.Output.Decimal, p.ReasoningRate())
}
