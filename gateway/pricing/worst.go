package pricing

import (
	"math"
	"math/bits"

	"github.com/shopspring/decimal"
)

// Worst is the worst case of the dearest of some prices (a route's
// targets): Cost is the largest of their WorstCase, rounded up once. A
// budget reserves it before every request, so it is worked out ahead: each
// price's two worst rates per tier become whole multiples of one power of
// ten, and Cost is integer arithmetic on them, exact, with no decimal
// multiplication. Where the integers could overflow (a rate with more
// digits than an int64 holds, a count of tokens near the int64 range),
// Cost falls back to WorstCase itself. The zero Worst has no price: its
// Cost is zero.
type Worst struct {
	prices []Price
	tiers  []worstTiers // by price; nil: the integer path is off
	exp    int32        // every rate in tiers is its coefficient × 10^exp
}

// worstTiers are one price's worst rates as coefficients of 10^Worst.exp:
// [0] below its long-context tier, [1] in it (when long).
type worstTiers struct {
	in, out [2]int64
	long    bool
	above   int64
}

// NewWorst works out the worst case of prices.
func NewWorst(prices ...Price) Worst {
	w := Worst{prices: prices}
	rates := make([][2][2]decimal.Decimal, len(prices)) // price, tier, in or out
	exp := int32(0)
	for i, p := range prices {
		for tier, q := range [2]Price{p, p.At(math.MaxInt64)} {
			rates[i][tier] = [2]decimal.Decimal{worstInputRate(q), worstOutputRate(q)}
			for _, r := range rates[i][tier] {
				exp = min(exp, r.Exponent())
			}
		}
	}
	tiers := make([]worstTiers, len(prices))
	for i, p := range prices {
		tiers[i].long, tiers[i].above = p.Long != nil, p.LongAbove
		for tier := range 2 {
			for k, r := range rates[i][tier] {
				c := r.Shift(-exp) // whole: exp is the least exponent
				if c.Sign() < 0 || !c.BigInt().IsInt64() {
					return w // Cost takes WorstCase's path
				}
				if k == 0 {
					tiers[i].in[tier] = c.IntPart()
				} else {
					tiers[i].out[tier] = c.IntPart()
				}
			}
		}
	}
	w.tiers, w.exp = tiers, exp
	return w
}

// Cost is the largest WorstCase(input, maxOutput) of w's prices, rounded
// up to places decimal places.
func (w Worst) Cost(input, maxOutput int64, places int32) decimal.Decimal {
	if c, ok := w.fast(input, maxOutput, places); ok {
		return c
	}
	worst := decimal.Zero
	for i, p := range w.prices {
		if c := p.WorstCase(input, maxOutput); i == 0 || c.GreaterThan(worst) {
			worst = c
		}
	}
	return worst.RoundUp(places)
}

// fast is Cost in integers; ok is false where they could overflow.
func (w Worst) fast(input, maxOutput int64, places int32) (_ decimal.Decimal, ok bool) {
	if w.tiers == nil || input < 0 || maxOutput < 0 {
		return decimal.Decimal{}, false
	}
	var worst uint64
	for _, t := range w.tiers {
		tier := 0
		if t.long && input > t.above {
			tier = 1
		}
		in, ok1 := mul(t.in[tier], input)
		out, ok2 := mul(t.out[tier], maxOutput)
		sum, carry := bits.Add64(in, out, 0)
		if !ok1 || !ok2 || carry != 0 || sum > math.MaxInt64 {
			return decimal.Decimal{}, false
		}
		worst = max(worst, sum)
	}
	// worst × 10^(exp-6): per million tokens, as WorstCase.
	exp := w.exp - 6
	if exp >= -places {
		return decimal.New(int64(worst), exp), true
	}
	shift := -places - exp
	if shift > 19 {
		return decimal.Decimal{}, false
	}
	unit := uint64(1)
	for range shift {
		unit *= 10
	}
	q, r := worst/unit, worst%unit
	if r != 0 {
		q++ // up: a reservation never falls short of the worst case
	}
	return decimal.New(int64(q), -places), true
}

// mul is a × b for non-negative a and b; ok is false on overflow.
func mul(a, b int64) (uint64, bool) {
	hi, lo := bits.Mul64(uint64(a), uint64(b))
	return lo, hi == 0
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
