package fakeprovider_test

import (
	"net/http"
	"testing"

	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brownout-dev/brownout/fakeprovider"
)

// TestInvoicesBillTheVendorsUsageFields: each fake prices a call from its
// own list and its vendor's raw usage fields. The expected costs are worked
// by hand from the rates typed below (USD per million tokens).
func TestInvoicesBillTheVendorsUsageFields(t *testing.T) {
	d := decimal.RequireFromString
	cached := fakeprovider.Model{Answers: []fakeprovider.Answer{{Text: "Paris", Tokens: 1}}, ReasoningTokens: fakeprovider.Fixed(24),
		CacheReadTokens: fakeprovider.Fixed(4)}
	tiered := cached
	tiered.Price = &fakeprovider.ListPrice{Input: d("2"), Output: d("8"), CacheRead: d("0.2"),
		LongAbove: 5, Long: &fakeprovider.ListPrice{Input: d("4"), Output: d("16"), CacheRead: d("0.4")}}
	unpriced := plainModel
	tests := []struct {
		vendor fakeprovider.Vendor
		model  string
		m      fakeprovider.Model
		input  int64 // the prompt's tokens billed at the input rate (cache reads apart)
		want   string
		why    string
	}{
		{fakeprovider.OpenAI, "o4-mini", cached, 6, "0.0001177", "prompt_tokens 10 with 4 cached: 6*1.10 + 4*0.275 + completion_tokens (1+24)*4.40 = 6.6+1.1+110"},
		{fakeprovider.Gemini, "gemini-2.5-flash", cached, 6, "0.00006442", "promptTokenCount 10, 4 cached: 6*0.30 + 4*0.03 + candidates 1 and thoughts 24 at 2.50 = 1.8+0.12+62.5"},
		{fakeprovider.Anthropic, "claude-haiku-4-5", plainModel, 10, "0.000015", "input_tokens 10*1.00 + output_tokens 1*5.00"},
		{fakeprovider.OpenAI, "priced-here", tiered, 6, "0.0004256", "a 10-token prompt is over the tier's 5: 6*4 + 4*0.4 + 25*16 = 24+1.6+400"},
		{fakeprovider.Gemini, "sold-nowhere", unpriced, 10, "0", "no price: Unpriced, at zero"},
	}
	for _, tt := range tests {
		t.Run(string(tt.vendor)+"/"+tt.model, func(t *testing.T) {
			cfg := fakeprovider.Config{Vendor: tt.vendor, Seed: 7, APIKey: testKey, Models: map[string]fakeprovider.Model{tt.model: tt.m}}
			s := startFake(t, cfg)
			resp, body, err := do(s.Client(), rawRequest(t, s, tt.model, false))
			require.NoError(t, err)
			require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
			inv := s.Invoice()
			require.Len(t, inv.Lines, 1)
			l := inv.Lines[0]
			assert.Equal(t, tt.input, l.InputTokens, "input tokens")
			assert.Equal(t, tt.want, l.Cost.String(), tt.why)
			assert.Equal(t, tt.model == "sold-nowhere", l.Unpriced)
		})
	}
}

func TestListPriceValidation(t *testing.T) {
	d := decimal.RequireFromString
	for _, tt := range []struct {
		price fakeprovider.ListPrice
		want  string
	}{
		{fakeprovider.ListPrice{Input: d("-1")}, "models.m.price: input: a price cannot be negative"},
		{fakeprovider.ListPrice{Long: &fakeprovider.ListPrice{}}, "long_above: must be positive"},
		{fakeprovider.ListPrice{LongAbove: 1, Long: &fakeprovider.ListPrice{Output: d("-2")}}, "long.output: a price cannot be negative"},
	} {
		p := tt.price
		cfg := fakeprovider.Config{Vendor: fakeprovider.OpenAI, Models: map[string]fakeprovider.Model{"m": {Price: &p}}}
		assert.ErrorContains(t, cfg.Validate(), tt.want)
	}
}
