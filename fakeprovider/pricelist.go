package fakeprovider

import (
	"fmt"

	"github.com/shopspring/decimal"
)

// The fakes bill as the vendors do, from their own price list and each
// vendor's raw usage fields, with arithmetic of their own. Nothing here comes
// from the gateway's price table or its normalised usage: an invoice is a
// number the gateway did not compute, so a ledger that equals it says the
// gateway prices what the vendor bills, not only that the token counts agree.

// ListPrice is what a vendor charges for one model: USD per million tokens,
// as on its pricing page. Thinking tokens bill at the output rate at every
// vendor here.
type ListPrice struct {
	Input        decimal.Decimal `yaml:"input" json:"input"`
	Output       decimal.Decimal `yaml:"output" json:"output"`
	CacheRead    decimal.Decimal `yaml:"cache_read" json:"cache_read"`
	CacheWrite   decimal.Decimal `yaml:"cache_write" json:"cache_write"`       // a 5-minute cache write (Anthropic)
	CacheWrite1h decimal.Decimal `yaml:"cache_write_1h" json:"cache_write_1h"` // a 1-hour cache write (Anthropic)
	// Long, when set, is the price of a request whose prompt (cache reads
	// and writes included) is over LongAbove tokens: the whole request is
	// billed at it (Anthropic's and Google's long-context tiers).
	Long      *ListPrice `yaml:"long" json:"long,omitempty"`
	LongAbove int        `yaml:"long_above" json:"long_above,omitempty"`
}

// at is the price of a request with a prompt of prompt tokens.
func (p ListPrice) at(prompt int) ListPrice {
	if p.Long != nil && prompt > p.LongAbove {
		return *p.Long
	}
	return p
}

// perMillion is tokens at rate USD per million tokens, exact.
func perMillion(tokens int, rate decimal.Decimal) decimal.Decimal {
	return decimal.NewFromInt(int64(tokens)).Mul(rate).Shift(-6)
}

func (p ListPrice) validate() error {
	for _, f := range []struct {
		name string
		v    decimal.Decimal
	}{{"input", p.Input}, {"output", p.Output}, {"cache_read", p.CacheRead}, {"cache_write", p.CacheWrite}, {"cache_write_1h", p.CacheWrite1h}} {
		if f.v.IsNegative() {
			return fmt.Errorf("%s: a price cannot be negative, got %s", f.name, f.v)
		}
	}
	if p.Long != nil {
		if p.Long.Long != nil {
			return fmt.Errorf("long: a long-context price has no tier of its own")
		}
		if p.LongAbove <= 0 {
			return fmt.Errorf("long_above: must be positive when long is set, got %d", p.LongAbove)
		}
		if err := p.Long.validate(); err != nil {
			return fmt.Errorf("long.%w", err)
		}
	}
	return nil
}

func usd(s string) decimal.Decimal { return decimal.RequireFromString(s) }

// ListPrices is what the fakes charge for the vendors' models, typed from
// the vendors' pricing pages (anthropic.com/pricing,
// ai.google.dev/gemini-api/docs/pricing, openai.com/api/pricing: standard
// tier, paid) as published on 2025-10-15. It is kept apart from the
// gateway's table on purpose; a test checks that the two agree on every
// model the gateway ships a price for. A Model's Price adds to it or
// overrides it for one fake.
func ListPrices() map[string]ListPrice {
	return map[string]ListPrice{
		"claude-haiku-4-5": {Input: usd("1"), Output: usd("5"), CacheRead: usd("0.1"), CacheWrite: usd("1.25"), CacheWrite1h: usd("2")},
		"claude-sonnet-4-5": {Input: usd("3"), Output: usd("15"), CacheRead: usd("0.3"), CacheWrite: usd("3.75"), CacheWrite1h: usd("6"),
			LongAbove: 200_000, Long: &ListPrice{Input: usd("6"), Output: usd("22.5"), CacheRead: usd("0.6"), CacheWrite: usd("7.5"), CacheWrite1h: usd("12")}},
		"gemini-2.5-flash":      {Input: usd("0.3"), Output: usd("2.5"), CacheRead: usd("0.03")},
		"gemini-2.5-flash-lite": {Input: usd("0.1"), Output: usd("0.4"), CacheRead: usd("0.01")},
		"gemini-2.5-pro": {Input: usd("1.25"), Output: usd("10"), CacheRead: usd("0.125"),
			LongAbove: 200_000, Long: &ListPrice{Input: usd("2.5"), Output: usd("15"), CacheRead: usd("0.25")}},
		"gpt-4o-mini": {Input: usd("0.15"), Output: usd("0.6"), CacheRead: usd("0.075")},
		"gpt-5":       {Input: usd("1.25"), Output: usd("10"), CacheRead: usd("0.125")},
		"gpt-5-mini":  {Input: usd("0.25"), Output: usd("2"), CacheRead: usd("0.025")},
		"o4-mini":     {Input: usd("1.1"), Output: usd("4.4"), CacheRead: usd("0.275")},
	}
}
