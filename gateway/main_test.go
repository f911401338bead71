package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/brownout-dev/brownout/fakeprovider"
	"github.com/brownout-dev/brownout/gateway"
	"github.com/brownout-dev/brownout/gateway/ledger"
	"github.com/brownout-dev/brownout/gateway/pricing"
	"github.com/brownout-dev/brownout/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

const tenantKey = "bk-test-tenant"

var (
	plain   = fakeprovider.Model{Answers: []fakeprovider.Answer{{Text: "Paris", Tokens: 1}}}
	thinker = fakeprovider.Model{Answers: []fakeprovider.Answer{{Text: "Paris", Tokens: 1}}, ReasoningTokens: fakeprovider.Fixed(24), Thinking: "France's capital is Paris."}
	long    = fakeprovider.Model{Answers: []fakeprovider.Answer{{Text: "The capital of France is Paris.", Tokens: 8}}, ReasoningTokens: fakeprovider.Fixed(24)}
)

// rigPrices is the fakes' price table: the gateway's, as routesYAML extends it.
var rigPrices = pricing.Default().Merge(&pricing.Table{Models: map[string]pricing.Price{
	"long": {Input: pricing.MustRate("1.00"), Output: pricing.MustRate("10.00")},
}})

// rig is a gateway in front of three fakes, with a synchronous ledger.
type rig struct {
	fakes  map[string]*fakeprovider.Server
	store  ledger.Store
	gw     *gateway.Gateway
	server *httptest.Server
	client *openai.Client
}

const routesYAML = `
routes:
  claude: [anthropic/claude-haiku-4-5]
  sonnet: [anthropic/claude-sonnet-4-5]
  flash: [gemini/gemini-2.5-flash]
  lite: [gemini/gemini-2.5-flash-lite]
  mini: [openai/gpt-4o-mini]
  o4: [openai/o4-mini]
  long-anthropic: [anthropic/long]
  long-gemini: [gemini/long]
  long-openai: [openai/long]
prices:
  models:
    long: {input: "1.00", output: "10.00"}
tenants:
  - {name: acme, api_key_env: TEST_TENANT_KEY}
`

// newRig starts the fakes (faults per provider name) and a gateway on them.
func newRig(t testing.TB, store ledger.Store, rec gateway.Recorder, faults map[string][]fakeprovider.Fault) *rig {
	t.Helper()
	return rigOn(t, startFakes(t, faults), store, rec, rigExtras{})
}

// startFakes starts one fake per vendor, named after it.
func startFakes(t testing.TB, faults map[string][]fakeprovider.Fault) map[string]*fakeprovider.Server {
	t.Helper()
	fakes := map[string]*fakeprovider.Server{}
	models := map[string]map[string]fakeprovider.Model{
		"anthropic": {"claude-haiku-4-5": plain, "claude-sonnet-4-5": thinker, "long": long},
		"gemini":    {"gemini-2.5-flash": thinker, "gemini-2.5-flash-lite": plain, "long": long},
		"openai":    {"gpt-4o-mini": plain, "o4-mini": thinker, "long": long},
	}
	for name, ms := range models {
		s, err := fakeprovider.NewUnstartedServer(fakeprovider.Config{Vendor: fakeprovider.Vendor(name), Seed: 3, Models: ms, Faults: faults[name], Prices: rigPrices})
		require.NoError(t, err)
		require.NoError(t, s.Start())
		t.Cleanup(s.Close)
		fakes[name] = s
	}
	return fakes
}

// rigExtras are the optional policies of a rig.
type rigExtras struct {
	idempotency gateway.IdempotencyStore
	budgets     map[string]gateway.Budget
	budgetStore gateway.BudgetStore
	breakers    map[string]gateway.BreakerSettings
}

// rigOn builds a gateway, as a separate gateway process would, on fakes.
func rigOn(t testing.TB, fakes map[string]*fakeprovider.Server, store ledger.Store, rec gateway.Recorder, x rigExtras) *rig {
	t.Helper()
	r := &rig{fakes: fakes, store: store}
	yaml := "providers:\n"
	for _, name := range []string{"anthropic", "gemini", "openai"} {
		yaml += fmt.Sprintf("  %s: {vendor: %s, base_url: %q, api_key_env: TEST_PROVIDER_KEY", name, name, fakes[name].URL)
		if name == "anthropic" {
			yaml += ", thinking_budget: {claude-sonnet-4-5: 2048, long: 2048}"
		}
		yaml += "}\n"
	}
	cfg, err := gateway.ParseConfig("serve.yaml", []byte(yaml+routesYAML))
	require.NoError(t, err)
	env := map[string]string{"TEST_PROVIDER_KEY": "sk-provider-secret", "TEST_TENANT_KEY": tenantKey}
	built, err := cfg.Build(func(k string) string { return env[k] }, nil)
	require.NoError(t, err)
	if rec == nil {
		rec = &ledger.Immediate{Store: store}
	}
	reg := prometheus.NewRegistry()
	r.gw, err = gateway.New(gateway.Options{Providers: built.Providers, Routes: built.Routes, Prices: built.Prices,
		Ledger: rec, Metrics: gateway.NewMetrics(reg, nil), Budgets: x.budgets, BudgetStore: x.budgetStore, Breakers: x.breakers,
		// Fast retries; a Retry-After beyond the deadline is not waited for.
		Retry: gateway.RetrySettings{BaseBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond, Deadline: 2 * time.Second}})
	require.NoError(t, err)
	t.Cleanup(r.gw.Close)
	r.server = httptest.NewServer(r.gw.Handler(gateway.HandlerOptions{Tenants: built.Tenants, Gatherer: reg, Idempotency: x.idempotency}))
	t.Cleanup(r.server.Close)
	c := openai.NewClient(option.WithBaseURL(r.server.URL+"/v1"), option.WithAPIKey(tenantKey), option.WithMaxRetries(0))
	r.client = &c
	return r
}

func (r *rig) attempts(t *testing.T, requestID string) []ledger.Attempt {
	t.Helper()
	as, err := r.store.RequestAttempts(context.Background(), requestID)
	require.NoError(t, err)
	return as
}

func ask(model string) openai.ChatCompletionNewParams {
	return openai.ChatCompletionNewParams{
		Model:    model,
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("What is the capital of France? One word.")},
	}
}

// exportBuffer collects a ledger export.
type exportBuffer struct{ bytes.Buffer }

func (b *exportBuffer) attempts(t *testing.T) []ledger.Attempt {
	t.Helper()
	var out []ledger.Attempt
	dec := json.NewDecoder(&b.Buffer)
	for dec.More() {
		var a ledger.Attempt
		require.NoError(t, dec.Decode(&a))
		out = append(out, a)
	}
	return out
}
