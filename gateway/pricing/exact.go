package pricing

import (
	"math"
	"math/bits"

	"github.com/shopspring/decimal"

	"github.com/brownout-dev/brownout/gateway/llm"
)

// The gateway prices every attempt, and reserves every budgeted request's
// worst case, on its request path. Fixed and Worst do that arithmetic in
// integers: a price's rates, worked out ahead as whole multiples of one
// power of ten (coefficients), times counts of tokens, summed, then
// rounded once, exactly as the decimal path (Cost, WorstCase) and its
// rounding would. Where the integers could overflow, they take the
// decimal path itself.

// coefficients are rates as whole multiples of 10^exp, exp the least of
// their exponents (and at most 0); ok is false when one does not fit an
// int64 or is negative.
func coefficients(rates []decimal.Decimal) (coefs []int64, exp int32, ok bool) {
	for _, r := range rates {
		exp = min(exp, r.Exponent())
	}
	coefs = make([]int64, len(rates))
	for i, r := range rates {
		c := r.Shift(-exp) // whole: exp is the least exponent
		if c.Sign() < 0 || !c.BigInt().IsInt64() {
			return nil, 0, false
		}
		coefs[i] = c.IntPart()
	}
	return coefs, exp, true
}

// dot is the sum of coefs[i] × n[i], for counts not negative; ok is false
// on overflow of an int64.
func dot(coefs []int64, n []int64) (_ uint64, ok bool) {
	var sum uint64
	for i, c := range coefs {
		if n[i] < 0 {
			return 0, false
		}
		hi, lo := bits.Mul64(uint64(c), uint64(n[i]))
		var carry uint64
		sum, carry = bits.Add64(sum, lo, 0)
		if hi != 0 || carry != 0 || sum > math.MaxInt64 {
			return 0, false
		}
	}
	return sum, true
}

// rounded is v × 10^exp at places decimal places, as a decimal of exponent
// -places: rounded up (a reservation) or half away from zero
// (decimal.Round, a cost) when it has more; ok is false on overflow.
func rounded(v uint64, exp, places int32, up bool) (_ decimal.Decimal, ok bool) {
	if exp >= -places {
		for range exp + places {
			hi, lo := bits.Mul64(v, 10)
			if hi != 0 || lo > math.MaxInt64 {
				return decimal.Decimal{}, false
			}
			v = lo
		}
		return decimal.New(int64(v), -places), true
	}
	shift := -places - exp
	if shift > 19 {
		return decimal.Decimal{}, false
	}
	unit := uint64(1)
	for range shift {
		unit *= 10
	}
	q, r := v/unit, v%unit
	if up && r != 0 || !up && r >= unit-r {
		q++
	}
	return decimal.New(int64(q), -places), true
}

// Fixed is one price worked out ahead for Cost in integers. The zero Fixed
// is the zero price.
type Fixed struct {
	price Price
	coefs [2][]int64 // by tier, the rates of input, output, reasoning, cache read, cache write and 1-hour cache write tokens; nil: the integer path is off
	exp   int32
}

// NewFixed works out p.
func NewFixed(p Price) Fixed {
	f := Fixed{price: p}
	var rates []decimal.Decimal
	for _, q := range [2]Price{p, p.At(math.MaxInt64)} {
		rates = append(rates, q.Input.Decimal, q.Output.Decimal, q.ReasoningRate(), q.CacheReadRate(), q.CacheWriteRate(), q.CacheWrite1hRate())
	}
	coefs, exp, ok := coefficients(rates)
	if ok {
		f.coefs, f.exp = [2][]int64{coefs[:6], coefs[6:]}, exp
	}
	return f
}

// Cost is the price's Cost(u), rounded to places decimal places as
// decimal.Round does.
func (f Fixed) Cost(u llm.Usage, places int32) decimal.Decimal {
	if c, ok := f.fast(u, places); ok {
		return c
	}
	return f.price.Cost(u).Round(places)
}

// fast is Cost in integers; ok is false where they could overflow.
func (f Fixed) fast(u llm.Usage, places int32) (_ decimal.Decimal, ok bool) {
	if f.coefs[0] == nil {
		return decimal.Decimal{}, false
	}
	tier := 0
	if f.price.Long != nil && u.Prompt() > f.price.LongAbove {
		tier = 1
	}
	v, ok := dot(f.coefs[tier], []int64{u.Input, u.Output, u.Reasoning, u.CacheRead, u.CacheWrite, u.CacheWrite1h})
	if !ok {
		return decimal.Decimal{}, false
	}
	return rounded(v, f.exp-6, places, false) // per million, as Cost
}
