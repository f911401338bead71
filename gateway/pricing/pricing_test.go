package pricing_test

import (
	"errors"
	"testing"

	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brownout-dev/brownout/fakeprovider"
	"github.com/brownout-dev/brownout/gateway/llm"
	"github.com/brownout-dev/brownout/gateway/pricing"
)

// Costs computed by hand from the default table (USD per million tokens).
func TestDefaultTableCosts(t *testing.T) {
	table := pricing.Default()
	tests := []struct {
		model string
		usage llm.Usage
		want  string
		why   string
	}{
		{"claude-haiku-4-5", llm.Usage{Input: 10, Output: 4}, "0.00003", "10*1.00 + 4*5.00 = 30"},
		{"gemini-2.5-flash", llm.Usage{Input: 10, Output: 1, Reasoning: 24}, "0.0000655", "10*0.30 + 1*2.50 + 24*2.50 = 65.5"},
		{"gemini-2.5-flash", llm.Usage{Input: 10, Output: 1}, "0.0000055", "the same answer without the 24 thinking tokens"},
		{"o4-mini", llm.Usage{Input: 10, Output: 1, Reasoning: 24}, "0.000121", "10*1.10 + 25*4.40 = 121"},
		{"gpt-4o-mini", llm.Usage{Input: 10, Output: 1, CacheRead: 100}, "0.0000096", "10*0.15 + 1*0.60 + 100*0.075 = 9.6"},
		{"claude-sonnet-4-5", llm.Usage{Input: 2, CacheWrite: 1000, CacheRead: 3}, "0.0037569", "2*3 + 1000*3.75 + 3*0.30 = 3756.9"},
		{"gemini-2.5-flash-lite", llm.Usage{Input: 1, Output: 1}, "0.0000005", "0.10 + 0.40"},
		{"claude-haiku-4-5", llm.Usage{}, "0", "nothing used, nothing billed"},
	}
	for _, tt := range tests {
		t.Run(tt.model+" "+tt.why, func(t *testing.T) {
			got, err := table.Cost("anthropic", tt.model, tt.usage)
			require.NoError(t, err)
			want := decimal.RequireFromString(tt.want)
			assert.True(t, got.Equal(want), "Cost(%s, %+v) = %s; want %s", tt.model, tt.usage, got, want)
		})
	}
}

// TestThinkingTax is the project's motivating case: gemini-2.5-flash is
// cheaper per token than claude-haiku-4-5 and costs more per request once
// its reasoning tokens are billed as output.
func TestThinkingTax(t *testing.T) {
	table := pricing.Default()
	haiku, err := table.Cost("anthropic", "claude-haiku-4-5", llm.Usage{Input: 10, Output: 1})
	require.NoError(t, err)
	flash, err := table.Cost("gemini", "gemini-2.5-flash", llm.Usage{Input: 10, Output: 1, Reasoning: 24})
	require.NoError(t, err)
	ratio := flash.Div(haiku)
	assert.Equal(t, "0.0000150", haiku.StringFixed(7))
	assert.Equal(t, "4.3667", ratio.StringFixed(4), "flash costs %s per request, haiku %s", flash, haiku)
}

func TestUnpricedModelIsAnError(t *testing.T) {
	_, err := pricing.Default().Cost("openai", "gpt-99", llm.Usage{Input: 1})
	require.True(t, errors.Is(err, pricing.ErrUnpriced))
	assert.Contains(t, err.Error(), "openai/gpt-99")
}

func TestProviderSpecificPriceWins(t *testing.T) {
	table, err := pricing.Parse("p.yaml", []byte(`models:
  m: {input: 1, output: 2}
  bedrock/m: {input: 3, output: 4, reasoning: 10}
`))
	require.NoError(t, err)
	direct, _ := table.Cost("anthropic", "m", llm.Usage{Input: 1, Reasoning: 1})
	viaBedrock, _ := table.Cost("bedrock", "m", llm.Usage{Input: 1, Reasoning: 1})
	assert.Equal(t, "0.000003", direct.String(), "reasoning defaults to the output rate")
	assert.Equal(t, "0.000013", viaBedrock.String())
}

func TestYAMLRatesAreExact(t *testing.T) {
	// 0.1 and 0.075 have no exact float64; the table must not pass through one.
	table, err := pricing.Parse("p.yaml", []byte("models:\n  m: {input: 0.1, output: 0.075}\n"))
	require.NoError(t, err)
	got, err := table.Cost("x", "m", llm.Usage{Input: 3_000_000_000, Output: 7})
	require.NoError(t, err)
	assert.Equal(t, "300.000000525", got.String())
}

func TestParseErrors(t *testing.T) {
	tests := []struct{ src, want string }{
		{"models:\n  m: {input: abc, output: 1}\n", `p.yaml:2:`},
		{"models:\n  m: {input: -1, output: 1}\n", `field models.m.input: must not be negative`},
		{"models:\n  m: {output: 1}\n", `field models.m: input and output prices are required`},
		{"models:\n  m: {input: 1, output: 1, reasonng: 2}\n", `unknown field "reasonng"`},
	}
	for _, tt := range tests {
		_, err := pricing.Parse("p.yaml", []byte(tt.src))
		require.Error(t, err, tt.src)
		assert.Contains(t, err.Error(), tt.want)
	}
}

func TestParseLiteLLM(t *testing.T) {
	table, err := pricing.ParseLiteLLM("prices.json", []byte(`{
  "sample_spec": {"max_tokens": "LEGACY parameter", "input_cost_per_token": 0.0},
  "o4-mini": {"input_cost_per_token": 1.1e-06, "output_cost_per_token": 4.4e-06, "cache_read_input_token_cost": 2.75e-07, "litellm_provider": "openai"},
  "claude-haiku-4-5": {"input_cost_per_token": 1e-06, "output_cost_per_token": 5e-06, "cache_creation_input_token_cost": 1.25e-06, "cache_read_input_token_cost": 1e-07},
  "gemini/gemini-2.5-flash": {"input_cost_per_token": 3e-07, "output_cost_per_token": 2.5e-06, "output_cost_per_reasoning_token": 2.5e-06},
  "dall-e-3": {"output_cost_per_image": 0.04}
}`))
	require.NoError(t, err)
	assert.Len(t, table.Models, 3)
	got, err := table.Cost("openai", "o4-mini", llm.Usage{Input: 10, Output: 1, Reasoning: 24, CacheRead: 4})
	require.NoError(t, err)
	assert.Equal(t, "0.0001221", got.String(), "10*1.10 + 25*4.40 + 4*0.275 = 122.1")
	got, err = table.Cost("gemini", "gemini/gemini-2.5-flash", llm.Usage{Input: 10, Output: 1, Reasoning: 24})
	require.NoError(t, err)
	assert.Equal(t, "0.0000655", got.String())

	_, err = pricing.ParseLiteLLM("bad.json", []byte(`[1,2]`))
	assert.ErrorContains(t, err, "bad.json: not a LiteLLM price file")
}

func TestDefaultTableHasSourceAndDate(t *testing.T) {
	table := pricing.Default()
	assert.NotEmpty(t, table.Source)
	assert.NotEmpty(t, table.AsOf)
	for _, m := range []string{"claude-haiku-4-5", "claude-sonnet-4-5", "gemini-2.5-flash", "gemini-2.5-flash-lite", "gpt-4o-mini", "o4-mini"} {
		_, err := table.Lookup("", m)
		assert.NoError(t, err, m)
	}
}

// Worst cases computed by hand: prompt tokens at the dearest input-side
// rate, completion tokens at the dearest output-side rate.
func TestWorstCase(t *testing.T) {
	r := func(s string) *pricing.Rate { v := pricing.Rate{Decimal: decimal.RequireFromString(s)}; return &v }
	tests := []struct {
		name  string
		price pricing.Price
		in    int64
		out   int64
		want  string
	}{
		{"plain rates", pricing.Price{Input: *r("0.15"), Output: *r("0.60")}, 48, 1, "0.0000078"}, // 48*0.15 + 1*0.60 = 7.8
		{"cache write and reasoning are dearer", pricing.Price{Input: *r("1.00"), Output: *r("4.00"), Reasoning: r("8.00"),
			CacheWrite: r("1.25"), CacheRead: r("0.10")}, 1000, 500, "0.00525"}, // 1000*1.25 + 500*8 = 5250
		{"nothing asked", pricing.Price{Input: *r("3"), Output: *r("15")}, 0, 0, "0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.price.WorstCase(tc.in, tc.out)
			assert.Equal(t, tc.want, got.String(), "WorstCase(%d, %d)", tc.in, tc.out)
		})
	}
}

// TestDefaultTableAgreesWithTheFakesPriceList: the fakes bill from a price
// list of their own (typed separately from the vendors' pages), so that a
// ledger equal to their invoices means something. The two lists must agree
// on every model the gateway ships a price for, rate by rate.
func TestDefaultTableAgreesWithTheFakesPriceList(t *testing.T) {
	table, list := pricing.Default(), fakeprovider.ListPrices()
	require.NotEmpty(t, table.Models)
	agree := func(name string, p pricing.Price, f fakeprovider.ListPrice) {
		assert.Equal(t, f.Input.String(), p.Input.String(), "%s: input", name)
		assert.Equal(t, f.Output.String(), p.Output.String(), "%s: output", name)
		assert.Equal(t, f.Output.String(), p.ReasoningRate().String(), "%s: reasoning bills as output", name)
		assert.Equal(t, f.CacheRead.String(), p.CacheReadRate().String(), "%s: cache read", name)
		if !f.CacheWrite.IsZero() {
			assert.Equal(t, f.CacheWrite.String(), p.CacheWriteRate().String(), "%s: cache write", name)
		}
		if !f.CacheWrite1h.IsZero() {
			assert.Equal(t, f.CacheWrite1h.String(), p.CacheWrite1hRate().String(), "%s: 1-hour cache write", name)
		}
	}
	for name, p := range table.Models {
		f, ok := list[name]
		if !assert.True(t, ok, "%s: the gateway prices it, the fakes do not", name) {
			continue
		}
		agree(name, p, f)
		if assert.Equal(t, f.Long != nil, p.Long != nil, "%s: a long-context tier on one side only", name) && p.Long != nil {
			assert.Equal(t, int64(f.LongAbove), p.LongAbove, "%s: where the long context starts", name)
			agree(name+" (long context)", *p.Long, *f.Long)
		}
	}
}

// TestCostIsExact: per million is a shift of the decimal point, so a rate
// with more digits than a division keeps (16 after the point) still gives
// the exact cost; the gateway rounds it once, to the ledger's scale.
func TestCostIsExact(t *testing.T) {
	p := pricing.Price{Input: pricing.MustRate("0.1234567890123456789"), Output: pricing.MustRate("3")}
	got := p.Cost(llm.Usage{Input: 7, Output: 1})
	// 7 * 0.1234567890123456789 = 0.8641975230864197523; + 3 = 3.8641975230864197523; per million:
	assert.Equal(t, "0.0000038641975230864197523", got.String())
	assert.Equal(t, "0.000007938271560493827156", p.WorstCase(40, 1).String(),
		"40 * 0.1234567890123456789 = 4.938271560493827156; + 1 * 3; per million")
}

// TestPricesAsBilled: long-context tiers and 1-hour cache writes, worked
// by hand from the vendors' pages (USD per million tokens).
func TestPricesAsBilled(t *testing.T) {
	table := pricing.Default()
	tests := []struct {
		model string
		usage llm.Usage
		want  string
		why   string
	}{
		{"claude-sonnet-4-5", llm.Usage{Input: 200_000, Output: 1000}, "0.615",
			"a prompt of exactly 200k is not over the tier: 200000*3 + 1000*15 = 615000"},
		{"claude-sonnet-4-5", llm.Usage{Input: 150_000, CacheRead: 50_001, Output: 1000}, "0.9525006",
			"200,001 prompt tokens bill the whole request long: 150000*6 + 50001*0.60 + 1000*22.50 = 900000 + 30000.6 + 22500"},
		{"claude-haiku-4-5", llm.Usage{Input: 10, CacheWrite: 1000, CacheWrite1h: 1000, Output: 5}, "0.003285",
			"10*1 + 1000*1.25 (5 minutes) + 1000*2 (1 hour) + 5*5 = 3285"},
		{"claude-sonnet-4-5", llm.Usage{Input: 100_000, CacheWrite1h: 100_001, Output: 10}, "1.800237",
			"1-hour writes count in the prompt: 200,001 is long, 100000*6 + 100001*12 + 10*22.50 = 600000 + 1200012 + 225"},
		{"gemini-2.5-pro", llm.Usage{Input: 250_000, Output: 2000, Reasoning: 8000}, "0.775",
			"250000*2.50 + (2000+8000)*15 = 625000 + 150000"},
		{"gemini-2.5-pro", llm.Usage{Input: 1000, Output: 100, Reasoning: 400}, "0.00625", "1000*1.25 + 500*10"},
		{"gpt-5", llm.Usage{Input: 1000, CacheRead: 4000, Output: 100, Reasoning: 900}, "0.01175", "1000*1.25 + 4000*0.125 + 1000*10"},
		{"gpt-5-mini", llm.Usage{Input: 1000, Output: 1000}, "0.00225", "1000*0.25 + 1000*2"},
	}
	for _, tt := range tests {
		got, err := table.Cost("", tt.model, tt.usage)
		require.NoError(t, err)
		assert.Equal(t, tt.want, got.String(), "%s: %s", tt.model, tt.why)
	}
	p, err := table.Lookup("", "claude-sonnet-4-5")
	require.NoError(t, err)
	assert.Equal(t, "3.6225", p.WorstCase(300_000, 1000).String(), "the reservation of a long prompt is at the long tier: 300000*12 (1-hour write) + 1000*22.50 = 3600000 + 22500")
}

func TestParseLiteLLMTiers(t *testing.T) {
	table, err := pricing.ParseLiteLLM("prices.json", []byte(`{
  "claude-sonnet-4-5": {"input_cost_per_token": 3e-06, "output_cost_per_token": 1.5e-05,
    "input_cost_per_token_above_200k_tokens": 6e-06, "output_cost_per_token_above_200k_tokens": 2.25e-05,
    "cache_read_input_token_cost": 3e-07, "cache_read_input_token_cost_above_200k_tokens": 6e-07,
    "cache_creation_input_token_cost": 3.75e-06, "cache_creation_input_token_cost_above_200k_tokens": 7.5e-06,
    "cache_creation_input_token_cost_above_1hr": 6e-06}
}`))
	require.NoError(t, err)
	p, err := table.Lookup("anthropic", "claude-sonnet-4-5")
	require.NoError(t, err)
	assert.Equal(t, "6", p.CacheWrite1hRate().String())
	require.NotNil(t, p.Long)
	assert.Equal(t, int64(200_000), p.LongAbove)
	assert.Equal(t, "12", p.Long.CacheWrite1hRate().String(), "the long tier's 1-hour write defaults to twice its input")
	for _, u := range []llm.Usage{{Input: 10, CacheWrite: 100, CacheWrite1h: 100, Output: 5}, {Input: 150_000, CacheRead: 50_001, Output: 1000}} {
		want, err := pricing.Default().Cost("", "claude-sonnet-4-5", u)
		require.NoError(t, err)
		assert.Equal(t, want.String(), p.Cost(u).String(), "LiteLLM's rates and the shipped table agree on %+v", u)
	}
}

func TestLongContextPriceIsValidated(t *testing.T) {
	for _, tt := range []struct{ yaml, want string }{
		{"models:\n  m: {input: 1, output: 2, long: {input: 2, output: 4}}\n", "long_above: must be positive"},
		{"models:\n  m: {input: 1, output: 2, long_above: 10}\n", "long_above: is set without a long price"},
		{"models:\n  m: {input: 1, output: 2, long_above: 10, long: {input: -2, output: 4}}\n", "long.input: must not be negative"},
		{"models:\n  m: {input: 1, output: 2, cache_write_1h: -1}\n", "cache_write_1h: must not be negative"},
	} {
		_, err := pricing.Parse("p.yaml", []byte(tt.yaml))
		assert.ErrorContains(t, err, tt.want)
	}
}
