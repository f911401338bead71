package gateway_test

import (
	"context"
	"log/slog"
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

// vendorSays is a vendor that answers every call with err.
type vendorSays struct {
	llm.Provider
	err *llm.ProviderError
}

func (p vendorSays) Complete(context.Context, *llm.Request) (*llm.Response, error) { return nil, p.err }

// TestTenantsGetTheGatewaysWordsNotTheVendors: a vendor's error message
// (which may quote a key, masked or not) never reaches a tenant: the
// answer says the provider, class, status and vendor error type in the
// gateway's words. The vendor's text goes to the gateway's log and the
// ledger with credentials redacted.
func TestTenantsGetTheGatewaysWordsNotTheVendors(t *testing.T) {
	for _, c := range []struct {
		status int
		typ    string
		msg    string
		says   string
	}{
		{401, "invalid_api_key", "Incorrect API key provided: sk-proj-ab12********************wxyz. You can find your API key at https://platform.openai.com/account/api-keys.", "HTTP 401 invalid_api_key"},
		{400, "invalid_request_error", "Invalid value for 'model' with key=AIzaSyD-secret-value-1234567890 and Bearer abcdefghijklmnop", "HTTP 400 invalid_request_error"},
	} {
		logs := &gatewaytest.LogBuffer{}
		vendorErr := &llm.ProviderError{Provider: "openai", Class: llm.ClassClient, Status: c.status, Type: c.typ, Message: c.msg}
		g, err := gatewaytest.New(gatewaytest.Config{
			Fakes:   map[string]fakeprovider.Config{"openai": {Vendor: fakeprovider.OpenAI, Models: map[string]fakeprovider.Model{"gpt-4o-mini": {}}}},
			Gateway: gateway.Config{Routes: map[string][]string{"chat": {"openai/gpt-4o-mini"}}},
			Logger:  slog.New(slog.NewTextHandler(logs, nil)),
			Options: func(o *gateway.Options) { o.Providers["openai"] = vendorSays{o.Providers["openai"], vendorErr} },
		})
		require.NoError(t, err)
		srv := httptest.NewServer(g.Handler)
		resp, body := send(t, srv.URL, gatewaytest.DefaultKey, `{"model":"chat","messages":[{"role":"user","content":"hi"}]}`, nil)
		srv.Close()
		g.Close()

		assert.GreaterOrEqual(t, resp.StatusCode, 400)
		assert.Contains(t, string(body), c.says, "the status and the vendor's type")
		for _, secret := range []string{"Incorrect API key", "Invalid value", "sk-proj", "ab12", "AIza", "abcdefghijklmnop"} {
			assert.NotContains(t, string(body), secret, "the tenant's answer")
			if secret != "Incorrect API key" && secret != "Invalid value" {
				assert.NotContains(t, logs.String(), secret, "the gateway's log")
			}
		}
		assert.Contains(t, logs.String(), "[redacted]", "the vendor's text is logged, redacted")

		var rows exportBuffer
		_, err = g.Store.Export(context.Background(), ledger.Query{}, &rows)
		require.NoError(t, err)
		attempts := rows.attempts(t)
		require.NotEmpty(t, attempts)
		for _, a := range attempts {
			assert.NotContains(t, a.ErrorMessage, "ab12")
			assert.NotContains(t, a.ErrorMessage, "AIza")
			assert.True(t, strings.Contains(a.ErrorMessage, "[redacted]"), "%q", a.ErrorMessage)
		}
	}
}

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"Incorrect API key provided: sk-proj-ab12****wxyz.":  "Incorrect API key provided: [redacted].",
		"x-api-key sk-ant-api03-AAAA_bbbb-cccc is invalid":   "x-api-key [redacted] is invalid",
		"GET /v1beta/models?key=AIzaSyA1234567890abcdef":     "GET /v1beta/models?key=[redacted]",
		"Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.e30.abc": "Authorization: [redacted]",
		"model gpt-4o-mini not found":                        "model gpt-4o-mini not found",
		"the task-force met at risk-taking speeds":           "the task-force met at risk-taking speeds",
	} {
		assert.Equal(t, want, llm.Redact(in), in)
	}
}
