package evals

import (
	"math/rand/v2"
	"testing"

	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/assert"
)

// TestBootstrapMoneyIntegerPathIsExact: the integer fast path gives the
// same interval as decimal arithmetic, to the last digit.
func TestBootstrapMoneyIntegerPathIsExact(t *testing.T) {
	xs := []decimal.Decimal{decimal.RequireFromString("0.000030000001"), decimal.RequireFromString("0.0000655"), decimal.RequireFromString("0.000078123456")}
	fast := bootstrapMoney(xs, 0.95, rand.New(rand.NewPCG(3, 4)))
	// A 13th decimal place forces the decimal path; subtract it back out.
	tiny := decimal.New(1, -13)
	slow := make([]decimal.Decimal, len(xs))
	for i, x := range xs {
		slow[i] = x.Add(tiny)
	}
	ref := bootstrapMoney(slow, 0.95, rand.New(rand.NewPCG(3, 4)))
	assert.Equal(t, fast.Lo.String(), ref.Lo.Sub(tiny).String())
	assert.Equal(t, fast.Hi.String(), ref.Hi.Sub(tiny).String())
	assert.Equal(t, fast.Value.String(), meanDecimal(xs).String())
}
