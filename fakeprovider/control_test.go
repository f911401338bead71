package fakeprovider_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brownout-dev/brownout/fakeprovider"
)

func TestControlAPI(t *testing.T) {
	s := startFake(t, vendorConfig(fakeprovider.OpenAI))
	c := s.Client()
	call := func(method, path, body string) (int, []byte) {
		t.Helper()
		req, err := http.NewRequest(method, s.URL+path, strings.NewReader(body))
		require.NoError(t, err)
		resp, b, err := do(c, req)
		require.NoError(t, err)
		return resp.StatusCode, b
	}

	status, body := call("PUT", "/_fake/faults", `[{"kind":"server_error","status":503,"count":1}]`)
	require.Equal(t, 200, status, "%s", body)
	resp, _, err := do(c, rawRequest(t, s, "gpt-4o-mini", false))
	require.NoError(t, err)
	assert.Equal(t, 503, resp.StatusCode, "the fault set over HTTP applies")
	resp, _, err = do(c, rawRequest(t, s, "gpt-4o-mini", false))
	require.NoError(t, err)
	assert.Equal(t, 200, resp.StatusCode)

	status, body = call("GET", "/_fake/faults", "")
	assert.Equal(t, 200, status)
	assert.JSONEq(t, `[{"kind":"server_error","status":503,"count":1}]`, string(body))

	status, body = call("GET", "/_fake/invoice", "")
	require.Equal(t, 200, status)
	var inv fakeprovider.Invoice
	require.NoError(t, json.Unmarshal(body, &inv))
	assert.Equal(t, 1, inv.Totals.Requests, "one success billed, the 503 not")

	status, body = call("GET", "/_fake/requests", "")
	require.Equal(t, 200, status)
	var journal []fakeprovider.JournalEntry
	require.NoError(t, json.Unmarshal(body, &journal))
	require.Len(t, journal, 2)
	assert.Equal(t, []string{"server_error"}, journal[0].Faults)

	status, _ = call("POST", "/_fake/reset", "")
	assert.Equal(t, 204, status)
	assert.Empty(t, s.Journal())
	assert.Empty(t, s.Invoice().Lines)

	status, body = call("PUT", "/_fake/faults", `[{"kind":"rate_limit","probabilty":0.5}]`)
	assert.Equal(t, 400, status)
	assert.Contains(t, string(body), "probabilty")
	status, body = call("PUT", "/_fake/faults", `[{"kind":"server_error","status":418}]`)
	assert.Equal(t, 400, status)
	assert.Contains(t, string(body), "faults[0].status")
	status, _ = call("GET", "/_fake/nothing", "")
	assert.Equal(t, 404, status)
}

// TestControlAPIIsLocalAndTokenGuarded: the control API changes what the
// fake does and shows its invoice, so it answers clients on the host only,
// and with a ControlToken only requests carrying it.
func TestControlAPIIsLocalAndTokenGuarded(t *testing.T) {
	cfg := vendorConfig(fakeprovider.OpenAI)
	cfg.ControlToken = "fake-control-secret"
	s := startFake(t, cfg)

	remote := httptest.NewRequest("GET", "/_fake/invoice", nil)
	remote.RemoteAddr = "10.1.2.3:40000"
	remote.Header.Set("X-Fake-Control-Token", "fake-control-secret")
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, remote)
	assert.Equal(t, http.StatusForbidden, rec.Code, "a client on another host, token or not")

	for token, want := range map[string]int{"": http.StatusUnauthorized, "wrong": http.StatusUnauthorized, "fake-control-secret": http.StatusOK} {
		req, err := http.NewRequest("GET", s.URL+"/_fake/invoice", nil)
		require.NoError(t, err)
		if token != "" {
			req.Header.Set("X-Fake-Control-Token", token)
		}
		resp, _, err := do(s.Client(), req)
		require.NoError(t, err)
		assert.Equal(t, want, resp.StatusCode, "token %q", token)
	}
}
