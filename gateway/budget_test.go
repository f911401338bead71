package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brownout-dev/brownout/fakeprovider"
	"github.com/brownout-dev/brownout/gateway"
	"github.com/brownout-dev/brownout/gateway/gatewaytest"
	"github.com/brownout-dev/brownout/gateway/ledger"
	"github.com/brownout-dev/brownout/gateway/llm"
	"github.com/brownout-dev/brownout/gateway/pricing"
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
// and refused. keyed sends each with an Idempotency-Key of its own; settled,
// if not nil, runs after each wave (settlements written behind land).
func hammer(t *testing.T, rigs []*rig, keyed bool, settled func()) (served, refused int64) {
	for wave := 0; wave < 20; wave++ {
		var ok, no atomic.Int64
		var wg sync.WaitGroup
		for i := range 100 {
			r := rigs[i%len(rigs)]
			wg.Go(func() {
				id, key := fmt.Sprintf("b%d-%d", wave, i), ""
				if keyed {
					key = id
				}
				status, _, body := post(t, r.server.URL, key, id, budgetBody)
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
		if settled != nil {
			settled()
		}
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

	checkLedger(t, store, spent, served, refused)
}

// checkLedger: every served request and every refusal is a ledger row,
// and the budget's spend is the ledger's.
func checkLedger(t *testing.T, store ledger.Store, spent decimal.Decimal, served, refused int64) {
	t.Helper()
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
		served, refused := hammer(t, []*rig{r}, false, nil)
		checkBudget(t, store, memorySpent(bs), served, refused)
	})
	t.Run("two gateways, one Postgres", func(t *testing.T) {
		url := pgtest.New(t, pgtest.Template{Name: "ledger", Setup: ledger.Migrate})
		store := ledger.NewPostgresStore(pgtest.Pool(t, url))
		fakes := startFakes(t, slowOpenAI)
		a := rigOn(t, fakes, store, nil, rigExtras{budgets: budgets, budgetStore: gateway.NewPostgresBudgets(pgtest.Pool(t, url))})
		b := rigOn(t, fakes, store, nil, rigExtras{budgets: budgets, budgetStore: gateway.NewPostgresBudgets(pgtest.Pool(t, url))})
		served, refused := hammer(t, []*rig{a, b}, false, nil)
		checkBudget(t, store, postgresSpent(t, pgtest.Pool(t, url)), served, refused)
	})
	// Each request's key claimed with its reservation in one statement, and
	// the settlements and completions written behind, in batches.
	t.Run("two gateways, one Postgres, keys and writes behind", func(t *testing.T) {
		url := pgtest.New(t, pgtest.Template{Name: "ledger", Setup: ledger.Migrate})
		store := ledger.NewPostgresStore(pgtest.Pool(t, url))
		fakes := startFakes(t, slowOpenAI)
		var rigs []*rig
		var behind []*gateway.WriteBehind
		for range 2 {
			pool := pgtest.Pool(t, url)
			wb := gateway.NewWriteBehind(pgtest.Pool(t, url), gateway.WriteBehindSettings{})
			t.Cleanup(func() { _ = wb.Close(context.Background()) })
			rigs = append(rigs, rigOn(t, fakes, store, nil, rigExtras{budgets: budgets,
				idempotency: gateway.NewPostgresIdempotency(pool, gateway.IdempotencySettings{}).WritingBehind(wb),
				budgetStore: gateway.NewPostgresBudgets(pool).WritingBehind(wb)}))
			behind = append(behind, wb)
		}
		// A wave's settlements are queued before its answers; until they land
		// their reservations are held, and the next wave would be refused
		// what they no longer need.
		served, refused := hammer(t, rigs, true, func() {
			for _, wb := range behind {
				require.NoError(t, wb.Flush(context.Background()))
			}
		})
		for i, r := range rigs {
			r.server.Close() // every handler has queued its writes
			require.NoError(t, behind[i].Flush(context.Background()))
			assert.Zero(t, behind[i].Stats().Lost)
		}
		checkBudget(t, store, postgresSpent(t, pgtest.Pool(t, url)), served, refused)
	})
}

// TestBudgetSlicesNeverOvershoot: three gateways on one Postgres, the
// tenant's budget sliced (each gateway leases slices of two worst cases
// and reserves against them in memory). The slices come out of the shared
// total, so together they never pass the limit; the tail of the budget,
// under a slice, is still served request by request; and every slice goes
// back when its gateway closes. (Seen red with a slice that hands out one
// reservation past its size: nine requests reserved at once.)
func TestBudgetSlicesNeverOvershoot(t *testing.T) {
	budgets := map[string]gateway.Budget{"acme": {Limit: budgetLimit, Window: budgetWindow,
		Slice: worstCase.Mul(decimal.NewFromInt(2)), SliceTTL: time.Minute}}
	url := pgtest.New(t, pgtest.Template{Name: "ledger", Setup: ledger.Migrate})
	store := ledger.NewPostgresStore(pgtest.Pool(t, url))
	fakes := startFakes(t, slowOpenAI)
	var rigs []*rig
	for range 3 {
		rigs = append(rigs, rigOn(t, fakes, store, nil, rigExtras{budgets: budgets, budgetStore: gateway.NewPostgresBudgets(pgtest.Pool(t, url))}))
	}
	served, refused := hammer(t, rigs, false, nil)
	// The fake answers each call in 300ms, so calls that arrive within less
	// than that of one another were all reserved at once: never more than
	// the limit's worth of worst cases.
	journal := fakes["openai"].Journal()
	most := 0
	for i, e := range journal {
		n := 0
		for _, f := range journal[i:] {
			if f.At-e.At < 290*time.Millisecond {
				n++
			}
		}
		most = max(most, n)
	}
	fits := budgetLimit.Div(worstCase).IntPart()
	assert.LessOrEqual(t, int64(most), fits, "requests reserved at once; the limit holds %d worst cases", fits)
	spentOf := postgresSpent(t, pgtest.Pool(t, url))
	window := time.Now().UTC().Truncate(budgetWindow)
	_, reserved := spentOf("acme", window)
	assert.True(t, reserved.IsPositive(), "the gateways hold their slices until they close")
	for _, r := range rigs {
		r.gw.Close()
	}
	spent, reserved := spentOf("acme", window)
	assert.True(t, reserved.IsZero(), "every slice went back; %s still held", reserved)
	assert.True(t, spent.LessThanOrEqual(budgetLimit), "spent %s overshoots the limit %s", spent, budgetLimit)
	// What can go unused: under one worst case in each gateway's last slice,
	// and under one in the store.
	assert.True(t, spent.GreaterThan(budgetLimit.Sub(worstCase.Mul(decimal.NewFromInt(4)))), "spent %s: the budget was not used", spent)
	checkLedger(t, store, spent, served, refused)
}

// TestBudgetSliceGoesBackAfterItsTTL, in virtual time: a sliced tenant's
// requests reserve on one slice (one reservation in the store for all of
// them); a retry's extra reservation goes to the store directly; once the
// slice's TTL has passed, the store holds nothing reserved and has spent
// exactly what the ledger metered.
func TestBudgetSliceGoesBackAfterItsTTL(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		model := fakeprovider.Model{Answers: []fakeprovider.Answer{{Text: "Paris", Tokens: 1}},
			Price: &fakeprovider.ListPrice{Input: decimal.RequireFromString("1"), Output: decimal.RequireFromString("10")}}
		fake := func(faults ...fakeprovider.Fault) fakeprovider.Config {
			return fakeprovider.Config{Vendor: fakeprovider.OpenAI, Seed: 1, Faults: faults, Models: map[string]fakeprovider.Model{"m": model}}
		}
		budgets := &recordingBudgets{MemoryBudgets: gateway.NewMemoryBudgets()}
		limit, slice := pricing.MustRate("1.00"), pricing.MustRate("0.50")
		g, err := gatewaytest.New(gatewaytest.Config{
			Fakes: map[string]fakeprovider.Config{"a": fake(fakeprovider.Fault{Kind: fakeprovider.FaultServerError, Status: 503, Count: 1}), "b": fake()},
			Gateway: gateway.Config{Routes: map[string][]string{"chat": {"a/m", "b/m"}},
				Prices: gateway.PricesConfig{Models: map[string]pricing.Price{"m": {Input: pricing.MustRate("1"), Output: pricing.MustRate("10")}}},
				Retry:  gateway.RetrySettings{MaxAttempts: 2},
				Tenants: []gateway.TenantConfig{{Name: "acme", APIKeySHA256: fmt.Sprintf("%x", gateway.HashKey("k")),
					BudgetUSD: &limit, BudgetWindow: time.Hour, BudgetSliceUSD: &slice, BudgetSliceTTL: 10 * time.Second}}},
			BudgetStore: budgets})
		require.NoError(t, err)
		defer g.Close()
		window := time.Now().UTC().Truncate(time.Hour)
		for range 3 {
			_, err := g.Complete(context.Background(), &gateway.Request{Tenant: "acme", Route: "chat",
				LLM: llm.Request{Messages: []llm.Message{{Role: "user", Content: "What is the capital of France? One word."}}}})
			require.NoError(t, err)
		}
		// The first request's 503 was retried: its second attempt reserved
		// one worst case (by hand, as in TestEveryAttemptReservesItsWorstCase)
		// on the store, beside the one slice.
		assert.Equal(t, []string{"0.5", "0.041008"}, budgets.reserved)
		spent, reserved := gateway.MemorySpent(budgets.MemoryBudgets, "acme", window)
		assert.Equal(t, "0.5", reserved.String(), "the slice is held while it lives")
		assert.True(t, spent.IsPositive(), "the retried request's cost, settled on the store's own reservation first")

		time.Sleep(10 * time.Second)
		synctest.Wait()
		spent, reserved = gateway.MemorySpent(budgets.MemoryBudgets, "acme", window)
		assert.True(t, reserved.IsZero(), "%s still reserved after the slice's TTL", reserved)
		totals, err := g.Store.Totals(context.Background(), ledger.Query{Tenant: "acme"})
		require.NoError(t, err)
		require.Len(t, totals, 1)
		assert.Equal(t, totals[0].Cost.String(), spent.String(), "the budget's spend is the ledger's")
		inv := g.Invoices()
		assert.Equal(t, inv["a"].Totals.Cost.Add(inv["b"].Totals.Cost).String(), spent.String(), "and the vendors' invoices")
	})
}

// recordingBudgets records the amounts a MemoryBudgets reserved.
type recordingBudgets struct {
	*gateway.MemoryBudgets
	mu       sync.Mutex
	reserved []string
}

func (r *recordingBudgets) Reserve(ctx context.Context, tenant string, w time.Time, amount, limit decimal.Decimal) (bool, error) {
	ok, err := r.MemoryBudgets.Reserve(ctx, tenant, w, amount, limit)
	if ok {
		r.mu.Lock()
		r.reserved = append(r.reserved, amount.String())
		r.mu.Unlock()
	}
	return ok, err
}

// TestEveryAttemptReservesItsWorstCase: a retry or a failover bills like
// the first attempt, so each reserves its own worst case before it is
// made; one the budget cannot cover ends the request as over budget. The
// worst case of one attempt, by hand: a prompt of 40 characters reserved as
// 40+8 tokens at $1 per million, and the default 4096 max_tokens at $10:
// 0.000048 + 0.04096 = $0.041008.
func TestEveryAttemptReservesItsWorstCase(t *testing.T) {
	setup := func(t *testing.T, limit string) (*gatewaytest.Gateway, *recordingBudgets) {
		model := fakeprovider.Model{Answers: []fakeprovider.Answer{{Text: "Paris", Tokens: 1}},
			Price: &fakeprovider.ListPrice{Input: decimal.RequireFromString("1"), Output: decimal.RequireFromString("10")}}
		fake := func(faults ...fakeprovider.Fault) fakeprovider.Config {
			return fakeprovider.Config{Vendor: fakeprovider.OpenAI, Seed: 1, Faults: faults, Models: map[string]fakeprovider.Model{"m": model}}
		}
		budgets := &recordingBudgets{MemoryBudgets: gateway.NewMemoryBudgets()}
		l := pricing.MustRate(limit)
		g, err := gatewaytest.New(gatewaytest.Config{
			Fakes: map[string]fakeprovider.Config{"a": fake(fakeprovider.Fault{Kind: fakeprovider.FaultServerError, Status: 503}), "b": fake()},
			Gateway: gateway.Config{Routes: map[string][]string{"chat": {"a/m", "b/m"}},
				Prices:  gateway.PricesConfig{Models: map[string]pricing.Price{"m": {Input: pricing.MustRate("1"), Output: pricing.MustRate("10")}}},
				Retry:   gateway.RetrySettings{MaxAttempts: 2},
				Tenants: []gateway.TenantConfig{{Name: "acme", APIKeySHA256: fmt.Sprintf("%x", gateway.HashKey("k")), BudgetUSD: &l, BudgetWindow: time.Hour}}},
			BudgetStore: budgets})
		require.NoError(t, err)
		t.Cleanup(g.Close)
		return g, budgets
	}
	ask := func(g *gatewaytest.Gateway) (*gateway.Request, error) {
		req := &gateway.Request{Tenant: "acme", Route: "chat", LLM: llm.Request{Messages: []llm.Message{{Role: "user", Content: "What is the capital of France? One word."}}}}
		_, err := g.Complete(context.Background(), req)
		return req, err
	}
	t.Run("three attempts, three reservations", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			g, budgets := setup(t, "1.00")
			req, err := ask(g)
			require.NoError(t, err)
			assert.Equal(t, []string{"a:server_error", "a:server_error", "b:ok"}, outcomesOf(t, g.Store, req.ID))
			assert.Equal(t, []string{"0.041008", "0.041008", "0.041008"}, budgets.reserved)
		})
	})
	t.Run("the budget covers two attempts, not a third", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			g, budgets := setup(t, "0.10")
			req, err := ask(g)
			require.ErrorIs(t, err, gateway.ErrBudgetExceeded)
			assert.Equal(t, []string{"a:server_error", "a:server_error", "b:rejected_budget"}, outcomesOf(t, g.Store, req.ID))
			assert.Equal(t, []string{"0.041008", "0.041008"}, budgets.reserved)
		})
	})
}

// firstReserveTogether is a budget store whose first reservation returns
// once every store sharing both has taken its own.
type firstReserveTogether struct {
	gateway.BudgetStore
	first sync.Once
	both  *sync.WaitGroup
}

func (f *firstReserveTogether) Reserve(ctx context.Context, tenant string, w time.Time, amount, limit decimal.Decimal) (bool, error) {
	ok, err := f.BudgetStore.Reserve(ctx, tenant, w, amount, limit)
	f.first.Do(func() {
		f.both.Done()
		f.both.Wait()
	})
	return ok, err
}

// TestBudgetHoldsAcrossBilledRetriesAndFailover: failed attempts are
// billed too (a body cut mid-way bills its tokens; the gateway meters its
// estimate), and a request may make six of them (two targets, three
// attempts each), more than its first reservation covers. Every attempt
// reserves its own worst case first, so a budget sized for the first
// attempts ends each request after them, over budget, and the spend never
// passes the limit: one gateway with one request, and two gateways on one
// Postgres with one each. Without the per-attempt reservation both
// overshoot (seen: 0.000801 of 0.000481 for one request, 0.001322 of
// 0.000962 for two).
func TestBudgetHoldsAcrossBilledRetriesAndFailover(t *testing.T) {
	// One attempt's worst case, by hand: the 40-character prompt reserved
	// as 48 tokens at $10 a million, and max_tokens 1 at $1: $0.000481.
	const prompt = "What is the capital of France? One word."
	worst := decimal.RequireFromString("0.000481")
	price := &fakeprovider.ListPrice{Input: decimal.RequireFromString("10"), Output: decimal.RequireFromString("1")}
	model := fakeprovider.Model{Answers: []fakeprovider.Answer{{Text: "Paris", Tokens: 1}}, TTFTms: fakeprovider.Fixed(5), Price: price}
	fakes := func(t *testing.T) map[string]*fakeprovider.Server {
		out := map[string]*fakeprovider.Server{}
		for i, f := range []fakeprovider.Fault{
			{Kind: fakeprovider.FaultTruncate},           // a: every answer cut
			{Kind: fakeprovider.FaultTruncate, Count: 2}, // b: the first two cut
		} {
			s := fakeprovider.NewServer(fakeprovider.Config{Vendor: fakeprovider.OpenAI, Seed: uint64(i + 1), Models: map[string]fakeprovider.Model{"m": model},
				Faults: []fakeprovider.Fault{f}})
			t.Cleanup(s.Close)
			out[string(rune('a'+i))] = s
		}
		return out
	}
	gw := func(t *testing.T, servers map[string]*fakeprovider.Server, store ledger.Store, budgets gateway.BudgetStore, limit decimal.Decimal) *gatewaytest.Gateway {
		l := pricing.Rate{Decimal: limit}
		g, err := gatewaytest.New(gatewaytest.Config{Servers: servers, Store: store, BudgetStore: budgets,
			Gateway: gateway.Config{Routes: map[string][]string{"chat": {"a/m", "b/m"}},
				Prices:  gateway.PricesConfig{Models: map[string]pricing.Price{"m": {Input: pricing.MustRate("10"), Output: pricing.MustRate("1")}}},
				Retry:   gateway.RetrySettings{MaxAttempts: 3, BaseBackoff: time.Millisecond, MaxBackoff: time.Millisecond},
				Tenants: []gateway.TenantConfig{{Name: "acme", APIKeySHA256: fmt.Sprintf("%x", gateway.HashKey("k")), BudgetUSD: &l, BudgetWindow: budgetWindow}}}})
		require.NoError(t, err)
		t.Cleanup(g.Close)
		return g
	}
	run := func(t *testing.T, gws []*gatewaytest.Gateway, store ledger.Store, spentOf spentFunc, limit decimal.Decimal) {
		var wg sync.WaitGroup
		for _, g := range gws {
			wg.Go(func() {
				_, err := g.Complete(context.Background(), &gateway.Request{Tenant: "acme", Route: "chat",
					LLM: llm.Request{MaxTokens: 1, Messages: []llm.Message{{Role: "user", Content: prompt}}}})
				assert.ErrorIs(t, err, gateway.ErrBudgetExceeded, "the second attempt's reservation does not fit")
			})
		}
		wg.Wait()
		var rows exportBuffer
		_, err := store.Export(context.Background(), ledger.Query{Tenant: "acme"}, &rows)
		require.NoError(t, err)
		total, billedFailures := decimal.Zero, 0
		for _, a := range rows.attempts(t) {
			total = total.Add(a.Cost)
			if a.Outcome != ledger.OutcomeOK && a.Cost.IsPositive() {
				billedFailures++
			}
		}
		assert.Equal(t, len(gws), billedFailures, "one billed failure a request, then the budget")
		spent, reserved := spentOf("acme", time.Now().UTC().Truncate(budgetWindow))
		assert.True(t, reserved.IsZero(), "every reservation settled; %s still held", reserved)
		assert.True(t, total.LessThanOrEqual(limit), "the ledger's spend %s passes the budget %s", total, limit)
		assert.Equal(t, total.String(), spent.String(), "the budget's spend is the ledger's, every attempt included")
	}
	t.Run("one gateway, memory", func(t *testing.T) {
		store, bs := ledger.NewMemoryStore(), gateway.NewMemoryBudgets()
		run(t, []*gatewaytest.Gateway{gw(t, fakes(t), store, bs, worst)}, store, memorySpent(bs), worst)
	})
	t.Run("two gateways, one Postgres", func(t *testing.T) {
		url := pgtest.New(t, pgtest.Template{Name: "ledger", Setup: ledger.Migrate})
		store := ledger.NewPostgresStore(pgtest.Pool(t, url))
		servers, limit := fakes(t), worst.Mul(decimal.NewFromInt(2))
		// Both first reservations are held before either first attempt: the
		// requests overlap, as two gateways' do under load. (Without this,
		// a loaded machine once ran one request to its end before the other
		// began, and its second attempt fitted the budget then: three billed
		// failures, the spend still within the limit.)
		both := &sync.WaitGroup{}
		both.Add(2)
		a := gw(t, servers, store, &firstReserveTogether{BudgetStore: gateway.NewPostgresBudgets(pgtest.Pool(t, url)), both: both}, limit)
		b := gw(t, servers, store, &firstReserveTogether{BudgetStore: gateway.NewPostgresBudgets(pgtest.Pool(t, url)), both: both}, limit)
		run(t, []*gatewaytest.Gateway{a, b}, store, postgresSpent(t, pgtest.Pool(t, url)), limit)
	})
}

// TestReservationsHoldTheirRowForNoDiskWrite: a tenant's budget window is
// one row, which every reservation of the tenant locks. With every commit
// that waits for durability held (pgtest.HoldCommits), a reservation alone
// in its process commits as usual, holding the row until it is durable,
// and two that arrive while it is in flight wait on its lock; once its
// wait ends, those two, by Reserve and by a key's claim, each reach their
// own wait for durability without holding the row: neither waits on the
// other's lock, and neither returns before its commit is durable. Once
// commits are released all have reserved. (Seen red with the statement
// committed as usual when busy: the last waited on a lock; with the flush
// left out, mutant 25: the second returned while commits were held; and
// with the busy form taken alone too: nothing waited on the first's row.)
func TestReservationsHoldTheirRowForNoDiskWrite(t *testing.T) {
	srv := pgtest.Start(t)
	url := srv.NewDatabase(t, pgtest.Template{Name: "ledger", Setup: ledger.Migrate})
	pool := pgtest.Pool(t, url)
	watch := pgtest.Pool(t, srv.Admin())
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var db string
	require.NoError(t, pool.QueryRow(ctx, `SELECT current_database()`).Scan(&db))
	budgets := gateway.NewPostgresBudgets(pool)
	keys := gateway.NewPostgresIdempotency(pool, gateway.IdempotencySettings{})
	// A tenant and a window no other test reserves on: a reservation of
	// the same in flight elsewhere in the process would make the first
	// here release its row early.
	tenant, window := "held-commits", time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)
	one, limit := decimal.NewFromInt(1), decimal.NewFromInt(100)
	// The window's row exists before commits are held (its first
	// reservation inserts it).
	ok, err := budgets.Reserve(ctx, tenant, window, one, limit)
	require.NoError(t, err)
	require.True(t, ok)

	type reserver struct {
		name    string
		reserve func(key string) (bool, error)
	}
	byReserve := reserver{"Reserve", func(string) (bool, error) { return budgets.Reserve(ctx, tenant, window, one, limit) }}
	byClaim := reserver{"a key's claim", func(key string) (bool, error) {
		claimed, reserved, err := gateway.ClaimReserving(ctx, keys, tenant, key, window, one, limit)
		return claimed && reserved, err
	}}
	type result struct {
		name string
		ok   bool
		err  error
	}
	// await polls the database's backends until want says yes, failing if
	// a reservation returns meanwhile (its commit was held) or it takes 20 s.
	await := func(done chan result, what string, want func(durable, lock int) bool) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			select {
			case r := <-done:
				t.Fatalf("%s returned (%v, %v) while commits were held: before its reservation was durable", r.name, r.ok, r.err)
			default:
			}
			var durable, lock int
			require.NoError(t, watch.QueryRow(ctx, `SELECT count(*) FILTER (WHERE wait_event = 'SyncRep'),
				count(*) FILTER (WHERE wait_event_type = 'Lock') FROM pg_stat_activity WHERE datname = $1`, db).Scan(&durable, &lock))
			if want(durable, lock) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: never seen; %d waiting for durability, %d on a lock", what, durable, lock)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	reserved := 1
	for round, pair := range [][2]reserver{{byReserve, byClaim}, {byClaim, byReserve}} {
		release := srv.HoldCommits(t)
		first, done := make(chan result, 1), make(chan result, 2)
		go func() {
			ok, err := pair[0].reserve(fmt.Sprintf("first-%d", round))
			first <- result{"the first " + pair[0].name, ok, err}
		}()
		await(first, fmt.Sprintf("round %d: the first %s, alone, waiting for durability", round, pair[0].name),
			func(durable, _ int) bool { return durable == 1 })
		for i, r := range pair {
			go func() {
				ok, err := r.reserve(fmt.Sprintf("busy-%d-%d", round, i))
				done <- result{r.name, ok, err}
			}()
		}
		await(done, fmt.Sprintf("round %d: two reservations waiting on the first's row, which it holds until durable", round),
			func(_, lock int) bool { return lock == 2 })
		// Ending the first one's wait leaves it committed, and its row free.
		_, err := watch.Exec(ctx, `SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND wait_event = 'SyncRep'`, db)
		require.NoError(t, err)
		r := <-first
		require.NoError(t, r.err, r.name)
		require.True(t, r.ok, r.name)
		await(done, fmt.Sprintf("round %d: %s and %s both waiting for durability, neither on a lock", round, pair[0].name, pair[1].name),
			func(durable, lock int) bool { return durable == 2 && lock == 0 })
		release()
		for range pair {
			r := <-done
			require.NoError(t, r.err, r.name)
			assert.True(t, r.ok, "%s reserved once its commit was durable", r.name)
		}
		reserved += 3
	}
	var got decimal.Decimal
	require.NoError(t, pool.QueryRow(ctx, `SELECT reserved FROM budget_windows WHERE tenant = $1 AND window_start = $2`, tenant, window).Scan(&got))
	assert.Equal(t, decimal.NewFromInt(int64(reserved)).String(), got.String(), "every reservation is counted on the row")
}

// heldCommits is a fresh ledger database on a Postgres of the test's own,
// and a func that holds every commit that waits for durability
// (pgtest.HoldCommits) until its release.
func heldCommits(t *testing.T) (*pgxpool.Pool, func() commitsHeld) {
	srv := pgtest.Start(t)
	pool := pgtest.Pool(t, srv.NewDatabase(t, pgtest.Template{Name: "ledger", Setup: ledger.Migrate}))
	watch := pgtest.Pool(t, srv.Admin())
	var db string
	require.NoError(t, pool.QueryRow(context.Background(), `SELECT current_database()`).Scan(&db))
	return pool, func() commitsHeld {
		release := srv.HoldCommits(t)
		return commitsHeld{now: release, await: func(what string) {
			t.Helper()
			require.Eventually(t, func() bool {
				var durable int
				require.NoError(t, watch.QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_activity
					WHERE datname = $1 AND wait_event = 'SyncRep'`, db).Scan(&durable))
				return durable == 1
			}, time.Minute, 5*time.Millisecond, "%s waiting for durability", what)
		}}
	}
}

// commitsHeld is commits held: await waits until one (what) waits for
// durability, now releases them all.
type commitsHeld struct {
	await func(what string)
	now   func()
}

// TestAReservationOutlivesItsClientsCancel: a client that goes away while
// its request's reservation is on its way to Postgres leaves nothing held.
// The reservation's commit is held (pgtest.HoldCommits) when the client
// cancels; a round trip cut then would have committed with no one to
// settle it (Postgres commits a transaction whose wait for durability is
// cancelled), leaving the reservation held until its window closed. The
// gateway lets the round trip finish, learns it reserved, and settles it.
// (Seen red with the round trip on the client's context: the request's
// worst case, $0.000848, still reserved.)
func TestAReservationOutlivesItsClientsCancel(t *testing.T) {
	pool, holdCommits := heldCommits(t)
	limit := pricing.MustRate("1")
	store := ledger.NewMemoryStore()
	g, err := gatewaytest.New(gatewaytest.Config{Store: store,
		Fakes: map[string]fakeprovider.Config{"a": {Vendor: fakeprovider.OpenAI, Seed: 1, Models: map[string]fakeprovider.Model{"m": {
			Answers: []fakeprovider.Answer{{Text: "Paris"}}}}}},
		Gateway: gateway.Config{Routes: map[string][]string{"chat": {"a/m"}},
			Prices: gateway.PricesConfig{Models: map[string]pricing.Price{"m": {Input: pricing.MustRate("1"), Output: pricing.MustRate("10")}}},
			// A tenant no other test reserves for: a reservation of its
			// window in flight elsewhere in the process would change how
			// this one commits.
			Tenants: []gateway.TenantConfig{{Name: "gone-client", APIKeySHA256: fmt.Sprintf("%x", gateway.HashKey("k")),
				BudgetUSD: &limit, BudgetWindow: time.Hour}}},
		BudgetStore: gateway.NewPostgresBudgets(pool)})
	require.NoError(t, err)
	t.Cleanup(g.Close)

	release := holdCommits()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := g.Complete(ctx, &gateway.Request{Tenant: "gone-client", Route: "chat", LLM: llm.Request{MaxTokens: 80,
			Messages: []llm.Message{{Role: "user", Content: "What is the capital of France? One word."}}}})
		done <- err
	}()
	release.await("the reservation")
	cancel() // the client goes away
	release.now()
	require.ErrorIs(t, <-done, context.Canceled, "the request ends with its client")

	var spent, reserved decimal.Decimal
	require.NoError(t, pool.QueryRow(context.Background(), `SELECT spent::text, reserved::text FROM budget_windows
		WHERE tenant = 'gone-client'`).Scan(&spent, &reserved))
	assert.True(t, reserved.IsZero(), "%s still reserved", reserved)
	g.Close() // the ledger flushed
	metered, err := store.Totals(context.Background(), ledger.Query{Tenant: "gone-client"})
	require.NoError(t, err)
	require.Len(t, metered, 1)
	assert.Equal(t, metered[0].Cost.String(), spent.String(), "the budget spent what the ledger metered")
	assert.True(t, spent.IsZero(), "the attempt was not made once its client had left: %s", spent)
}

// TestARefusedDurableCommitEndsEarlyRelease: where EXECUTE on
// pg_logical_emit_message is revoked, the busy reservation that meets the
// refusal fails with an error that says so (its own reservation committed,
// and so held, as a lost answer's would be), and every later one, busy or
// not, commits as usual and succeeds: a hardened database costs a busy
// tenant throughput, not every request. (Seen red with the refusal not
// remembered: the next reservation failed too.)
func TestARefusedDurableCommitEndsEarlyRelease(t *testing.T) {
	t.Cleanup(gateway.ResetEarlyRelease)
	srv := pgtest.Start(t) // a role of its own: the server is this test's
	url := srv.NewDatabase(t, pgtest.Template{Name: "ledger", Setup: ledger.Migrate})
	ctx := context.Background()
	admin := pgtest.Pool(t, url)
	for _, sql := range []string{
		`CREATE ROLE hardened LOGIN PASSWORD 'hardened'`,
		`GRANT SELECT, INSERT, UPDATE ON budget_windows TO hardened`,
		`DO $$ DECLARE f regprocedure; BEGIN
			FOR f IN SELECT oid::regprocedure FROM pg_proc WHERE proname = 'pg_logical_emit_message' LOOP
				EXECUTE 'REVOKE EXECUTE ON FUNCTION ' || f || ' FROM PUBLIC';
			END LOOP; END $$`,
	} {
		_, err := admin.Exec(ctx, sql)
		require.NoError(t, err, sql)
	}
	cfg, err := pgxpool.ParseConfig(url)
	require.NoError(t, err)
	cfg.ConnConfig.User, cfg.ConnConfig.Password = "hardened", "hardened"
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	budgets := gateway.NewPostgresBudgets(pool)
	tenant, window := "hardened", time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)
	one, limit := decimal.NewFromInt(1), decimal.NewFromInt(100)

	busy := gateway.BusyRow(tenant, window) // another reservation in flight
	defer busy()
	_, err = budgets.Reserve(ctx, tenant, window, one, limit)
	require.ErrorContains(t, err, "EXECUTE revoked")
	assert.False(t, gateway.EarlyRelease(), "the refusal is remembered")
	for range 2 {
		ok, err := budgets.Reserve(ctx, tenant, window, one, limit)
		require.NoError(t, err, "a reservation after the refusal, its row busy, commits as usual")
		assert.True(t, ok)
	}
	var reserved decimal.Decimal
	require.NoError(t, admin.QueryRow(ctx, `SELECT reserved FROM budget_windows WHERE tenant = $1 AND window_start = $2`, tenant, window).Scan(&reserved))
	assert.Equal(t, "3", reserved.String(), "the refused one's reservation committed, and is held")
}

// acquireWatch counts a pool's round trips (roundTrips) and says on
// acquiring when a caller starts waiting for one of its connections.
type acquireWatch struct {
	roundTrips
	waiting chan struct{}
}

func (a *acquireWatch) TraceAcquireStart(ctx context.Context, p *pgxpool.Pool, d pgxpool.TraceAcquireStartData) context.Context {
	select {
	case a.waiting <- struct{}{}:
	default:
	}
	return a.roundTrips.TraceAcquireStart(ctx, p, d)
}

// TestAClientGoneWhileWaitingForAConnectionSendsNothing: a claim or a
// reservation runs to its end once sent, whatever its client does
// (TestAClaimOutlivesItsClientsCancel), but one whose client goes away
// while it waits for a pooled connection has sent nothing, so it stops
// there: under overload, with every connection busy and clients giving
// up, requests no one waits for must not queue for the database, then
// claim, reserve and give it all back. The pool has one connection, held
// by the test. (Seen red with the wait for the connection uncut too: each
// waited out the 10 s bound and failed with its deadline, not the cancel.)
func TestAClientGoneWhileWaitingForAConnectionSendsNothing(t *testing.T) {
	watch := &acquireWatch{waiting: make(chan struct{}, 1)}
	pool := tracedPool(t, pgtest.New(t, pgtest.Template{Name: "ledger", Setup: ledger.Migrate}), watch, 1)
	keys := gateway.NewPostgresIdempotency(pool, gateway.IdempotencySettings{})
	budgets := gateway.NewPostgresBudgets(pool)
	for _, tc := range roundTripsBeforeTheCall(keys, budgets) {
		t.Run(tc.name, func(t *testing.T) {
			held, err := pool.Acquire(context.Background()) // the pool's one connection
			require.NoError(t, err)
			<-watch.waiting // the test's own acquire
			sent := watch.n.Load()
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- tc.send(ctx) }()
			<-watch.waiting // the request waits for the held connection
			cancel()        // and its client goes away
			err = <-done    // returned with the connection still held
			held.Release()
			require.ErrorIs(t, err, context.Canceled)
			assert.Equal(t, sent, watch.n.Load(), "round trips sent for a client gone before its connection came")
			assertNothingHeld(t, pool)
			<-watch.waiting // the check's own acquire
		})
	}
}

// roundTripsBeforeTheCall are the round trips a request may wait for
// before its upstream call, each on its own key and the tenant's window.
func roundTripsBeforeTheCall(keys *gateway.PostgresIdempotency, budgets *gateway.PostgresBudgets) []struct {
	name string
	send func(context.Context) error
} {
	window := time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)
	amount, limit := decimal.RequireFromString("0.25"), decimal.RequireFromString("1")
	return []struct {
		name string
		send func(context.Context) error
	}{
		{"a claim", func(ctx context.Context) error {
			_, _, err := keys.Begin(ctx, "acme", "order-1", []byte("h"))
			return err
		}},
		{"a reservation", func(ctx context.Context) error {
			_, err := budgets.Reserve(ctx, "acme", window, amount, limit)
			return err
		}},
		{"a reservation beside another in flight", func(ctx context.Context) error {
			defer gateway.BusyRow("acme", window)()
			_, err := budgets.Reserve(ctx, "acme", window, amount, limit)
			return err
		}},
		{"a claim and its reservation", func(ctx context.Context) error {
			_, _, err := gateway.ClaimReserving(ctx, keys, "acme", "order-2", window, amount, limit)
			return err
		}},
	}
}

// assertNothingHeld checks, with the test's own SQL, that no key is
// claimed and no budget window holds a reservation.
func assertNothingHeld(t *testing.T, pool *pgxpool.Pool) {
	t.Helper()
	var claimed, reservations int
	require.NoError(t, pool.QueryRow(context.Background(), `SELECT
		(SELECT count(*) FROM idempotency_keys), (SELECT count(*) FROM budget_windows WHERE reserved <> 0)`).Scan(&claimed, &reservations))
	assert.Zero(t, claimed, "keys claimed")
	assert.Zero(t, reservations, "budget windows with a reservation held")
}

// TestNoConnectionWithinTheWaitSendsNothing: a claim or a reservation
// that finds every pooled connection busy for its whole connection wait
// (a database stalled, a pool far too small for the load) fails then,
// with errNoConnection and nothing sent, though its client would wait on:
// requests do not queue for as long as the database stalls. The pool has
// one connection, held by the test throughout. (Seen red with the wait
// bounded by the client alone: each request was still waiting when the
// test gave up on it.)
func TestNoConnectionWithinTheWaitSendsNothing(t *testing.T) {
	watch := &acquireWatch{waiting: make(chan struct{}, 1)}
	pool := tracedPool(t, pgtest.New(t, pgtest.Template{Name: "ledger", Setup: ledger.Migrate}), watch, 1)
	const wait = 50 * time.Millisecond
	keys := gateway.NewPostgresIdempotency(pool, gateway.IdempotencySettings{}).WithConnectionWait(wait)
	budgets := gateway.NewPostgresBudgets(pool).WithConnectionWait(wait)
	for _, tc := range roundTripsBeforeTheCall(keys, budgets) {
		t.Run(tc.name, func(t *testing.T) {
			held, err := pool.Acquire(context.Background()) // the pool's one connection
			require.NoError(t, err)
			sent := watch.n.Load()
			err = waitedOut(t, held, func() error { return tc.send(context.Background()) })
			require.ErrorIs(t, err, gateway.ErrNoConnection)
			assert.Equal(t, sent, watch.n.Load(), "round trips sent without a connection")
			assertNothingHeld(t, pool)
		})
	}

	// A wait of zero is the default, not a refusal of every request.
	t.Run("a wait of zero", func(t *testing.T) {
		pool := pgtest.Pool(t, pgtest.New(t, pgtest.Template{Name: "ledger", Setup: ledger.Migrate}))
		keys := gateway.NewPostgresIdempotency(pool, gateway.IdempotencySettings{}).WithConnectionWait(0)
		budgets := gateway.NewPostgresBudgets(pool).WithConnectionWait(0)
		for _, tc := range roundTripsBeforeTheCall(keys, budgets) {
			require.NoError(t, tc.send(context.Background()), tc.name)
		}
	})

	// A duplicate of a key in flight looks at the key between its claims;
	// that look waits no longer for a connection. The wait is the default
	// here, so that the claims before it (the first opening the pool's
	// connection) never meet it on a loaded machine.
	t.Run("a duplicate's look at the key it waits on", func(t *testing.T) {
		const wait = gateway.DefaultConnectionWait
		gate := &acquireGate{at: 2, arrived: make(chan struct{}), proceed: make(chan struct{})}
		pool := tracedPool(t, pgtest.New(t, pgtest.Template{Name: "ledger", Setup: ledger.Migrate}), gate, 1)
		keys := gateway.NewPostgresIdempotency(pool, gateway.IdempotencySettings{}).WithConnectionWait(wait)
		first, _, err := keys.Begin(context.Background(), "acme", "order-3", []byte("h"))
		require.NoError(t, err)
		require.NotNil(t, first)
		done := make(chan error, 1)
		go func() {
			// Its claim (the gate's first acquire) finds the key in flight;
			// its look (the second) finds the pool's one connection held.
			_, _, err := keys.Begin(context.WithValue(context.Background(), gatedRequest{}, true), "acme", "order-3", []byte("h"))
			done <- err
		}()
		<-gate.arrived
		held, err := pool.Acquire(context.Background())
		require.NoError(t, err)
		close(gate.proceed)
		select {
		case err = <-done:
		case <-time.After(10 * time.Second):
			held.Release()
			t.Fatalf("the duplicate still waited for a connection 10 s on, its wait %s", wait)
		}
		held.Release()
		require.ErrorIs(t, err, gateway.ErrNoConnection)
	})
}

// waitedOut runs send, whose connection the test holds (held), and
// returns its error. A send still waiting 10 s on (its wait being far
// shorter) fails the test, once held is released and it has returned.
func waitedOut(t *testing.T, held *pgxpool.Conn, send func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- send() }()
	select {
	case err := <-done:
		held.Release()
		return err
	case <-time.After(10 * time.Second):
		held.Release()
		err := <-done
		t.Fatalf("still waiting for a connection 10 s on; once one came free: %v", err)
		return nil
	}
}

// gatedRequest marks the context of the request an acquireGate stops.
type gatedRequest struct{}

// acquireGate stops the at-th acquire of the marked request (gatedRequest)
// until the test, told of it (arrived), lets it go on (proceed).
type acquireGate struct {
	n                atomic.Int32
	at               int32
	arrived, proceed chan struct{}
}

func (g *acquireGate) TraceAcquireStart(ctx context.Context, _ *pgxpool.Pool, _ pgxpool.TraceAcquireStartData) context.Context {
	if ctx.Value(gatedRequest{}) != nil && g.n.Add(1) == g.at {
		close(g.arrived)
		<-g.proceed
	}
	return ctx
}

func (g *acquireGate) TraceAcquireEnd(context.Context, *pgxpool.Pool, pgxpool.TraceAcquireEndData) {}

func (g *acquireGate) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	return ctx
}

func (g *acquireGate) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// TestAStoreOutageGetsTheGatewaysWordsNotTheDatabases: with keys and
// budgets in a Postgres that drops its connections and refuses new ones (a
// restart, a failover), or that keeps every pooled connection busy past
// the stores' connection wait (a stall), a request is a 503 that names the
// store that failed, budget_unavailable or idempotency_unavailable, in the
// gateway's own words: the database's error, which names its user, its
// database and its host, goes to the log with the request's id, never to
// the tenant, the first of the outage at once and then a line in ten
// seconds at most. Nothing reaches the vendor, and the client, which sets
// no deadline, has its answer once the wait is out. (Seen red before: the
// budget's outage was a 502 upstream_error, and the claim's 503 quoted
// pgx's "failed to connect to `user=... database=...`: 127.0.0.1:...";
// with the wait bounded by the client alone, the stalled store's requests
// were still waiting when the test gave up on them; and with every error
// logged, four requests were four lines.)
func TestAStoreOutageGetsTheGatewaysWordsNotTheDatabases(t *testing.T) {
	for _, outage := range []struct {
		name string
		// start brings the outage on the stores' pool, of the database at
		// url, and returns what the log then says of it.
		start func(t *testing.T, url string) (pool *pgxpool.Pool, wait time.Duration, logged string)
	}{
		{"refused", func(t *testing.T, url string) (*pgxpool.Pool, time.Duration, string) {
			pool := pgtest.Pool(t, url)
			restore := pgtest.Shared(t).CutOff(t, url)
			t.Cleanup(restore)
			db, err := pgxpool.ParseConfig(url)
			require.NoError(t, err)
			return pool, gateway.DefaultConnectionWait, db.ConnConfig.Database
		}},
		{"stalled", func(t *testing.T, url string) (*pgxpool.Pool, time.Duration, string) {
			pool := tracedPool(t, url, &roundTrips{}, 1)
			held, err := pool.Acquire(context.Background()) // the pool's one connection, for the whole test
			require.NoError(t, err)
			// Or until a request has waited 10 s for it: the test then fails
			// on the request's answer, not on go test's timeout.
			var once sync.Once
			release := func() { once.Do(held.Release) }
			guard := time.AfterFunc(10*time.Second, release)
			t.Cleanup(func() { guard.Stop() })
			t.Cleanup(release)
			return pool, 50 * time.Millisecond, "no database connection came free within 50ms"
		}},
	} {
		t.Run(outage.name, func(t *testing.T) {
			url := pgtest.New(t, pgtest.Template{Name: "ledger", Setup: ledger.Migrate})
			db, err := pgxpool.ParseConfig(url)
			require.NoError(t, err)
			var logs gatewaytest.LogBuffer
			fakes := startFakes(t, nil)
			pool, wait, logged := outage.start(t, url)
			r := rigOn(t, fakes, ledger.NewMemoryStore(), nil, rigExtras{
				idempotency: gateway.NewPostgresIdempotency(pool, gateway.IdempotencySettings{}).WithConnectionWait(wait),
				budgetStore: gateway.NewPostgresBudgets(pool).WithConnectionWait(wait),
				budgets:     map[string]gateway.Budget{"acme": {Limit: decimal.RequireFromString("1"), Window: budgetWindow}},
				logger:      slog.New(slog.NewTextHandler(&logs, nil)),
			})
			for _, tc := range []struct {
				name    string
				headers map[string]string
				code    string
			}{
				{"the budget's reservation", map[string]string{"X-Request-ID": "outage-1"}, "budget_unavailable"},
				{"a key's claim and the reservation", map[string]string{"X-Request-ID": "outage-2", "Idempotency-Key": "k-1"}, "idempotency_unavailable"},
			} {
				t.Run(tc.name, func(t *testing.T) {
					resp, body := send(t, r.server.URL, tenantKey, budgetBody, tc.headers)
					assert.Equal(t, 503, resp.StatusCode)
					assert.Equal(t, "1", resp.Header.Get("Retry-After"), "the client comes back no sooner than a connection would come free")
					var e struct {
						Error struct{ Type, Code, Message string }
					}
					require.NoError(t, json.Unmarshal(body, &e), "%s", body)
					assert.Equal(t, "server_error", e.Error.Type)
					assert.Equal(t, tc.code, e.Error.Code)
					for _, leak := range []string{db.ConnConfig.Database, "user=" + db.ConnConfig.User, fmt.Sprintf("%s:%d", db.ConnConfig.Host, db.ConnConfig.Port)} {
						assert.NotContains(t, string(body), leak, "the database's error reached the tenant")
					}
					id := resp.Header.Get("X-Brownout-Request-Id")
					require.NotEmpty(t, id)
					assert.Contains(t, logs.String(), "request_id="+id, "the store's error is in the log")
				})
			}
			assert.Contains(t, logs.String(), logged, "the log says what failed, for the operator")

			// More requests in the same outage are counted, not logged: one
			// line a store in ten seconds (outageLog), not one a request.
			for i := range 3 {
				resp, body := send(t, r.server.URL, tenantKey, budgetBody, map[string]string{"Idempotency-Key": fmt.Sprintf("k-%d", i+2)})
				require.Equal(t, 503, resp.StatusCode, "%s", body)
				resp, body = send(t, r.server.URL, tenantKey, budgetBody, nil)
				require.Equal(t, 503, resp.StatusCode, "%s", body)
			}
			assert.Equal(t, 1, strings.Count(logs.String(), "idempotency store unavailable"), "lines logged for 4 requests\n%s", logs.String())
			assert.Equal(t, 1, strings.Count(logs.String(), "budget store unavailable"), "lines logged for 4 requests\n%s", logs.String())
			assert.Zero(t, fakes["openai"].Invoice().Totals.Requests, "nothing reached the vendor")
		})
	}
}
