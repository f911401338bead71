package gateway_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brownout-dev/brownout/fakeprovider"
	"github.com/brownout-dev/brownout/gateway/gatewaytest"
	"github.com/brownout-dev/brownout/gateway/ledger"
	"github.com/brownout-dev/brownout/gateway/llm"
)

var routesByVendor = []struct{ vendor, plain, thinking string }{
	{"anthropic", "claude", "sonnet"},
	{"gemini", "lite", "flash"},
	{"openai", "mini", "o4"},
}

func TestSDKPlainCallPerVendor(t *testing.T) {
	r := newRig(t, ledger.NewMemoryStore(), nil, nil)
	for _, v := range routesByVendor {
		t.Run(v.vendor, func(t *testing.T) {
			var raw *http.Response
			resp, err := r.client.Chat.Completions.New(context.Background(), ask(v.thinking), option.WithResponseInto(&raw),
				option.WithHeader("X-Request-ID", "plain-"+v.vendor))
			require.NoError(t, err)
			assert.Equal(t, "Paris", resp.Choices[0].Message.Content)
			assert.Equal(t, "stop", resp.Choices[0].FinishReason)
			assert.Equal(t, int64(25), resp.Usage.CompletionTokens, "completion_tokens includes the 24 reasoning tokens")
			assert.Equal(t, int64(24), resp.Usage.CompletionTokensDetails.ReasoningTokens)
			assert.Equal(t, "plain-"+v.vendor, raw.Header.Get("X-Request-ID"))

			as := r.attempts(t, "plain-"+v.vendor)
			require.Len(t, as, 1, "one upstream attempt, metered once")
			a := as[0]
			assert.Equal(t, ledger.OutcomeOK, a.Outcome)
			assert.Equal(t, v.vendor, a.Provider)
			assert.Equal(t, "acme", a.Tenant)
			assert.Equal(t, llm.Usage{Input: 10, Output: 1, Reasoning: 24}, a.Tokens)
			inv := r.fakes[v.vendor].Invoice()
			assert.Equal(t, inv.Lines[len(inv.Lines)-1].RequestID, a.ProviderReqID)
			assert.True(t, inv.Lines[len(inv.Lines)-1].Cost.Equal(a.Cost), "ledger cost %s; invoice %s", a.Cost, inv.Lines[len(inv.Lines)-1].Cost)
			assert.Equal(t, a.Cost.String(), raw.Header.Get("X-Brownout-Cost-USD"))
		})
	}
}

func TestSDKStreamedCallWithUsagePerVendor(t *testing.T) {
	r := newRig(t, ledger.NewMemoryStore(), nil, nil)
	for _, v := range routesByVendor {
		t.Run(v.vendor, func(t *testing.T) {
			params := ask("long-" + v.vendor)
			params.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
			stream := r.client.Chat.Completions.NewStreaming(context.Background(), params, option.WithHeader("X-Request-ID", "stream-"+v.vendor))
			var acc openai.ChatCompletionAccumulator
			for stream.Next() {
				acc.AddChunk(stream.Current())
			}
			require.NoError(t, stream.Err())
			assert.Equal(t, "The capital of France is Paris.", acc.Choices[0].Message.Content)
			assert.Equal(t, int64(32), acc.Usage.CompletionTokens)
			assert.Equal(t, int64(24), acc.Usage.CompletionTokensDetails.ReasoningTokens)
			as := r.attempts(t, "stream-"+v.vendor)
			require.Len(t, as, 1)
			assert.Equal(t, ledger.OutcomeOK, as[0].Outcome)
			assert.Equal(t, llm.Usage{Input: 10, Output: 8, Reasoning: 24}, as[0].Tokens)
			// 10*1.00 + (8+24)*10.00 per million.
			assert.Equal(t, "0.00033", as[0].Cost.String())
		})
	}
}

func TestSDKErrorsPerVendor(t *testing.T) {
	faults := map[string][]fakeprovider.Fault{}
	for _, v := range []string{"anthropic", "gemini", "openai"} {
		faults[v] = []fakeprovider.Fault{
			{Kind: fakeprovider.FaultServerError, Status: 503, Models: []string{map[string]string{"anthropic": "claude-sonnet-4-5", "gemini": "gemini-2.5-flash", "openai": "o4-mini"}[v]}},
			{Kind: fakeprovider.FaultRateLimit, RetryAfter: 4e9, Models: []string{map[string]string{"anthropic": "claude-haiku-4-5", "gemini": "gemini-2.5-flash-lite", "openai": "gpt-4o-mini"}[v]}},
		}
	}
	r := newRig(t, ledger.NewMemoryStore(), nil, faults)
	for _, v := range routesByVendor {
		t.Run(v.vendor, func(t *testing.T) {
			_, err := r.client.Chat.Completions.New(context.Background(), ask(v.thinking), option.WithHeader("X-Request-ID", "e503-"+v.vendor))
			var apiErr *openai.Error
			require.True(t, errors.As(err, &apiErr), "%v", err)
			assert.Equal(t, 503, apiErr.StatusCode)
			assert.Equal(t, "upstream_overloaded", apiErr.Code)
			as := r.attempts(t, "e503-"+v.vendor)
			require.Len(t, as, 3, "a 503 is retried: three attempts, three rows")
			for _, a := range as {
				assert.Equal(t, ledger.OutcomeServerError, a.Outcome)
				assert.True(t, a.Cost.IsZero())
			}

			var raw *http.Response
			_, err = r.client.Chat.Completions.New(context.Background(), ask(v.plain), option.WithResponseInto(&raw))
			require.True(t, errors.As(err, &apiErr), "%v", err)
			assert.Equal(t, 429, apiErr.StatusCode)
			assert.Equal(t, "4", raw.Header.Get("Retry-After"))
		})
	}
	_, err := r.client.Chat.Completions.New(context.Background(), ask("no-such-alias"))
	var apiErr *openai.Error
	require.True(t, errors.As(err, &apiErr))
	assert.Equal(t, 404, apiErr.StatusCode)
	assert.Equal(t, "model_not_found", apiErr.Code)

	bad := openai.NewClient(option.WithBaseURL(r.server.URL+"/v1"), option.WithAPIKey("wrong"), option.WithMaxRetries(0))
	_, err = bad.Chat.Completions.New(context.Background(), ask("claude"))
	require.True(t, errors.As(err, &apiErr))
	assert.Equal(t, 401, apiErr.StatusCode)
}

// Reasoning cost per request, computed by hand from the default prices.
func TestReasoningCostPerRequest(t *testing.T) {
	r := newRig(t, ledger.NewMemoryStore(), nil, nil)
	tests := []struct {
		route, want, why string
	}{
		{"claude", "0.000015", "claude-haiku-4-5: 10*1.00 + 1*5.00"},
		{"sonnet", "0.000405", "claude-sonnet-4-5 thinking: 10*3.00 + (1+24)*15.00"},
		{"lite", "0.0000014", "gemini-2.5-flash-lite: 10*0.10 + 1*0.40"},
		{"flash", "0.0000655", "gemini-2.5-flash thinking: 10*0.30 + (1+24)*2.50"},
		{"mini", "0.0000021", "gpt-4o-mini: 10*0.15 + 1*0.60"},
		{"o4", "0.000121", "o4-mini reasoning: 10*1.10 + (1+24)*4.40"},
	}
	for _, tt := range tests {
		t.Run(tt.why, func(t *testing.T) {
			var raw *http.Response
			_, err := r.client.Chat.Completions.New(context.Background(), ask(tt.route), option.WithResponseInto(&raw))
			require.NoError(t, err)
			got := decimal.RequireFromString(raw.Header.Get("X-Brownout-Cost-USD"))
			assert.True(t, got.Equal(decimal.RequireFromString(tt.want)), "cost = %s; want %s (%s)", got, tt.want, tt.why)
		})
	}
}

func TestStreamCutMidwayMetersPartialUsage(t *testing.T) {
	r := newRig(t, ledger.NewMemoryStore(), nil, map[string][]fakeprovider.Fault{
		"openai": {{Kind: fakeprovider.FaultTruncate, AfterEvents: 4}},
	})
	params := ask("long-openai")
	stream := r.client.Chat.Completions.NewStreaming(context.Background(), params, option.WithHeader("X-Request-ID", "cut-1"))
	var text string
	for stream.Next() {
		if len(stream.Current().Choices) > 0 {
			text += stream.Current().Choices[0].Delta.Content
		}
	}
	require.Error(t, stream.Err(), "the client is told the stream failed")
	assert.NotEmpty(t, text, "some of the answer arrived first")
	as := r.attempts(t, "cut-1")
	require.Len(t, as, 1)
	assert.Equal(t, ledger.OutcomeTransportError, as[0].Outcome)
	assert.Equal(t, int64(3), as[0].Tokens.Output, "three content deltas arrived before the cut")
	assert.True(t, as[0].Cost.IsPositive(), "the partial answer is metered")
	line := r.fakes["openai"].Invoice().Lines[0]
	assert.False(t, line.Complete)
	assert.Equal(t, line.RequestID, as[0].ProviderReqID)
}

func TestBadInputIs4xx(t *testing.T) {
	r := newRig(t, ledger.NewMemoryStore(), nil, nil)
	tests := []struct {
		name, body, key, reqID string
		status                 int
		want                   string
	}{
		{"malformed JSON", `{"model":`, tenantKey, "", 400, "could not parse"},
		{"wrong type", `{"model":"claude","messages":"hi"}`, tenantKey, "", 400, `"param":"messages"`},
		{"wrong type of max_tokens", `{"model":"claude","messages":[{"role":"user","content":"hi"}],"max_tokens":"many"}`, tenantKey, "", 400, "max_tokens"},
		{"missing model", `{"messages":[{"role":"user","content":"hi"}]}`, tenantKey, "", 400, `"param":"model"`},
		{"empty messages", `{"model":"claude","messages":[]}`, tenantKey, "", 400, `"param":"messages"`},
		{"bad role", `{"model":"claude","messages":[{"role":"wizard","content":"hi"}]}`, tenantKey, "", 400, "unsupported role"},
		{"image part", `{"model":"claude","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"x"}}]}]}`, tenantKey, "", 400, "only text parts"},
		{"temperature out of range", `{"model":"claude","messages":[{"role":"user","content":"hi"}],"temperature":7}`, tenantKey, "", 400, "temperature"},
		{"huge body", `{"model":"claude","messages":[{"role":"user","content":"` + strings.Repeat("a", 2<<20) + `"}]}`, tenantKey, "", 413, "larger than"},
		{"missing auth", `{}`, "", "", 401, "Missing API key"},
		{"wrong key", `{}`, "nope", "", 401, "Invalid API key"},
		{"bad X-Request-ID", `{}`, tenantKey, "has spaces", 400, "X-Request-ID"},
		{"over-long X-Request-ID", `{}`, tenantKey, strings.Repeat("r", 129), 400, "X-Request-ID"},
		{"trailing data", `{"model":"claude","messages":[{"role":"user","content":"hi"}]} {}`, tenantKey, "", 400, "after its JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest("POST", r.server.URL+"/v1/chat/completions", bytes.NewReader([]byte(tt.body)))
			require.NoError(t, err)
			if tt.key != "" {
				req.Header.Set("Authorization", "Bearer "+tt.key)
			}
			if tt.reqID != "" {
				req.Header.Set("X-Request-ID", tt.reqID)
			}
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			assert.Equal(t, tt.status, resp.StatusCode, "%s", body)
			assert.Contains(t, string(body), `{"error":{`)
			assert.Contains(t, string(body), tt.want)
			assert.NotContains(t, string(body), gatewaytest.ProviderKey)
		})
	}
}

// TestMetricsAgreeWithTheLedger: every series a request and its attempts
// update (requests by route, attempts by outcome, tokens by kind, cost)
// says what the ledger says, read by its own query, over four routes on
// three vendors, with reasoning tokens and failed attempts among them.
func TestMetricsAgreeWithTheLedger(t *testing.T) {
	fakes := startFakes(t, map[string][]fakeprovider.Fault{"openai": {{Kind: fakeprovider.FaultServerError, Status: 503, Count: 2}}})
	r := rigOn(t, fakes, ledger.NewMemoryStore(), nil, rigExtras{})
	routes := []string{"mini", "o4", "claude", "flash"}
	for range 3 {
		for _, route := range routes {
			resp, body := send(t, r.server.URL, tenantKey, `{"model":"`+route+`","messages":[{"role":"user","content":"What is the capital of France?"}]}`, nil)
			require.Equal(t, 200, resp.StatusCode, "%s", body)
		}
	}
	resp, err := http.Get(r.server.URL + "/metrics")
	require.NoError(t, err)
	page, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	series := map[string]float64{}
	for line := range strings.Lines(string(page)) {
		if i := strings.LastIndexByte(line, ' '); i > 0 && !strings.HasPrefix(line, "#") {
			v, err := strconv.ParseFloat(strings.TrimSpace(line[i+1:]), 64)
			require.NoError(t, err, line)
			series[line[:i]] = v
		}
	}
	for _, route := range routes {
		assert.Equal(t, 3.0, series[`brownout_requests_total{outcome="ok",route="`+route+`"}`], route)
		assert.Equal(t, 3.0, series[`brownout_request_duration_seconds_count{route="`+route+`"}`], route)
	}
	totals, err := r.store.Totals(context.Background(), ledger.Query{GroupBy: []ledger.Dimension{ledger.ByProvider, ledger.ByModel, ledger.ByOutcome}})
	require.NoError(t, err)
	outcomes := map[ledger.Outcome]bool{}
	type sums struct {
		tokens   llm.Usage
		cost     decimal.Decimal
		attempts int64
	}
	byTarget := map[[2]string]*sums{}
	for _, tot := range totals {
		outcomes[tot.Outcome] = true
		labels := `model="` + tot.Model + `",outcome="` + string(tot.Outcome) + `",provider="` + tot.Provider + `"`
		assert.Equal(t, float64(tot.Attempts), series["brownout_attempts_total{"+labels+"}"], labels)
		k := [2]string{tot.Provider, tot.Model}
		if byTarget[k] == nil {
			byTarget[k] = &sums{}
		}
		s := byTarget[k]
		s.tokens.Input += tot.Tokens.Input
		s.tokens.Output += tot.Tokens.Output
		s.tokens.Reasoning += tot.Tokens.Reasoning
		s.cost = s.cost.Add(tot.Cost)
		s.attempts += tot.Attempts
	}
	assert.True(t, outcomes[ledger.OutcomeServerError], "the failed attempts are in the ledger: %v", outcomes)
	require.Len(t, byTarget, len(routes))
	reasoning := false
	byProvider := map[string]int64{}
	for k, s := range byTarget {
		labels := `model="` + k[1] + `",provider="` + k[0] + `"`
		for kind, n := range map[string]int64{"input": s.tokens.Input, "output": s.tokens.Output, "reasoning": s.tokens.Reasoning} {
			assert.Equal(t, float64(n), series[`brownout_tokens_total{kind="`+kind+`",`+labels+"}"], "%s %s", labels, kind)
		}
		reasoning = reasoning || s.tokens.Reasoning > 0
		cost := series[`brownout_cost_usd_total{`+labels+`,usage_source="reported"}`] + series[`brownout_cost_usd_total{`+labels+`,usage_source="estimated"}`]
		assert.InDelta(t, s.cost.InexactFloat64(), cost, 1e-12, labels)
		byProvider[k[0]] += s.attempts
	}
	assert.True(t, reasoning, "a thinking model's reasoning tokens are among them")
	for provider, n := range byProvider {
		assert.Equal(t, float64(n), series[`brownout_attempt_duration_seconds_count{provider="`+provider+`"}`], provider)
	}
}

func TestOperationalEndpoints(t *testing.T) {
	r := newRig(t, ledger.NewMemoryStore(), nil, nil)
	_, err := r.client.Chat.Completions.New(context.Background(), ask("claude"))
	require.NoError(t, err)
	page, err := r.client.Models.List(context.Background())
	require.NoError(t, err)
	var ids []string
	for _, m := range page.Data {
		ids = append(ids, m.ID)
	}
	assert.Contains(t, ids, "claude")
	assert.Contains(t, ids, "o4")
	for path, want := range map[string]string{
		"/healthz": "ok",
		"/readyz":  "ready",
		"/metrics": `brownout_attempts_total{model="claude-haiku-4-5",outcome="ok",provider="anthropic"} 1`,
	} {
		resp, err := http.Get(r.server.URL + path)
		require.NoError(t, err)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		assert.Equal(t, 200, resp.StatusCode, path)
		assert.Contains(t, string(body), want, path)
	}
}
