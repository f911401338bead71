package evals_test

import (
	"context"
	"math/rand/v2"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brownout-dev/brownout/evals"
	"github.com/brownout-dev/brownout/fakeprovider"
	"github.com/brownout-dev/brownout/gateway"
	"github.com/brownout-dev/brownout/gateway/gatewaytest"
	"github.com/brownout-dev/brownout/gateway/ledger"
	"github.com/brownout-dev/brownout/gateway/llm"
	"github.com/brownout-dev/brownout/gateway/pricing"
)

func TestScorers(t *testing.T) {
	re, err := evals.NewRegex(`(?i)^\s*berlin\W*$`)
	require.NoError(t, err)
	schema, err := evals.NewJSONSchema(`{"type":"object","required":["age"],"properties":{"age":{"type":"integer"}}}`)
	require.NoError(t, err)
	norm := evals.Normalize{IgnoreCase: true, TrimSpace: true, IgnorePunctuation: true}
	tests := []struct {
		s    evals.Scorer
		out  string
		want float64
	}{
		{evals.Equals{Value: "Paris"}, "Paris", 1},
		{evals.Equals{Value: "Paris"}, "paris.", 0},
		{evals.Equals{Value: "Paris", Normalize: norm}, " paris. ", 1},
		{evals.Contains{Values: []string{"Rome", "Roma"}}, "It is Roma", 1},
		{evals.Contains{Values: []string{"Rome", "Roma"}, All: true}, "It is Roma", 0},
		{evals.Contains{Values: []string{"rome"}, Normalize: evals.Normalize{IgnoreCase: true}}, "ROME", 1},
		{re, "Berlin.", 1},
		{re, "Bonn", 0},
		{evals.JSONValid{}, "```json\n{\"a\": 1}\n```", 1},
		{evals.JSONValid{}, "{a: 1}", 0},
		{schema, `{"age": 31}`, 1},
		{schema, `{"age": "31"}`, 0},
		{schema, `not json`, 0},
		{evals.EditDistance{Value: "Canberra"}, "Canberra", 1},
		{evals.EditDistance{Value: "kitten"}, "sitting", 1 - 3.0/7},
		{evals.EditDistance{Value: "Canberra", Threshold: 0.8}, "Canbera", 1},
		{evals.EditDistance{Value: "Canberra", Threshold: 0.8}, "Sydney", 0},
		{evals.Numeric{Value: 42, Tolerance: 0.5}, "The answer is 42.3", 1},
		{evals.Numeric{Value: 1000, Tolerance: 0}, "1,000", 1},
		{evals.Numeric{Value: 42, Tolerance: 0.5}, "forty-two", 0},
		{evals.Func{Label: "len", F: func(s string) float64 { return float64(len(s)) / 10 }}, "12345", 0.5},
	}
	for _, tt := range tests {
		assert.InDelta(t, tt.want, tt.s.Score(tt.out), 1e-9, "%s.Score(%q)", tt.s.Name(), tt.out)
	}
}

func TestCaseWeightsAndThreshold(t *testing.T) {
	c := evals.Case{Scorers: []evals.Weighted{{Scorer: evals.Equals{Value: "a"}, Weight: 3}, {Scorer: evals.Equals{Value: "b"}}}, Threshold: 0.75}
	assert.Equal(t, 0.75, c.Score("a"))
	assert.True(t, c.Passes(c.Score("a")))
	assert.False(t, c.Passes(c.Score("b")))
}

// Published reference values: Wilson (1927); e.g. Newcombe (1998) Table I.
func TestWilsonReferenceValues(t *testing.T) {
	tests := []struct {
		k, n   int
		lo, hi float64
	}{
		{17, 20, 0.640, 0.948},
		{81, 263, 0.2553, 0.3662},
		{15, 148, 0.0624, 0.1605},
		{0, 20, 0.0, 0.1611},
		{29, 29, 0.8830, 1.0},
	}
	for _, tt := range tests {
		iv := evals.Wilson(tt.k, tt.n, 0.95)
		assert.InDelta(t, tt.lo, iv.Lo, 0.0006, "Wilson(%d/%d).Lo", tt.k, tt.n)
		assert.InDelta(t, tt.hi, iv.Hi, 0.0006, "Wilson(%d/%d).Hi", tt.k, tt.n)
	}
}

func TestBootstrapIsSeededAndCoversTheMean(t *testing.T) {
	xs := []float64{1, 0, 1, 1, 0, 1, 1, 1, 0, 1}
	a := evals.BootstrapMean(xs, 0.95, rand.New(rand.NewPCG(1, 2)))
	b := evals.BootstrapMean(xs, 0.95, rand.New(rand.NewPCG(1, 2)))
	assert.Equal(t, a, b, "same seed, same interval")
	assert.Equal(t, 0.7, a.Value)
	assert.Less(t, a.Lo, 0.7)
	assert.Greater(t, a.Hi, 0.7)
}

func TestShippedSuitesAndProfilesLoad(t *testing.T) {
	for _, f := range []string{"suites/capitals.yaml", "suites/json-extraction.yaml"} {
		s, err := evals.LoadSuite(f)
		require.NoError(t, err, f)
		assert.NotEmpty(t, s.Cases)
	}
	p := evals.Profiles()
	for _, m := range []string{"claude-haiku-4-5", "gemini-2.5-flash"} {
		require.Contains(t, p, m)
		_, err := pricing.Default().Lookup("", m)
		assert.NoError(t, err, "profile %s has a default price", m)
	}
}

func TestSuiteErrorsNameFileLineAndField(t *testing.T) {
	tests := []struct{ src, want string }{
		{"name: x\ncases:\n  - name: a\n    prompt: p\n    scorers: [{type: equals, valu: x}]\n", `s.yaml:5:`},
		{"name: x\ncases:\n  - name: a\n    prompt: p\n    scorers: [{type: magic}]\n", `field cases[0].scorers[0]: unknown scorer type "magic"`},
		{"name: x\ncases:\n  - name: a\n    prompt: p\n    scorers: [{type: regex, pattern: \"(\"}]\n", `field cases[0].scorers[0]: regex:`},
		{"name: x\ncases:\n  - name: a\n    prompt: p\n    scorers: []\n", `field cases[0].scorers: evals: a case needs at least one scorer`},
		{"name: x\ncases:\n  - name: a\n    scorers: [{type: json_valid}]\n", `field cases[0]: set exactly one of prompt and messages`},
		{"name: x\nsamples: -3\ncases:\n  - {name: a, prompt: p, scorers: [{type: json_valid}]}\n", `field samples: must not be negative`},
	}
	for _, tt := range tests {
		_, err := evals.ParseSuite("s.yaml", []byte(tt.src))
		require.Error(t, err, tt.src)
		assert.Contains(t, err.Error(), tt.want)
	}
}

func TestThinkingTaxOnFakes(t *testing.T) {
	suite, err := evals.LoadSuite("suites/capitals.yaml")
	require.NoError(t, err)
	suite.Samples = 40
	f, err := evals.NewFakes([]string{"anthropic/claude-haiku-4-5", "gemini/gemini-2.5-flash"}, 7)
	require.NoError(t, err)
	defer f.Close()
	base, err := evals.Run(context.Background(), suite, "anthropic/claude-haiku-4-5", f.Target(), evals.RunOptions{})
	require.NoError(t, err)
	cand, err := evals.Run(context.Background(), suite, "gemini/gemini-2.5-flash", f.Target(), evals.RunOptions{})
	require.NoError(t, err)
	evals.RequirePassRate(t, base, 0.90, 0.95)
	evals.RequirePassRate(t, cand, 0.90, 0.95)
	assert.Zero(t, base.Stats.ReasoningShare)
	assert.Greater(t, cand.Stats.ReasoningShare, 0.9)

	cmp, err := evals.Compare(base, cand, 1)
	require.NoError(t, err)
	t.Log(cmp.Verdict)
	assert.True(t, cmp.CostRatio.Lo.GreaterThan(decimal.NewFromInt(2)), "the thinking tax: flash costs more than twice haiku per request (%s)", cmp.Verdict)
	assert.False(t, evals.RegressionCheck(cmp, decimal.NewFromInt(2), 0.9, evals.DefaultMaxPassRateDrop).Passed())
	assert.True(t, evals.RegressionCheck(cmp, decimal.NewFromInt(3), 0.9, evals.DefaultMaxPassRateDrop).Passed())
	evals.RequireCostRatioBelow(t, cmp, "3")

	// The exact cost in the results is the ledger's.
	total := decimal.Zero
	for _, s := range append(base.Samples, cand.Samples...) {
		total = total.Add(s.Cost)
	}
	billed := decimal.Zero
	for _, inv := range f.Invoices() {
		billed = billed.Add(inv.Totals.Cost)
	}
	assert.Equal(t, billed.String(), total.String())
}

// TestCalibration: on a fake that answers correctly 90% of the time, the
// 95% Wilson interval of 50 samples covers 0.9 in at least 93% of 200 runs.
func TestCalibration(t *testing.T) {
	suite := &evals.Suite{Name: "calibration", Samples: 50, Concurrency: 8, Seed: 1, Cases: []evals.Case{{
		Name: "q", Messages: []llm.Message{{Role: "user", Content: "capital of France?"}},
		Scorers: []evals.Weighted{{Scorer: evals.Equals{Value: "Paris"}}},
	}}}
	covered := 0
	for seed := uint64(1); seed <= 200; seed++ {
		g := gatewayOn(t, seed)
		r, err := evals.Run(context.Background(), suite, "chat", evals.InProcess{Gateway: g.Gateway}, evals.RunOptions{})
		require.NoError(t, err)
		if r.Stats.PassRate.Lo <= 0.9 && 0.9 <= r.Stats.PassRate.Hi {
			covered++
		}
		g.Close()
	}
	t.Logf("the 95%% interval covered the true 0.9 in %d of 200 runs", covered)
	assert.GreaterOrEqual(t, covered, 186, "coverage %d/200 is below 93%%", covered)
}

// gatewayOn is a gateway on one fake that answers "Paris" 9 times in 10,
// with no ledger.
func gatewayOn(t testing.TB, seed uint64) *gatewaytest.Gateway {
	t.Helper()
	g, err := gatewaytest.New(gatewaytest.Config{
		Fakes: map[string]fakeprovider.Config{"p": {Vendor: fakeprovider.OpenAI, Seed: seed,
			Models: map[string]fakeprovider.Model{"m": {Answers: []fakeprovider.Answer{{Text: "Paris", Weight: 9}, {Text: "Lyon", Weight: 1}}}}}},
		Gateway: gateway.Config{Routes: map[string][]string{"chat": {"p/m"}},
			Prices: gateway.PricesConfig{Models: map[string]pricing.Price{"m": {Input: pricing.MustRate("1"), Output: pricing.MustRate("1")}}}},
		Ledger: discard{},
	})
	require.NoError(t, err)
	return g
}

type discard struct{}

func (discard) Record(ledger.Attempt) error { return nil }

// TestHTTPAndInProcessAgree: the same suite, seed and fakes give the same
// result through the HTTP front as through the Gateway value.
func TestHTTPAndInProcessAgree(t *testing.T) {
	suite, err := evals.LoadSuite("suites/json-extraction.yaml")
	require.NoError(t, err)
	suite.Samples, suite.Concurrency = 15, 1 // one at a time: the fakes' dice are drawn in request order
	run := func(http bool) *evals.Result {
		f, err := evals.NewFakes([]string{"gemini/gemini-2.5-flash-lite"}, 11)
		require.NoError(t, err)
		defer f.Close()
		var target evals.Target = f.Target()
		if http {
			srv := httptest.NewServer(f.Gateway.Handler(gateway.HandlerOptions{
				Tenants: []gateway.Tenant{{Name: "evals", KeySHA256: gateway.HashKey("k")}}, Gatherer: prometheus.NewRegistry()}))
			defer srv.Close()
			target = evals.HTTP{BaseURL: srv.URL, APIKey: "k"}
		}
		r, err := evals.Run(context.Background(), suite, "gemini/gemini-2.5-flash-lite", target, evals.RunOptions{})
		require.NoError(t, err)
		return r
	}
	a, b := run(false), run(true)
	assert.Equal(t, a.Stats.Passed, b.Stats.Passed)
	assert.Equal(t, a.Stats.PassRate, b.Stats.PassRate)
	assert.Equal(t, a.Stats.MeanScore, b.Stats.MeanScore)
	assert.Equal(t, a.Stats.TotalCost, b.Stats.TotalCost)
	assert.Equal(t, a.Stats.Tokens, b.Stats.Tokens)
	for i := range a.Samples {
		assert.Equal(t, a.Samples[i].Output, b.Samples[i].Output, "sample %d", i)
	}
	assert.Less(t, a.Stats.PassRate.Value, 1.0, "flash-lite fails some JSON extractions: the comparison is not trivial")
}
