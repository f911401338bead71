package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brownout-dev/brownout/gateway"
	"github.com/brownout-dev/brownout/gateway/ledger"
	"github.com/brownout-dev/brownout/internal/pgtest"
)

// One-token answers from gpt-4o-mini: the worst case of a request is
// (48 input bytes-as-tokens * 0.15 + 1 * 0.60) per million = 0.0000078;
// its real cost is (10 * 0.15 + 1 * 0.60) per million = 0.0000021.
const budgetBody = `{"model":"mini","max_tokens":1,"messages":[{"role":"user","content":"What is the capital of France? One word."}]}`

// budgetWindow is long enough that no test run crosses a window's edge.
const budgetWindow = 1000 * 24 * time.Hour

var (
	budgetLimit = decimal.RequireFromString("0.00005")
	worstCase   = decimal.RequireFromString("0.0000078")
)

// hammer sends waves of 100 concurrent requests, spread over the given
// gateways, until a whole wave is refused; it returns how many were served
// and refused.
func hammer(t *testing.T, rigs []*rig) (served, refused int64) {
	for wave := 0; wave < 20; wave++ {
		var ok, no atomic.Int64
		var wg sync.WaitGroup
		for i := range 100 {
			r := rigs[i%len(rigs)]
			wg.Go(func() {
				status, _, body := post(t, r.server.URL, "", fmt.Sprintf("b%d-%d", wave, i), budgetBody)
				switch status {
				case 200:
					ok.Add(1)
				case 429:
					var e struct{ Error struct{ Code string } }
					_ = json.Unmarshal(body, &e)
					assert.Equal(t, "budget_exceeded", e.Error.Code)
					no.Add(1)
				default:
					t.Errorf("status %d: %s", status, body)
				}
			})
		}
		wg.Wait()
		served += ok.Load()
		refused += no.Load()
		if ok.Load() == 0 {
			return served, refused
		}
	}
	t.Fatal("the budget never ran out")
	return
}

// spentFunc reads a tenant's spend and outstanding reservations in a
// window, from the budget store's own state.
type spentFunc func(tenant string, window time.Time) (spent, reserved decimal.Decimal)

func memorySpent(m *gateway.MemoryBudgets) spentFunc {
	return func(tenant string, window time.Time) (decimal.Decimal, decimal.Decimal) {
		return gateway.MemorySpent(m, tenant, window)
	}
}

// postgresSpent reads the budget_windows table with its own SQL.
func postgresSpent(t *testing.T, pool *pgxpool.Pool) spentFunc {
	return func(tenant string, window time.Time) (decimal.Decimal, decimal.Decimal) {
		var spent, reserved decimal.Decimal
		err := pool.QueryRow(context.Background(), `SELECT spent::text, reserved::text FROM budget_windows
			WHERE tenant = $1 AND window_start = $2`, tenant, window).Scan(&spent, &reserved)
		require.NoError(t, err)
		return spent, reserved
	}
}

func checkBudget(t *testing.T, store ledger.Store, spentOf spentFunc, served, refused int64) {
	t.Helper()
	window := time.Now().UTC().Truncate(budgetWindow)
	spent, reserved := spentOf("acme", window)
	assert.True(t, reserved.IsZero(), "every reservation was settled; %s still held", reserved)
	assert.True(t, spent.LessThanOrEqual(budgetLimit), "spent %s overshoots the limit %s", spent, budgetLimit)
	assert.True(t, spent.GreaterThan(budgetLimit.Sub(worstCase)), "spent %s: the budget was not used up to its last request", spent)
	assert.Positive(t, served)
	assert.Positive(t, refused)

	ok, err := store.Totals(context.Background(), ledger.Query{Tenant: "acme", GroupBy: []ledger.Dimension{ledger.ByOutcome}})
	require.NoError(t, err)
	byOutcome := map[ledger.Outcome]ledger.Total{}
	for _, tot := range ok {
		byOutcome[tot.Outcome] = tot
	}
	assert.Equal(t, served, byOutcome[ledger.OutcomeOK].Attempts)
	assert.Equal(t, refused, byOutcome[ledger.OutcomeRejectedBudget].Attempts, "every refusal is a ledger row")
	assert.True(t, byOutcome[ledger.OutcomeRejectedBudget].Cost.IsZero())
	assert.Equal(t, spent.String(), byOutcome[ledger.OutcomeOK].Cost.String(), "the budget's spend is the ledger's, exactly")
}

func TestBudgetNeverOvershoots(t *testing.T) {
	budgets := map[string]gateway.Budget{"acme": {Limit: budgetLimit, Window: budgetWindow}}
	t.Run("one gateway, memory", func(t *testing.T) {
		store, bs := ledger.NewMemoryStore(), gateway.NewMemoryBudgets()
		r := rigOn(t, startFakes(t, slowOpenAI), store, nil, rigExtras{budgets: budgets, budgetStore: bs})
		served, refused := hammer(t, []*rig{r})
		checkBudget(t, store, memorySpent(bs), served, refused)
	})
	t.Run("two gateways, one Postgres", func(t *testing.T) {
		url := pgtest.New(t, pgtest.Template{Name: "ledger", Setup: ledger.Migrate})
		store := ledger.NewPostgresStore(pgtest.Pool(t, url))
		fakes := startFakes(t, slowOpenAI)
		a := rigOn(t, fakes, store, nil, rigExtras{budgets: budgets, budgetStore: gateway.NewPostgresBudgets(pgtest.Pool(t, url))})
		b := rigOn(t, fakes, store, nil, rigExtras{budgets: budgets, budgetStore: gateway.NewPostgresBudgets(pgtest.Pool(t, url))})
		served, refused := hammer(t, []*rig{a, b})
		checkBudget(t, store, postgresSpent(t, pgtest.Pool(t, url)), served, refused)
	})
}
