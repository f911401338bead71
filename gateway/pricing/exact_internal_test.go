package pricing

import (
	"maps"
	"math"
	"slices"
	"testing"

	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brownout-dev/brownout/gateway/llm"
)

// costScale is the ledger's (ledger.CostScale, which imports this package).
const costScale = 12

// worstOf is the reference: the largest WorstCase of prices, by decimal
// multiplication, rounded up once.
func worstOf(prices []Price, input, maxOutput int64, places int32) decimal.Decimal {
	worst := prices[0].WorstCase(input, maxOutput)
	for _, p := range prices[1:] {
		worst = decimal.Max(worst, p.WorstCase(input, maxOutput))
	}
	return worst.RoundUp(places)
}

// fuzzRate is coef × 10^exp as a Rate, exp in [-43, 3].
func fuzzRate(coef int64, exp int8) Rate {
	return Rate{Decimal: decimal.New(coef, int32(exp)%24-20), set: true}
}

// FuzzWorstAgreesWithWorstCase: Worst.Cost, integers where they fit, is
// the largest WorstCase of its prices by decimal multiplication, rounded
// up, to the digit, for rates of any number of digits, long-context tiers,
// cache and reasoning rates and counts of tokens up to the int64 range.
func FuzzWorstAgreesWithWorstCase(f *testing.F) {
	f.Add(int64(15), int8(18), int64(60), int8(18), int64(0), int8(0), int64(250), int8(18), int64(1000), int8(19), int64(128_000), int64(48), int64(4096), uint8(costScale))
	f.Add(int64(1234567890123456789), int8(1), int64(3), int8(20), int64(7), int8(2), int64(5), int8(4), int64(9), int8(20), int64(40), int64(40), int64(1), uint8(costScale))
	f.Add(int64(1), int8(20), int64(1), int8(20), int64(1), int8(20), int64(1), int8(20), int64(1), int8(20), int64(0), int64(1), int64(1), uint8(2))
	f.Add(int64(3), int8(20), int64(15), int8(20), int64(6), int8(20), int64(5), int8(20), int64(225), int8(19), int64(200_000), int64(300_000), int64(1000), uint8(costScale))
	f.Add(int64(7), int8(0), int64(9), int8(0), int64(1), int8(0), int64(1), int8(0), int64(1), int8(0), int64(0), int64(math.MaxInt64), int64(math.MaxInt64), uint8(costScale))
	// At the tier's boundary (input == above: not yet long), and a sum
	// between the int64 and the uint64 range (found by the fuzzer against
	// mutants).
	f.Add(int64(1234567890123456789), int8(1), int64(3), int8(20), int64(7), int8(2), int64(58), int8(42), int64(3), int8(20), int64(40), int64(40), int64(1), uint8(12))
	f.Add(int64(1234567890123456789), int8(38), int64(-31), int8(20), int64(0), int8(-73), int64(0), int8(1), int64(9), int8(-65), int64(66), int64(-8), int64(-94), uint8(12))
	f.Fuzz(func(t *testing.T, in int64, inExp int8, out int64, outExp int8, cache int64, cacheExp int8,
		longIn int64, longInExp int8, longOut int64, longOutExp int8, above, input, maxOutput int64, places uint8) {
		abs := func(v int64) int64 { return max(v, -v, 0) }
		plain := Price{Input: fuzzRate(abs(in), inExp), Output: fuzzRate(abs(out), outExp)}
		cached := fuzzRate(abs(cache), cacheExp)
		long := Price{Input: fuzzRate(abs(longIn), longInExp), Output: fuzzRate(abs(longOut), longOutExp), CacheWrite1h: &cached}
		tiered := Price{Input: plain.Output, Output: plain.Input, CacheRead: &cached, Reasoning: &long.Input,
			Long: &long, LongAbove: abs(above)}
		input, maxOutput, scale := abs(input), abs(maxOutput), int32(places%20)
		for _, prices := range [][]Price{{plain}, {tiered}, {plain, tiered}, {tiered, plain, long}} {
			want := worstOf(prices, input, maxOutput, scale)
			got := NewWorst(prices...).Cost(input, maxOutput, scale)
			require.True(t, want.Equal(got), "%d prices, input %d, max output %d, %d places: %s, want %s",
				len(prices), input, maxOutput, scale, got, want)
			require.LessOrEqual(t, -got.Exponent(), scale, "rounded to at most %d places: %s", scale, got)
		}
	})
}

// TestWorstTakesTheDefaultTable: every shipped price, a route of all of
// them, and counts of tokens a request has are worked out in integers (so
// the decimal path is a fallback, not the path), to WorstCase's value.
func TestWorstTakesTheDefaultTable(t *testing.T) {
	table := Default()
	var all []Price
	for _, name := range slices.Sorted(maps.Keys(table.Models)) {
		p := table.Models[name]
		all = append(all, p)
		for _, n := range [][2]int64{{0, 1}, {48, 64}, {48, 4096}, {1_000_000, 8192}, {300_000, 128_000}} {
			got, ok := NewWorst(p).fast(n[0], n[1], costScale)
			require.True(t, ok, "%s, input %d, max output %d: not in integers", name, n[0], n[1])
			want := worstOf([]Price{p}, n[0], n[1], costScale)
			assert.True(t, want.Equal(got), "%s, input %d, max output %d: %s, want %s", name, n[0], n[1], got, want)
		}
	}
	got, ok := NewWorst(all...).fast(200_001, 4096, costScale)
	require.True(t, ok, "the whole table as one route")
	assert.True(t, worstOf(all, 200_001, 4096, costScale).Equal(got))
}

// TestWorstByHand: the dearest of two prices, each at its own tier, and
// the round up, worked by hand.
func TestWorstByHand(t *testing.T) {
	long := Price{Input: MustRate("6"), Output: MustRate("22.50")}
	a := Price{Input: MustRate("3"), Output: MustRate("15"), Long: &long, LongAbove: 200_000}
	b := Price{Input: MustRate("0.15"), Output: MustRate("0.60"), Reasoning: ptr(MustRate("30"))}
	w := NewWorst(a, b)
	// 48 × 3 + 64 × 15 = 1104 against 48 × 0.15 + 64 × 30 = 1927.2; per million.
	assert.Equal(t, "0.0019272", w.Cost(48, 64, costScale).String())
	// 200001 × 6 + 10 × 22.50 = 1200231 against 200001 × 0.15 + 10 × 30 = 30300.15.
	assert.Equal(t, "1.200231", w.Cost(200_001, 10, costScale).String())
	// 7 × 0.15 + 1 × 30 = 31.05 against 7 × 3 + 15 = 36; per million 0.000036, to 5 places up.
	assert.Equal(t, "0.00004", w.Cost(7, 1, 5).String())
	assert.True(t, Worst{}.Cost(48, 64, costScale).IsZero(), "no price, no cost")
	assert.True(t, w.Cost(48, -1000, costScale).IsZero(), "a negative count (no client's: the handler refuses it) reserves nothing, never less")
}

func ptr[T any](v T) *T { return &v }

// BenchmarkWorst is a budgeted request's worst case on a route of two
// targets, as the gateway worked it out before Worst (WorstCase of each
// price by decimal multiplication, the largest rounded up) and with it.
//
//	go test -run '^$' -bench Worst -benchmem ./gateway/pricing/
func BenchmarkWorst(b *testing.B) {
	table := Default()
	prices := []Price{table.Models["gpt-4o-mini"], table.Models["claude-sonnet-4-5"]}
	b.Run("WorstCase", func(b *testing.B) {
		for range b.N {
			_ = worstOf(prices, 48, 4096, costScale)
		}
	})
	b.Run("Worst", func(b *testing.B) {
		w := NewWorst(prices...)
		for range b.N {
			_ = w.Cost(48, 4096, costScale)
		}
	})
}

// FuzzFixedAgreesWithCost: Fixed.Cost, integers where they fit, is the
// price's Cost by decimal multiplication, rounded as decimal.Round rounds,
// to the digit and to the exponent, for every kind of token, both tiers,
// and counts up to the int64 range.
func FuzzFixedAgreesWithCost(f *testing.F) {
	f.Add(int64(15), int8(18), int64(60), int8(18), int64(75), int8(17), int64(0), int64(20), int64(1), int64(0), int64(0), int64(0), int64(0), uint8(costScale))
	f.Add(int64(3), int8(20), int64(15), int8(20), int64(30), int8(19), int64(200_000), int64(150_000), int64(800), int64(1200), int64(40_000), int64(20_000), int64(10_000), uint8(costScale))
	f.Add(int64(1234567890123456789), int8(1), int64(3), int8(20), int64(7), int8(2), int64(40), int64(7), int64(1), int64(0), int64(0), int64(0), int64(0), uint8(costScale))
	// A half, rounded away from zero, and a prompt in the long tier (found
	// by the fuzzer against mutants).
	f.Add(int64(5), int8(20), int64(-7), int8(20), int64(5), int8(20), int64(143), int64(1), int64(1), int64(0), int64(47), int64(95), int64(0), uint8(6))
	f.Add(int64(-60), int8(81), int64(92), int8(12), int64(-9), int8(127), int64(199964), int64(149945), int64(794), int64(1121), int64(40000), int64(20090), int64(9923), uint8(18))
	f.Add(int64(7), int8(0), int64(9), int8(0), int64(1), int8(0), int64(0), int64(math.MaxInt64), int64(math.MaxInt64), int64(1), int64(1), int64(1), int64(1), uint8(costScale))
	f.Fuzz(func(t *testing.T, in int64, inExp int8, out int64, outExp int8, cache int64, cacheExp int8, above,
		input, output, reasoning, cacheRead, cacheWrite, cacheWrite1h int64, places uint8) {
		abs := func(v int64) int64 { return max(v, -v, 0) }
		cached := fuzzRate(abs(cache), cacheExp)
		plain := Price{Input: fuzzRate(abs(in), inExp), Output: fuzzRate(abs(out), outExp)}
		long := Price{Input: plain.Output, Output: cached, CacheRead: &plain.Input}
		tiered := Price{Input: plain.Input, Output: plain.Output, Reasoning: &cached, CacheWrite: &cached, CacheWrite1h: &plain.Output,
			Long: &long, LongAbove: abs(above)}
		u := llm.Usage{Input: abs(input), Output: abs(output), Reasoning: abs(reasoning), CacheRead: abs(cacheRead), CacheWrite: abs(cacheWrite), CacheWrite1h: abs(cacheWrite1h)}
		scale := int32(places % 20)
		for _, p := range []Price{plain, tiered} {
			want := p.Cost(u).Round(scale)
			got := NewFixed(p).Cost(u, scale)
			require.True(t, want.Equal(got), "usage %+v, %d places: %s, want %s", u, scale, got, want)
			require.Equal(t, want.Exponent(), got.Exponent(), "usage %+v, %d places: %s, want %s", u, scale, got, want)
		}
	})
}

// TestFixedTakesTheDefaultTable: every shipped price, for the usage an
// attempt reports, is worked out in integers, to Cost's value rounded.
func TestFixedTakesTheDefaultTable(t *testing.T) {
	table := Default()
	for _, name := range slices.Sorted(maps.Keys(table.Models)) {
		p := table.Models[name]
		for _, u := range []llm.Usage{{Input: 20, Output: 1}, {Input: 1200, Output: 300, Reasoning: 900}, {Input: 250_000, Output: 4096, CacheRead: 30_000, CacheWrite: 2000, CacheWrite1h: 1000}} {
			got, ok := NewFixed(p).fast(u, costScale)
			require.True(t, ok, "%s, usage %+v: not in integers", name, u)
			want := p.Cost(u).Round(costScale)
			assert.True(t, want.Equal(got), "%s, usage %+v: %s, want %s", name, u, got, want)
		}
	}
}

// BenchmarkFixed is an attempt's cost as the gateway worked it out before
// Fixed (the table's Cost by decimal multiplication, then Round) and with
// it.
//
//	go test -run '^$' -bench 'Worst|Fixed' -benchmem ./gateway/pricing/
func BenchmarkFixed(b *testing.B) {
	table := Default()
	u := llm.Usage{Input: 20, Output: 1}
	b.Run("Cost", func(b *testing.B) {
		for range b.N {
			c, _ := table.Cost("openai", "gpt-4o-mini", u)
			_ = c.Round(costScale)
		}
	})
	b.Run("Fixed", func(b *testing.B) {
		f := NewFixed(table.Models["gpt-4o-mini"])
		for range b.N {
			_ = f.Cost(u, costScale)
		}
	})
}
