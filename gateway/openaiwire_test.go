package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/brownout-dev/brownout/gateway/llm"
)

// TestAPIErrorTable guards what a client sees for each error of the
// request path: status, OpenAI type and code, the metrics' outcome, and
// Retry-After.
func TestAPIErrorTable(t *testing.T) {
	pe := func(class llm.Class, status int, typ string) error {
		return fmt.Errorf("wrapped: %w", &llm.ProviderError{Provider: "openai", Class: class, Status: status, Type: typ})
	}
	tests := []struct {
		name               string
		err                error
		status             int
		typ, code, outcome string
		retryAfter         string
	}{
		{"bad request", badParam("model", "Missing model."), 400, "invalid_request_error", "invalid_request_error", "client_error", ""},
		{"bad key", &clientError{status: 401, code: "invalid_api_key", msg: "Invalid API key."}, 401, "authentication_error", "invalid_api_key", "client_error", ""},
		{"unknown route", fmt.Errorf("%w %q", ErrUnknownRoute, "x"), 404, "invalid_request_error", "model_not_found", "client_error", ""},
		{"budget", fmt.Errorf("%w: tenant", ErrBudgetExceeded), 429, "insufficient_quota", "budget_exceeded", "budget_exceeded", ""},
		{"key reused", ErrIdempotencyMismatch, 422, "invalid_request_error", "idempotency_key_mismatch", "client_error", ""},
		{"key store down", fmt.Errorf("%w: down", errIdempotencyUnavailable), 503, "server_error", "idempotency_unavailable", "error", "1"},
		{"budget store down", fmt.Errorf("%w: down", errBudgetUnavailable), 503, "server_error", "budget_unavailable", "error", "1"},
		{"client gone before the call", fmt.Errorf("%w: %w", errClientGone, context.Canceled), 499, "request_cancelled", "client_closed_request", "cancelled", ""},
		{"untyped", errors.New("boom"), 502, "upstream_error", "upstream_error", "error", ""},
		{"upstream 400", pe(llm.ClassClient, 400, "invalid_request_error"), 400, "invalid_request_error", "upstream_rejected", "upstream_client", ""},
		{"upstream 413", pe(llm.ClassClient, 413, ""), 413, "invalid_request_error", "upstream_rejected", "upstream_client", ""},
		{"upstream client class without a status", pe(llm.ClassClient, 0, ""), 400, "invalid_request_error", "upstream_rejected", "upstream_client", ""},
		{"upstream 401: our key", pe(llm.ClassClient, 401, ""), 502, "upstream_error", "upstream_auth_failed", "upstream_client", ""},
		{"upstream 403: our key", pe(llm.ClassClient, 403, ""), 502, "upstream_error", "upstream_auth_failed", "upstream_client", ""},
		{"upstream 429", &llm.ProviderError{Class: llm.ClassThrottled, Status: 429, RetryAfter: 1500 * time.Millisecond}, 429, "rate_limit_error", "rate_limit_exceeded", "upstream_throttled", "2"},
		{"breaker open", pe(llm.ClassServer, 0, "circuit_open"), 503, "upstream_error", "circuit_open", "upstream_server", ""},
		{"upstream 503", pe(llm.ClassServer, 503, ""), 503, "upstream_error", "upstream_overloaded", "upstream_server", ""},
		{"upstream 529", pe(llm.ClassServer, 529, ""), 503, "upstream_error", "upstream_overloaded", "upstream_server", ""},
		{"upstream 500", pe(llm.ClassServer, 500, ""), 502, "upstream_error", "upstream_server_error", "upstream_server", ""},
		{"client left", pe(llm.ClassCancelled, 0, ""), 499, "request_cancelled", "client_closed_request", "upstream_cancelled", ""},
		{"timed out", &llm.ProviderError{Class: llm.ClassTransport, Err: context.DeadlineExceeded}, 504, "upstream_error", "upstream_timeout", "upstream_transport", ""},
		{"refused", &llm.ProviderError{Class: llm.ClassTransport, Err: errors.New("connection refused")}, 502, "upstream_error", "upstream_unreachable", "upstream_transport", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := apiErrorOf(tc.err)
			assert.NotContains(t, e.msg, "down", "a store's own error stays in the log")
			assert.Equal(t, tc.status, e.status, "status")
			assert.Equal(t, tc.typ, e.typ, "type")
			assert.Equal(t, tc.code, e.code, "code")
			assert.Equal(t, tc.outcome, e.outcome, "outcome")
			w := httptest.NewRecorder()
			e.write(w)
			assert.Equal(t, tc.status, w.Code, "written status")
			assert.Equal(t, tc.retryAfter, w.Header().Get("Retry-After"), "Retry-After")
			assert.JSONEq(t, fmt.Sprintf(`{"message":%q,"type":%q,"param":null,"code":%q}`, e.msg, tc.typ, fmt.Sprint(tc.status)),
				string(e.event())[len(`{"error":`):len(e.event())-1], "in-band stream error event")
		})
	}
}
