package ledger_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brownout-dev/brownout/gateway/ledger"
)

func TestValidateRejectsBadInput(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(a *ledger.Attempt)
		field  string
	}{
		{"empty request id", func(a *ledger.Attempt) { a.RequestID = "" }, "request_id"},
		{"over-long request id", func(a *ledger.Attempt) { a.RequestID = strings.Repeat("r", ledger.MaxIDLen+1) }, "request_id"},
		{"control character in request id", func(a *ledger.Attempt) { a.RequestID = "req\n1" }, "request_id"},
		{"invalid UTF-8 in tenant", func(a *ledger.Attempt) { a.Tenant = "t\xff" }, "tenant"},
		{"attempt zero", func(a *ledger.Attempt) { a.Attempt = 0 }, "attempt"},
		{"negative input tokens", func(a *ledger.Attempt) { a.Tokens.Input = -1 }, "tokens.input"},
		{"negative reasoning tokens", func(a *ledger.Attempt) { a.Tokens.Reasoning = -5 }, "tokens.reasoning"},
		{"negative cache write tokens", func(a *ledger.Attempt) { a.Tokens.CacheWrite = -1 }, "tokens.cache_write"},
		{"negative cost", func(a *ledger.Attempt) { a.Cost = decimal.RequireFromString("-0.01") }, "cost"},
		{"cost finer than the ledger keeps", func(a *ledger.Attempt) { a.Cost = decimal.RequireFromString("0.0000000000001") }, "cost"},
		{"cost too large for NUMERIC(20,12)", func(a *ledger.Attempt) { a.Cost = decimal.New(1, 8) }, "cost"},
		{"cost too large for NUMERIC(20,12), at the ledger's scale", func(a *ledger.Attempt) {
			a.Cost = decimal.RequireFromString("100000000.000000000000")
		}, "cost"},
		{"unknown outcome", func(a *ledger.Attempt) { a.Outcome = "exploded" }, "outcome"},
		{"empty outcome", func(a *ledger.Attempt) { a.Outcome = "" }, "outcome"},
		{"unknown usage source", func(a *ledger.Attempt) { a.UsageSource = "guessed" }, "usage_source"},
		{"http status out of range", func(a *ledger.Attempt) { a.HTTPStatus = 99 }, "http_status"},
		{"missing start", func(a *ledger.Attempt) { a.StartedAt = time.Time{} }, "started_at"},
		{"finish before start", func(a *ledger.Attempt) { a.FinishedAt = a.StartedAt.Add(-time.Second) }, "finished_at"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := attempt(1)
			tt.mutate(&a)
			err := a.Validate()
			require.Error(t, err)
			assert.True(t, errors.Is(err, ledger.ErrInvalid), "errors.Is(err, ErrInvalid) = false for %v", err)
			var inv *ledger.InvalidError
			require.True(t, errors.As(err, &inv))
			assert.Equal(t, tt.field, inv.Field, "error %q names the wrong field", err)
		})
	}
}

// TestValidateTakesTheLargestCost: NUMERIC(20,12)'s largest value is a
// valid cost.
func TestValidateTakesTheLargestCost(t *testing.T) {
	a := attempt(1)
	a.Cost = decimal.RequireFromString("99999999.999999999999")
	require.NoError(t, a.Validate())
}

func TestValidateNormalises(t *testing.T) {
	a := attempt(1)
	a.ErrorMessage = strings.Repeat("é", ledger.MaxMessageLen) + "\x00"
	a.StartedAt = time.Date(2026, 1, 1, 0, 0, 0, 123456789, time.FixedZone("x", 3600))
	a.FinishedAt = a.StartedAt.Add(time.Nanosecond * 1500)
	require.NoError(t, a.Validate())
	assert.LessOrEqual(t, len(a.ErrorMessage), ledger.MaxMessageLen)
	assert.True(t, strings.HasPrefix(a.ErrorMessage, "éé"))
	assert.NotContains(t, a.ErrorMessage, "\x00")
	assert.Equal(t, time.UTC, a.StartedAt.Location())
	assert.Equal(t, 123456000, a.StartedAt.Nanosecond(), "started_at keeps microseconds only")
	// .123456789 and .123458289 truncate to .123456 and .123458.
	assert.Equal(t, 2*time.Microsecond, a.Latency())

	// A writer that does not say how it knows the usage gets "unknown",
	// never a claim that the vendor reported it.
	a.UsageSource = ""
	require.NoError(t, a.Validate())
	assert.Equal(t, ledger.UsageUnknown, a.UsageSource)
}

func TestOutcomesAreValid(t *testing.T) {
	for _, o := range ledger.Outcomes {
		assert.True(t, o.Valid(), "%q.Valid() = false", o)
	}
	assert.False(t, ledger.Outcome("OK").Valid())
}
