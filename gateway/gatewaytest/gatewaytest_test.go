package gatewaytest_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brownout-dev/brownout/fakeprovider"
	"github.com/brownout-dev/brownout/gateway"
	"github.com/brownout-dev/brownout/gateway/gatewaytest"
	"github.com/brownout-dev/brownout/gateway/llm"
)

var paris = map[string]fakeprovider.Model{"gpt-4o-mini": {Answers: []fakeprovider.Answer{{Text: "Paris", Tokens: 1}}}}

func ask(route string) *gateway.Request {
	return &gateway.Request{ID: "r1", Tenant: gatewaytest.DefaultTenant, Route: route,
		LLM: llm.Request{Messages: []llm.Message{{Role: "user", Content: "Capital of France?"}}}}
}

// One request in virtual time: the answer, one ledger row, one invoice
// line with the same vendor request id.
func TestInProcessInVirtualTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g, err := gatewaytest.New(gatewaytest.Config{
			Fakes:   map[string]fakeprovider.Config{"openai": {Vendor: fakeprovider.OpenAI, Seed: 1, Models: paris}},
			Gateway: gateway.Config{Routes: map[string][]string{"chat": {"openai/gpt-4o-mini"}}},
		})
		require.NoError(t, err)
		defer g.Close()
		res, err := g.Complete(context.Background(), ask("chat"))
		require.NoError(t, err)
		assert.Equal(t, "Paris", res.Response.Content)
		rows, err := g.Store.RequestAttempts(context.Background(), "r1")
		require.NoError(t, err)
		require.Len(t, rows, 1)
		lines := g.Invoices()["openai"].Lines
		require.Len(t, lines, 1)
		assert.Equal(t, lines[0].RequestID, rows[0].ProviderReqID, "the ledger row names the invoice line")
	})
}

// Two gateways on shared loopback fakes: closing one leaves the fakes up
// for the other; the default tenant's key opens the HTTP front.
func TestSharedServersOutliveClose(t *testing.T) {
	s := fakeprovider.NewServer(fakeprovider.Config{Vendor: fakeprovider.OpenAI, Seed: 1, Models: paris})
	defer s.Close()
	cfg := gatewaytest.Config{Servers: map[string]*fakeprovider.Server{"openai": s}, Loopback: true,
		Gateway: gateway.Config{Routes: map[string][]string{"chat": {"openai/gpt-4o-mini"}}}}
	a, err := gatewaytest.New(cfg)
	require.NoError(t, err)
	b, err := gatewaytest.New(cfg)
	require.NoError(t, err)
	defer b.Close()
	a.Close()

	srv := httptest.NewServer(b.Handler)
	defer srv.Close()
	req, err := http.NewRequest("POST", srv.URL+"/v1/chat/completions",
		bytes.NewReader([]byte(`{"model":"chat","messages":[{"role":"user","content":"Capital of France?"}]}`)))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+gatewaytest.DefaultKey)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, 200, resp.StatusCode, "%s", body)
	assert.NotContains(t, string(body), gatewaytest.ProviderKey)
}

func TestBadConfigIsAnError(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  gatewaytest.Config
		want string
	}{
		{"unknown provider", gatewaytest.Config{
			Fakes:   map[string]fakeprovider.Config{"openai": {Vendor: fakeprovider.OpenAI, Models: paris}},
			Gateway: gateway.Config{Routes: map[string][]string{"chat": {"gemini/gemini-2.5-flash"}}}}, `unknown provider "gemini"`},
		{"unpriced model", gatewaytest.Config{
			Fakes:   map[string]fakeprovider.Config{"openai": {Vendor: fakeprovider.OpenAI, Models: paris}},
			Gateway: gateway.Config{Routes: map[string][]string{"chat": {"openai/my-model"}}}}, "no price"},
		{"a provider twice", gatewaytest.Config{
			Fakes:   map[string]fakeprovider.Config{"openai": {Vendor: fakeprovider.OpenAI, Models: paris}},
			Servers: map[string]*fakeprovider.Server{"openai": fakeprovider.NewServer(fakeprovider.Config{Vendor: fakeprovider.OpenAI, Models: paris})},
			Gateway: gateway.Config{Routes: map[string][]string{"chat": {"openai/gpt-4o-mini"}}}}, "both in Fakes and in Servers"},
		{"a nil server", gatewaytest.Config{
			Servers: map[string]*fakeprovider.Server{"openai": nil},
			Gateway: gateway.Config{Routes: map[string][]string{"chat": {"openai/gpt-4o-mini"}}}}, `Servers["openai"] is nil`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, s := range tc.cfg.Servers {
				if s != nil {
					defer s.Close()
				}
			}
			g, err := gatewaytest.New(tc.cfg)
			require.Error(t, err)
			assert.Nil(t, g)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

func Example() {
	g, err := gatewaytest.New(gatewaytest.Config{
		Fakes: map[string]fakeprovider.Config{"openai": {Vendor: fakeprovider.OpenAI, Seed: 1,
			Models: map[string]fakeprovider.Model{"gpt-4o-mini": {Answers: []fakeprovider.Answer{{Text: "Paris", Tokens: 1}}}}}},
		Gateway: gateway.Config{Routes: map[string][]string{"chat": {"openai/gpt-4o-mini"}}},
	})
	if err != nil {
		panic(err)
	}
	defer g.Close()
	res, err := g.Complete(context.Background(), &gateway.Request{ID: "req-1", Tenant: gatewaytest.DefaultTenant, Route: "chat",
		LLM: llm.Request{Messages: []llm.Message{{Role: "user", Content: "Capital of France?"}}}})
	if err != nil {
		panic(err)
	}
	rows, _ := g.Store.RequestAttempts(context.Background(), "req-1")
	fmt.Println(res.Response.Content, res.Target, len(rows), rows[0].Outcome)
	// Output: Paris openai/gpt-4o-mini 1 ok
}
