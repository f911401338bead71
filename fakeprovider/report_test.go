package fakeprovider_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brownout-dev/brownout/fakeprovider"
)

// billSome sends the thinking model three requests and returns the fake's
// invoice totals.
func billSome(t *testing.T, s *fakeprovider.Server) fakeprovider.InvoiceTotals {
	for range 3 {
		resp, _, err := do(s.Client(), rawRequest(t, s, models[s.Vendor()][1], false))
		require.NoError(t, err)
		require.Equal(t, 200, resp.StatusCode)
	}
	return s.Invoice().Totals
}

// report GETs a report path with the query and the admin key, and decodes
// the JSON answer with numbers kept exact.
func report(t *testing.T, s *fakeprovider.Server, path string, q url.Values, key string) (int, map[string]any) {
	req, err := http.NewRequest("GET", s.URL+path+"?"+q.Encode(), nil)
	require.NoError(t, err)
	if s.Vendor() == fakeprovider.OpenAI {
		req.Header.Set("Authorization", "Bearer "+key)
	} else {
		req.Header.Set("x-api-key", key)
	}
	resp, body, err := do(s.Client(), req)
	require.NoError(t, err)
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v map[string]any
	require.NoError(t, dec.Decode(&v), "%s", body)
	return resp.StatusCode, v
}

func results(t *testing.T, v map[string]any) []map[string]any {
	var out []map[string]any
	for _, b := range v["data"].([]any) {
		for _, r := range b.(map[string]any)["results"].([]any) {
			out = append(out, r.(map[string]any))
		}
	}
	return out
}

func num(t *testing.T, v any) decimal.Decimal {
	d, err := decimal.NewFromString(string(v.(json.Number)))
	require.NoError(t, err)
	return d
}

// TestOpenAIReportsCarryTheInvoice: the Usage API (grouped by model) and
// the Costs API (by line item) in OpenAI's wire format add up to the
// fake's invoice: input with cached input, output with reasoning, and the
// exact cost.
func TestOpenAIReportsCarryTheInvoice(t *testing.T) {
	cfg := vendorConfig(fakeprovider.OpenAI)
	cfg.AdminKey = "sk-admin"
	s := startFake(t, cfg)
	inv := billSome(t, s)
	start := strconv.FormatInt(time.Now().Add(-time.Hour).Unix(), 10)

	code, v := report(t, s, "/v1/organization/usage/completions", url.Values{"start_time": {start}, "group_by": {"model"}}, "sk-admin")
	require.Equal(t, 200, code, "%v", v)
	assert.Equal(t, "page", v["object"])
	rs := results(t, v)
	require.Len(t, rs, 1)
	r := rs[0]
	assert.Equal(t, "organization.usage.completions.result", r["object"])
	assert.Equal(t, "o4-mini", r["model"])
	assert.Equal(t, strconv.FormatInt(inv.InputTokens+inv.CacheReadTokens, 10), string(r["input_tokens"].(json.Number)))
	assert.Equal(t, strconv.FormatInt(inv.CacheReadTokens, 10), string(r["input_cached_tokens"].(json.Number)))
	assert.Equal(t, strconv.FormatInt(inv.OutputTokens+inv.ReasoningTokens, 10), string(r["output_tokens"].(json.Number)))
	assert.Equal(t, "3", string(r["num_model_requests"].(json.Number)))

	code, v = report(t, s, "/v1/organization/costs", url.Values{"start_time": {start}, "group_by": {"line_item"}}, "sk-admin")
	require.Equal(t, 200, code, "%v", v)
	sum := decimal.Zero
	var items []string
	for _, r := range results(t, v) {
		amount := r["amount"].(map[string]any)
		assert.Equal(t, "usd", amount["currency"])
		sum = sum.Add(num(t, amount["value"]))
		items = append(items, r["line_item"].(string))
	}
	assert.Equal(t, []string{"o4-mini, input", "o4-mini, output"}, items)
	assert.Equal(t, inv.Cost.String(), sum.String())

	// The admin key, the vendor's checks of the query, and its pages.
	code, _ = report(t, s, "/v1/organization/costs", url.Values{"start_time": {start}}, "sk-not-admin")
	assert.Equal(t, 401, code)
	for _, bad := range []url.Values{{}, {"start_time": {"yesterday"}}, {"start_time": {start}, "bucket_width": {"1h"}},
		{"start_time": {start}, "limit": {"0"}}, {"start_time": {start}, "page": {"!"}}} {
		code, v := report(t, s, "/v1/organization/costs", bad, "sk-admin")
		assert.Equal(t, 400, code, "%v: %v", bad, v)
	}
	// From midnight two days ago to now: three daily buckets, in pages of two.
	threeDays := strconv.FormatInt(time.Now().UTC().Truncate(24*time.Hour).Add(-48*time.Hour).Unix(), 10)
	code, v = report(t, s, "/v1/organization/usage/completions", url.Values{"start_time": {threeDays}, "limit": {"2"}}, "sk-admin")
	require.Equal(t, 200, code)
	assert.Len(t, v["data"], 2)
	assert.Equal(t, true, v["has_more"])
	code, v = report(t, s, "/v1/organization/usage/completions", url.Values{"start_time": {threeDays}, "limit": {"2"}, "page": {v["next_page"].(string)}}, "sk-admin")
	require.Equal(t, 200, code)
	assert.Len(t, v["data"], 1)
	assert.Equal(t, false, v["has_more"])
	assert.Nil(t, v["next_page"])
}

// TestAnthropicReportsCarryTheInvoice: the usage report and the cost report
// (cents, as decimal strings, by description) in Anthropic's wire format
// add up to the fake's invoice.
func TestAnthropicReportsCarryTheInvoice(t *testing.T) {
	s := startFake(t, vendorConfig(fakeprovider.Anthropic))
	inv := billSome(t, s)
	start := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)

	code, v := report(t, s, "/v1/organizations/usage_report/messages", url.Values{"starting_at": {start}, "group_by[]": {"model"}}, "sk-ant-admin")
	require.Equal(t, 200, code, "%v", v)
	rs := results(t, v)
	require.Len(t, rs, 1)
	r := rs[0]
	assert.Equal(t, "claude-sonnet-4-5", r["model"])
	assert.Equal(t, strconv.FormatInt(inv.InputTokens, 10), string(r["uncached_input_tokens"].(json.Number)))
	assert.Equal(t, strconv.FormatInt(inv.CacheReadTokens, 10), string(r["cache_read_input_tokens"].(json.Number)))
	assert.Equal(t, strconv.FormatInt(inv.OutputTokens+inv.ReasoningTokens, 10), string(r["output_tokens"].(json.Number)))
	assert.Contains(t, r, "cache_creation")

	code, v = report(t, s, "/v1/organizations/cost_report", url.Values{"starting_at": {start}, "group_by[]": {"description"}}, "sk-ant-admin")
	require.Equal(t, 200, code, "%v", v)
	cents := decimal.Zero
	for _, r := range results(t, v) {
		assert.Equal(t, "USD", r["currency"])
		assert.Equal(t, "claude-sonnet-4-5", r["model"])
		assert.Contains(t, r["description"], "claude-sonnet-4-5 Usage - ")
		amount, err := decimal.NewFromString(r["amount"].(string))
		require.NoError(t, err)
		cents = cents.Add(amount)
	}
	assert.Equal(t, inv.Cost.String(), cents.Shift(-2).String())

	code, _ = report(t, s, "/v1/organizations/cost_report", url.Values{"starting_at": {start}}, "")
	assert.Equal(t, 401, code)
	code, _ = report(t, s, "/v1/organizations/cost_report", url.Values{"starting_at": {"2026-13-01"}}, "k")
	assert.Equal(t, 400, code)
}

// TestGeminiBillingExportCarriesTheInvoice: the Cloud Billing export is one
// JSON object a line, per day, model and SKU, and adds up to the invoice.
func TestGeminiBillingExportCarriesTheInvoice(t *testing.T) {
	s := startFake(t, vendorConfig(fakeprovider.Gemini))
	inv := billSome(t, s)
	resp, body, err := do(s.Client(), must(http.NewRequest("GET", s.URL+"/_fake/billing_export", nil)))
	require.NoError(t, err)
	require.Equal(t, 200, resp.StatusCode, "%s", body)
	cost, tokens := decimal.Zero, int64(0)
	skus := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(body))
	for sc.Scan() {
		dec := json.NewDecoder(strings.NewReader(sc.Text()))
		dec.UseNumber()
		var row struct {
			SKU struct {
				Description string `json:"description"`
			} `json:"sku"`
			Usage struct {
				Amount json.Number `json:"amount"`
			} `json:"usage"`
			Cost     json.Number `json:"cost"`
			Currency string      `json:"currency"`
		}
		require.NoError(t, dec.Decode(&row))
		assert.Equal(t, "USD", row.Currency)
		skus[row.SKU.Description] = true
		cost = cost.Add(num(t, row.Cost))
		n, err := row.Usage.Amount.Int64()
		require.NoError(t, err)
		tokens += n
	}
	assert.Contains(t, skus, "Gemini 2.5 Flash Output Tokens")
	assert.Contains(t, skus, "Gemini 2.5 Flash Input Tokens")
	assert.Equal(t, inv.Cost.String(), cost.String())
	assert.Equal(t, inv.InputTokens+inv.CacheReadTokens+inv.OutputTokens+inv.ReasoningTokens, tokens)

	resp, _, err = do(s.Client(), must(http.NewRequest("GET", s.URL+"/_fake/billing_export?from=soon", nil)))
	require.NoError(t, err)
	assert.Equal(t, 400, resp.StatusCode)
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
