package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/require"

	"github.com/brownout-dev/brownout/fakeprovider"
	"github.com/brownout-dev/brownout/gateway"
	"github.com/brownout-dev/brownout/gateway/gatewaytest"
	"github.com/brownout-dev/brownout/gateway/ledger"
	"github.com/brownout-dev/brownout/gateway/pricing"
	"github.com/brownout-dev/brownout/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

const tenantKey = "bk-test-tenant"

var (
	plain   = fakeprovider.Model{Answers: []fakeprovider.Answer{{Text: "Paris", Tokens: 1}}}
	thinker = fakeprovider.Model{Answers: []fakeprovider.Answer{{Text: "Paris", Tokens: 1}}, ReasoningTokens: fakeprovider.Fixed(24), Thinking: "France's capital is Paris."}
	// long is a model no vendor sells: the fakes charge its Price, the
	// gateway rigConfig's inline price, each typed on its own.
	long = fakeprovider.Model{Answers: []fakeprovider.Answer{{Text: "The capital of France is Paris.", Tokens: 8}}, ReasoningTokens: fakeprovider.Fixed(24),
		Price: &fakeprovider.ListPrice{Input: decimal.RequireFromString("1"), Output: decimal.RequireFromString("10")}}
)

// rig is a gateway in front of three fakes, with a synchronous ledger.
type rig struct {
	fakes  map[string]*fakeprovider.Server
	store  ledger.Store
	gw     *gateway.Gateway
	server *httptest.Server
	client *openai.Client
}

// rigConfig is the rig's gateway config, as serve.yaml would say it; the
// providers' vendors and URLs come from the fakes.
func rigConfig() gateway.Config {
	return gateway.Config{
		Providers: map[string]gateway.ProviderConfig{"anthropic": {ThinkingBudget: map[string]int{"claude-sonnet-4-5": 2048, "long": 2048}}},
		Routes: map[string][]string{
			"claude": {"anthropic/claude-haiku-4-5"}, "sonnet": {"anthropic/claude-sonnet-4-5"},
			"flash": {"gemini/gemini-2.5-flash"}, "lite": {"gemini/gemini-2.5-flash-lite"},
			"mini": {"openai/gpt-4o-mini"}, "o4": {"openai/o4-mini"},
			"long-anthropic": {"anthropic/long"}, "long-gemini": {"gemini/long"}, "long-openai": {"openai/long"},
		},
		Prices:  gateway.PricesConfig{Models: map[string]pricing.Price{"long": {Input: pricing.MustRate("1.00"), Output: pricing.MustRate("10.00")}}},
		Tenants: []gateway.TenantConfig{{Name: "acme", APIKeyEnv: "TEST_TENANT_KEY"}},
		// Fast retries; a Retry-After beyond the deadline is not waited for.
		Retry: gateway.RetrySettings{BaseBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond, Deadline: 2 * time.Second},
	}
}

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
		s, err := fakeprovider.NewUnstartedServer(fakeprovider.Config{Vendor: fakeprovider.Vendor(name), Seed: 3, Models: ms, Faults: faults[name]})
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
	logger      *slog.Logger // nil: discarded
}

// rigOn builds a gateway, as a separate gateway process would, on fakes;
// the extras go through the config as serve.yaml would give them.
func rigOn(t testing.TB, fakes map[string]*fakeprovider.Server, store ledger.Store, rec gateway.Recorder, x rigExtras) *rig {
	t.Helper()
	gc := rigConfig()
	for i, tc := range gc.Tenants {
		if b, ok := x.budgets[tc.Name]; ok {
			gc.Tenants[i].BudgetUSD, gc.Tenants[i].BudgetWindow = &pricing.Rate{Decimal: b.Limit}, b.Window
			if b.Slice.IsPositive() {
				gc.Tenants[i].BudgetSliceUSD, gc.Tenants[i].BudgetSliceTTL = &pricing.Rate{Decimal: b.Slice}, b.SliceTTL
			}
		}
	}
	for name, b := range x.breakers {
		if name == "" {
			gc.Breaker.BreakerSettings = b
			continue
		}
		if gc.Breaker.Providers == nil {
			gc.Breaker.Providers = map[string]gateway.BreakerSettings{}
		}
		gc.Breaker.Providers[name] = b
	}
	g, err := gatewaytest.New(gatewaytest.Config{Servers: fakes, Loopback: true, Gateway: gc,
		Getenv: func(k string) string { return map[string]string{"TEST_TENANT_KEY": tenantKey}[k] },
		Store:  store, Ledger: rec, BudgetStore: x.budgetStore, Idempotency: x.idempotency, Logger: x.logger})
	require.NoError(t, err)
	t.Cleanup(g.Close)
	r := &rig{fakes: fakes, store: store, gw: g.Gateway}
	r.server = httptest.NewServer(g.Handler)
	t.Cleanup(r.server.Close)
	c := openai.NewClient(option.WithBaseURL(r.server.URL+"/v1"), option.WithAPIKey(tenantKey), option.WithMaxRetries(0))
	r.client = &c
	return r
}

// attempts returns the ledger rows of the request a client sent with
// X-Request-ID clientID, found through the ledger's client_request_id.
func (r *rig) attempts(t *testing.T, clientID string) []ledger.Attempt {
	t.Helper()
	var buf exportBuffer
	_, err := r.store.Export(context.Background(), ledger.Query{ClientRequestID: clientID}, &buf)
	require.NoError(t, err)
	as := buf.attempts(t)
	for _, a := range as {
		require.Equal(t, as[0].RequestID, a.RequestID, "X-Request-ID %q names more than one request", clientID)
	}
	return as
}

func ask(model string) openai.ChatCompletionNewParams {
	return openai.ChatCompletionNewParams{
		Model:    model,
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("What is the capital of France? One word.")},
	}
}

// outcomesOf is the provider and outcome of each attempt of request id, in
// order: "a:server_error".
func outcomesOf(t *testing.T, store ledger.Store, id string) []string {
	t.Helper()
	as, err := store.RequestAttempts(context.Background(), id)
	require.NoError(t, err)
	var out []string
	for _, a := range as {
		out = append(out, a.Provider+":"+string(a.Outcome))
	}
	return out
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

// send posts body to the chat endpoint at url with the API key and the
// headers given, and returns the response and its body.
func send(t *testing.T, url, apiKey, body string, headers map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest("POST", url+"/v1/chat/completions", bytes.NewReader([]byte(body)))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+apiKey)
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, b
}
