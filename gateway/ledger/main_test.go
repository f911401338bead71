package ledger_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/require"

	"github.com/brownout-dev/brownout/gateway/ledger"
	"github.com/brownout-dev/brownout/gateway/llm"
	"github.com/brownout-dev/brownout/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// ledgerDB is the template of every Postgres test database: the migrated schema.
var ledgerDB = pgtest.Template{Name: "ledger", Setup: ledger.Migrate}

var t0 = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

// attempt returns a valid attempt whose fields vary with i, with a cost that
// needs all 12 decimal places: 0.000001234567 + i*0.000000000001.
func attempt(i int) ledger.Attempt {
	providers := []string{"anthropic", "gemini", "openai"}
	outcomes := []ledger.Outcome{ledger.OutcomeOK, ledger.OutcomeOK, ledger.OutcomeOK, ledger.OutcomeThrottled, ledger.OutcomeServerError}
	sources := []ledger.UsageSource{ledger.UsageReported, ledger.UsageEstimated, ledger.UsageReported, ledger.UsageReported}
	start := t0.Add(time.Duration(i) * time.Millisecond)
	return ledger.Attempt{
		RequestID:      fmt.Sprintf("req-%06d", i/2),
		Attempt:        i%2 + 1,
		IdempotencyKey: fmt.Sprintf("idem-%d", i/2),
		Tenant:         fmt.Sprintf("tenant-%d", i%3),
		Route:          "chat",
		Provider:       providers[i%3],
		Model:          "model-" + providers[i%3],
		Outcome:        outcomes[i%5],
		HTTPStatus:     200,
		Tokens:         llm.Usage{Input: int64(10 + i%7), Output: int64(4 + i%5), Reasoning: int64(i % 24), CacheRead: int64(i % 2), CacheWrite: 0, CacheWrite1h: int64(i % 3)},
		UsageSource:    sources[i%4],
		Cost:           decimal.RequireFromString("0.000001234567").Add(decimal.New(int64(i), -12)),
		StartedAt:      start,
		FinishedAt:     start.Add(time.Duration(100+i%50) * time.Millisecond),
		ProviderReqID:  fmt.Sprintf("prov-%d", i),
	}
}

func attempts(from, n int) []ledger.Attempt {
	out := make([]ledger.Attempt, n)
	for i := range out {
		out[i] = attempt(from + i)
	}
	return out
}

// sumCost is the exact total cost of as, computed in Go.
func sumCost(as []ledger.Attempt) decimal.Decimal {
	sum := decimal.Zero
	for _, a := range as {
		sum = sum.Add(a.Cost)
	}
	return sum
}

func newPostgresStore(t *testing.T) *ledger.PostgresStore {
	t.Helper()
	return ledger.NewPostgresStore(pgtest.NewPool(t, ledgerDB))
}

// grandTotal is the single Total over every attempt in s.
func grandTotal(t *testing.T, s ledger.Store) ledger.Total {
	t.Helper()
	totals, err := s.Totals(context.Background(), ledger.Query{})
	require.NoError(t, err)
	if len(totals) == 0 {
		return ledger.Total{Cost: decimal.Zero}
	}
	require.Len(t, totals, 1)
	return totals[0]
}
