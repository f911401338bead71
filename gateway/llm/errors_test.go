package llm_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/brownout-dev/brownout/gateway/llm"
)

// TestErrorClassTable guards the one table of DESIGN.md: which statuses
// are which class, and what each class means for retries, the breaker and
// failover.
func TestErrorClassTable(t *testing.T) {
	statuses := map[int]llm.Class{
		400: llm.ClassClient, 401: llm.ClassClient, 403: llm.ClassClient, 404: llm.ClassClient, 413: llm.ClassClient, 422: llm.ClassClient,
		408: llm.ClassTransport, 429: llm.ClassThrottled,
		500: llm.ClassServer, 502: llm.ClassServer, 503: llm.ClassServer, 504: llm.ClassServer, 529: llm.ClassServer,
	}
	for status, want := range statuses {
		assert.Equal(t, want, llm.ClassOfStatus(status), "ClassOfStatus(%d)", status)
	}
	policy := []struct {
		class                               llm.Class
		retried, breaker, neutral, failover bool
	}{
		{llm.ClassClient, false, false, false, false},
		{llm.ClassThrottled, true, false, true, true},
		{llm.ClassServer, true, true, false, true},
		{llm.ClassTransport, true, true, false, true},
		{llm.ClassCancelled, false, false, true, false},
	}
	for _, p := range policy {
		assert.Equal(t, p.retried, p.class.Retryable(), "%s.Retryable()", p.class)
		assert.Equal(t, p.breaker, p.class.BreakerFailure(), "%s.BreakerFailure()", p.class)
		assert.Equal(t, p.neutral, p.class.BreakerNeutral(), "%s.BreakerNeutral()", p.class)
		assert.Equal(t, p.failover, p.class.FailOver(), "%s.FailOver()", p.class)
	}
}

func TestClassify(t *testing.T) {
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	pe := &llm.ProviderError{Provider: "p", Class: llm.ClassThrottled, Status: 429}
	tests := []struct {
		ctx  context.Context
		err  error
		want llm.Class
	}{
		{context.Background(), nil, ""},
		{context.Background(), pe, llm.ClassThrottled},
		{context.Background(), fmt.Errorf("wrapped: %w", pe), llm.ClassThrottled},
		{cancelled, pe, llm.ClassCancelled},
		{context.Background(), context.DeadlineExceeded, llm.ClassTransport},
		{context.Background(), errors.New("anything else"), llm.ClassTransport},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, llm.Classify(tt.ctx, tt.err), "Classify(%v)", tt.err)
	}
	assert.ErrorIs(t, pe, llm.ErrProvider)
}
