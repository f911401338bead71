package gateway_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brownout-dev/brownout/fakeprovider"
	"github.com/brownout-dev/brownout/gateway"
	"github.com/brownout-dev/brownout/gateway/gatewaytest"
	"github.com/brownout-dev/brownout/gateway/ledger"
	"github.com/brownout-dev/brownout/gateway/llm"
)

// twoTenants is a gateway on one OpenAI fake with tenants acme and beta
// (keys key-acme and key-beta).
func twoTenants(t *testing.T, opts func(*gateway.Options)) *gatewaytest.Gateway {
	t.Helper()
	var tenants []gateway.TenantConfig
	for _, name := range []string{"acme", "beta"} {
		tenants = append(tenants, gateway.TenantConfig{Name: name, APIKeySHA256: fmt.Sprintf("%x", gateway.HashKey("key-"+name))})
	}
	g, err := gatewaytest.New(gatewaytest.Config{
		Fakes:   map[string]fakeprovider.Config{"openai": {Vendor: fakeprovider.OpenAI, Seed: 1, Models: map[string]fakeprovider.Model{"gpt-4o-mini": plain}}},
		Gateway: gateway.Config{Routes: map[string][]string{"mini": {"openai/gpt-4o-mini"}}, Tenants: tenants},
		Options: opts,
	})
	require.NoError(t, err)
	t.Cleanup(g.Close)
	return g
}

// TestClientRequestIDNeverKeysTheLedger guards against clients choosing the
// ledger key: three requests sent with X-Request-ID "same-id", by two
// tenants, gave three invoice lines and one ledger row while the client's
// id was the row's key. Each is its own row now, keyed by the gateway.
func TestClientRequestIDNeverKeysTheLedger(t *testing.T) {
	g := twoTenants(t, nil)
	srv := httptest.NewServer(g.Handler)
	defer srv.Close()
	keys := map[string]string{} // ledger request id -> tenant key
	for _, key := range []string{"key-acme", "key-acme", "key-beta"} {
		resp, body := send(t, srv.URL, key, capitalBody, map[string]string{"X-Request-ID": "same-id"})
		require.Equal(t, 200, resp.StatusCode, "%s", body)
		assert.Equal(t, "same-id", resp.Header.Get("X-Request-ID"), "the client's id is echoed")
		id := resp.Header.Get("X-Brownout-Request-ID")
		require.NotEmpty(t, id)
		assert.NotEqual(t, "same-id", id)
		assert.Contains(t, string(body), `"id":"chatcmpl-`+id+`"`)
		keys[id] = key
	}
	require.Len(t, keys, 3, "three requests, three ledger keys")

	lines := g.Invoices()["openai"].Lines
	require.Len(t, lines, 3, "the fake billed three calls")
	var buf exportBuffer
	_, err := g.Store.Export(context.Background(), ledger.Query{ClientRequestID: "same-id"}, &buf)
	require.NoError(t, err)
	rows := buf.attempts(t)
	require.Len(t, rows, 3, "one ledger row per invoice line")
	billed := map[string]bool{}
	for _, l := range lines {
		billed[l.RequestID] = true
	}
	tenants := map[string]int{}
	for _, a := range rows {
		assert.Contains(t, keys, a.RequestID, "a row keyed by a minted id")
		assert.Equal(t, "same-id", a.ClientRequestID)
		assert.True(t, billed[a.ProviderReqID], "row %s names an invoice line", a.RequestID)
		tenants[a.Tenant]++
	}
	assert.Equal(t, map[string]int{"acme": 2, "beta": 1}, tenants)

	// Without an X-Request-ID, the gateway's id is the one echoed.
	resp, _ := send(t, srv.URL, "key-beta", capitalBody, nil)
	assert.Equal(t, resp.Header.Get("X-Brownout-Request-ID"), resp.Header.Get("X-Request-ID"))
}

func TestRequestIDsAreUniqueAndTimeOrdered(t *testing.T) {
	prev := ""
	for i := range 10000 {
		id := gateway.NewRequestID()
		require.Len(t, id, 36, "a UUID")
		require.Greater(t, id, prev, "id %d is not after the one before", i)
		prev = id
	}
}

// TestEdgeRefusesWhatTheLedgerWould guards against a billed call with no
// row: an Idempotency-Key of 200 characters passed the edge (255 allowed)
// and was refused by the ledger (128), after the vendor had billed the
// call. The edge now holds keys to the ledger's limit, with a 400 before
// any upstream call.
func TestEdgeRefusesWhatTheLedgerWould(t *testing.T) {
	g, err := gatewaytest.New(gatewaytest.Config{
		Fakes:       map[string]fakeprovider.Config{"openai": {Vendor: fakeprovider.OpenAI, Seed: 1, Models: map[string]fakeprovider.Model{"gpt-4o-mini": plain}}},
		Gateway:     gateway.Config{Routes: map[string][]string{"mini": {"openai/gpt-4o-mini"}}},
		Idempotency: gateway.NewMemoryIdempotency(gateway.IdempotencySettings{}, nil),
	})
	require.NoError(t, err)
	defer g.Close()
	srv := httptest.NewServer(g.Handler)
	defer srv.Close()
	for _, tc := range []struct {
		name   string
		header string
		value  string
		status int
	}{
		{"Idempotency-Key of 200 characters", "Idempotency-Key", strings.Repeat("k", 200), 400},
		{"Idempotency-Key at the ledger's limit", "Idempotency-Key", strings.Repeat("k", ledger.MaxIDLen), 200},
		{"X-Request-ID over the limit", "X-Request-ID", strings.Repeat("r", ledger.MaxIDLen+1), 400},
		{"X-Request-ID at the limit", "X-Request-ID", strings.Repeat("r", ledger.MaxIDLen), 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(g.Invoices()["openai"].Lines)
			resp, body := send(t, srv.URL, gatewaytest.DefaultKey, capitalBody, map[string]string{tc.header: tc.value})
			require.Equal(t, tc.status, resp.StatusCode, "%s", body)
			calls := len(g.Invoices()["openai"].Lines) - before
			rows, err := g.Store.RequestAttempts(context.Background(), resp.Header.Get("X-Brownout-Request-ID"))
			require.NoError(t, err)
			if tc.status == 400 {
				assert.Contains(t, string(body), tc.header)
				assert.Zero(t, calls, "no upstream call")
				assert.Empty(t, rows)
				return
			}
			assert.Equal(t, 1, calls)
			require.Len(t, rows, 1, "the billed call has its row")
		})
	}
}

// TestConfigRefusesNamesTheLedgerWould: a tenant, provider, route or model
// name the ledger cannot hold is an error at start-up, naming the field.
func TestConfigRefusesNamesTheLedgerWould(t *testing.T) {
	long := strings.Repeat("n", ledger.MaxIDLen+1)
	for _, tc := range []struct{ name, yaml, field string }{
		{"tenant", "tenants: [{name: " + long + ", api_key_env: K}]", "field tenants[0].name"},
		{"route", "tenants: [{name: t, api_key_env: K}]\nroutes: {" + long + ": [openai/gpt-4o-mini]}", "field routes." + long},
		{"model", "tenants: [{name: t, api_key_env: K}]\nroutes: {chat: [openai/" + long + "]}", "field routes.chat[0]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			yaml := "providers: {openai: {vendor: openai, api_key_env: K}}\n" + tc.yaml + "\n"
			if !strings.Contains(tc.yaml, "routes:") {
				yaml += "routes: {chat: [openai/gpt-4o-mini]}\n"
			}
			_, err := gateway.ParseConfig("serve.yaml", []byte(yaml))
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.field)
			assert.Contains(t, err.Error(), "ledger row")
		})
	}
}

// longID is a vendor whose request ids the ledger could not hold as they are.
type longID struct{ llm.Provider }

func (p longID) Complete(ctx context.Context, req *llm.Request) (*llm.Response, error) {
	resp, err := p.Provider.Complete(ctx, req)
	if resp != nil {
		resp.ProviderRequestID = "req\x00\x1b[31m" + strings.Repeat("x", 300)
	}
	return resp, err
}

// TestVendorRequestIDIsSanitisedNotDropped: a vendor request id over the
// ledger's limit, with control characters, was a refused row; it is now
// cleaned and cut, and the row is written.
func TestVendorRequestIDIsSanitisedNotDropped(t *testing.T) {
	g := twoTenants(t, func(o *gateway.Options) { o.Providers["openai"] = longID{o.Providers["openai"]} })
	res, err := g.Complete(context.Background(), &gateway.Request{ID: gateway.NewRequestID(), Tenant: "acme", Route: "mini",
		LLM: llm.Request{Messages: []llm.Message{{Role: "user", Content: "Capital of France?"}}}})
	require.NoError(t, err)
	var buf exportBuffer
	_, err = g.Store.Export(context.Background(), ledger.Query{}, &buf)
	require.NoError(t, err)
	rows := buf.attempts(t)
	require.Len(t, rows, 1, "the billed call has its row")
	assert.Len(t, rows[0].ProviderReqID, ledger.MaxIDLen)
	assert.True(t, strings.HasPrefix(rows[0].ProviderReqID, "req??[31m"), "control characters replaced: %q", rows[0].ProviderReqID[:12])
	assert.Equal(t, res.Cost.String(), rows[0].Cost.String())
}

// TestInProcessRequestsGetMintedIDs: a caller in process (evals) that sets
// no ID gets one minted, so its rows never collide with another process's.
func TestInProcessRequestsGetMintedIDs(t *testing.T) {
	g := twoTenants(t, nil)
	var ids []string
	for range 2 {
		req := &gateway.Request{Tenant: "acme", Route: "mini",
			LLM: llm.Request{Messages: []llm.Message{{Role: "user", Content: "Capital of France?"}}}}
		_, err := g.Complete(context.Background(), req)
		require.NoError(t, err)
		require.Len(t, req.ID, 36, "a minted UUID")
		rows, err := g.Store.RequestAttempts(context.Background(), req.ID)
		require.NoError(t, err)
		require.Len(t, rows, 1)
		ids = append(ids, req.ID)
	}
	assert.NotEqual(t, ids[0], ids[1])
}

// TestMetricRouteLabelIsAConfiguredRoute: the route label of the request
// metric is a configured route or "unknown", never the client's model
// string, which would let any tenant grow the metric without bound.
func TestMetricRouteLabelIsAConfiguredRoute(t *testing.T) {
	g := twoTenants(t, nil)
	srv := httptest.NewServer(g.Handler)
	defer srv.Close()
	bogus := "made-up-" + strings.Repeat("x", 1000)
	for _, model := range []string{"mini", bogus} {
		send(t, srv.URL, "key-acme", `{"model":"`+model+`","messages":[{"role":"user","content":"hi"}]}`, nil)
	}
	resp, err := http.Get(srv.URL + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	assert.Contains(t, string(b), `brownout_requests_total{outcome="ok",route="mini"} 1`)
	assert.Contains(t, string(b), `route="unknown"`)
	assert.NotContains(t, string(b), "made-up-")
}
