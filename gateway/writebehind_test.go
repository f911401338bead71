package gateway_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brownout-dev/brownout/gateway"
	"github.com/brownout-dev/brownout/gateway/ledger"
	"github.com/brownout-dev/brownout/internal/pgtest"
)

// gatedTrips counts a pool's round trips, and holds every batch at its
// start while the gate is shut: a database that has not answered yet.
type gatedTrips struct {
	roundTrips
	shut   atomic.Bool
	open   chan struct{}
	opened sync.Once
}

func newGatedTrips() *gatedTrips { return &gatedTrips{open: make(chan struct{})} }

// release opens the gate for good.
func (g *gatedTrips) release() {
	g.shut.Store(false)
	g.opened.Do(func() { close(g.open) })
}

func (g *gatedTrips) TraceBatchStart(ctx context.Context, c *pgx.Conn, d pgx.TraceBatchStartData) context.Context {
	if g.shut.Load() {
		<-g.open
	}
	return g.roundTrips.TraceBatchStart(ctx, c, d)
}

// tracedPool is a pool on url whose round trips tracer sees, of at most
// maxConns connections (0: pgxpool's default).
func tracedPool(t *testing.T, url string, tracer pgx.QueryTracer, maxConns ...int32) *pgxpool.Pool {
	cfg, err := pgxpool.ParseConfig(url)
	require.NoError(t, err)
	cfg.ConnConfig.Tracer = tracer
	for _, n := range maxConns {
		cfg.MaxConns = n
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	return pool
}

// keyState reads an Idempotency-Key's state with the test's own SQL ("" when
// there is no row).
func keyState(t *testing.T, pool *pgxpool.Pool, key string) string {
	var state string
	err := pool.QueryRow(context.Background(), `SELECT state FROM idempotency_keys WHERE tenant = 'acme' AND key = $1`, key).Scan(&state)
	if err == pgx.ErrNoRows {
		return ""
	}
	require.NoError(t, err)
	return state
}

// TestOneRoundTripBeforeTheCallNoneAfter: with keys and budgets in
// Postgres, a request waits for one round trip, the claim of its key and
// the reservation of its budget in one statement, and for nothing after
// the upstream call: the key's completion and the budget's settlement are
// written behind, in batches. The test holds those batches (the database
// has not answered them) and sees:
//   - the client has its answer, and the request made exactly one
//     synchronous round trip (counted by pgx's tracer, not inferred);
//   - a duplicate sent meanwhile waits on the lease, polling, and replays the
//     answer once the completion lands: the upstream was called once;
//   - once written, the key is done, nothing stays reserved, and the
//     budget's spend is the fake vendor's invoice.
//
// Refused by its budget, a request still makes one round trip, and its
// key is released. Observed before: four synchronous round trips (claim,
// reserve, settle, complete); with the reservation apart from the claim,
// two; with the writes not behind, three.
func TestOneRoundTripBeforeTheCallNoneAfter(t *testing.T) {
	url := pgtest.New(t, pgtest.Template{Name: "ledger", Setup: ledger.Migrate})
	trips, behind := &roundTrips{}, newGatedTrips()
	syncPool, behindPool := tracedPool(t, url, trips), tracedPool(t, url, behind)
	wb := gateway.NewWriteBehind(behindPool, gateway.WriteBehindSettings{})
	t.Cleanup(func() { _ = wb.Close(context.Background()) })
	t.Cleanup(behind.release) // first, should the test end with the gate shut
	idem := gateway.NewPostgresIdempotency(syncPool, gateway.IdempotencySettings{}).WritingBehind(wb)
	budgets := gateway.NewPostgresBudgets(syncPool).WritingBehind(wb)
	store := ledger.NewMemoryStore()
	limit := decimal.RequireFromString("0.001")
	r := rigOn(t, startFakes(t, nil), store, nil, rigExtras{idempotency: idem, budgetStore: budgets,
		budgets: map[string]gateway.Budget{"acme": {Limit: limit, Window: budgetWindow}}})
	fake := r.fakes["openai"]

	behind.shut.Store(true)
	before := trips.n.Load()
	status, h, first := post(t, r.server.URL, "k1", "first", budgetBody)
	require.Equal(t, 200, status, "%s", first)
	assert.Empty(t, h.Get("Idempotent-Replayed"))
	assert.Equal(t, int64(1), trips.n.Load()-before, "synchronous round trips of one request")
	assert.Equal(t, "in_flight", keyState(t, syncPool, "k1"), "the completion is not written yet")

	dup := make(chan []byte, 1)
	polled := trips.n.Load()
	go func() {
		status, h, body := post(t, r.server.URL, "k1", "dup", budgetBody)
		assert.Equal(t, 200, status)
		assert.Equal(t, "true", h.Get("Idempotent-Replayed"))
		dup <- body
	}()
	for trips.n.Load() < polled+4 { // the duplicate claims, finds the key in flight, and polls
		require.Empty(t, dup, "the duplicate was answered before the first's completion was written")
		time.Sleep(5 * time.Millisecond)
	}
	behind.release()
	assert.Equal(t, string(first), string(<-dup), "the duplicate replays the first answer")
	require.Len(t, fake.Journal(), 1, "one upstream call for the key")

	require.NoError(t, wb.Flush(context.Background()))
	assert.Equal(t, "done", keyState(t, syncPool, "k1"))
	spent, reserved := postgresSpent(t, syncPool)("acme", time.Now().UTC().Truncate(budgetWindow))
	assert.True(t, reserved.IsZero(), "%s still reserved", reserved)
	assert.Equal(t, fake.Invoice().Totals.Cost.String(), spent.String(), "the budget's spend is the invoice")

	// Twenty more requests, twenty synchronous round trips; the forty writes
	// after them (a completion and a settlement each) go behind, in at most
	// forty batches.
	before, st := trips.n.Load(), wb.Stats()
	for i := range 20 {
		status, _, body := post(t, r.server.URL, fmt.Sprintf("more-%d", i), "", budgetBody)
		require.Equal(t, 200, status, "%s", body)
	}
	assert.Equal(t, int64(20), trips.n.Load()-before, "one synchronous round trip a request")
	// The client has its answer before its handler queues the completion:
	// wait for the handlers, then for the writes.
	r.server.Close()
	require.NoError(t, wb.Flush(context.Background()))
	// 20 completions, and 20 settlements summed per batch.
	assert.LessOrEqual(t, wb.Stats().Written-st.Written, uint64(40), "statements behind")
	assert.Greater(t, wb.Stats().Written-st.Written, uint64(20), "statements behind")
	assert.LessOrEqual(t, wb.Stats().Batches-st.Batches, uint64(40), "batches behind")
	spent, reserved = postgresSpent(t, syncPool)("acme", time.Now().UTC().Truncate(budgetWindow))
	assert.True(t, reserved.IsZero(), "%s still reserved", reserved)
	assert.Equal(t, fake.Invoice().Totals.Cost.String(), spent.String(), "the budget's spend is the invoice")
	assert.Zero(t, wb.Stats().Lost)
	assert.Zero(t, wb.Stats().LeaseLost)

	// Refused: the key was claimed with the reservation refused, in the one
	// statement; it is released behind, and the refusal is metered.
	poor := rigOn(t, startFakes(t, nil), store, nil, rigExtras{idempotency: idem, budgetStore: budgets,
		budgets: map[string]gateway.Budget{"acme": {Limit: decimal.RequireFromString("0.0000001"), Window: time.Hour}}})
	before = trips.n.Load()
	status, _, body := post(t, poor.server.URL, "poor", "poor", budgetBody)
	assert.Equal(t, http.StatusTooManyRequests, status, "%s", body)
	assert.Equal(t, int64(1), trips.n.Load()-before, "one round trip for a refusal too")
	poor.server.Close()
	require.NoError(t, wb.Flush(context.Background()))
	assert.Empty(t, keyState(t, syncPool, "poor"), "the refused request's key is released")
	assert.Empty(t, poor.fakes["openai"].Journal())
}

// TestWriteBehindKeepsTheGoodWritesOfABadBatch: one write the database
// refuses (a settlement of more than was reserved breaks the budget row's
// CHECK) rolls back the batch it was in; the writer then sends each write
// alone, so the others land, and the refused one is counted as lost (and
// logged), never silently dropped with its neighbours. (Seen red without
// the one-at-a-time pass: the key stayed in flight.)
func TestWriteBehindKeepsTheGoodWritesOfABadBatch(t *testing.T) {
	pool := pgtest.NewPool(t, pgtest.Template{Name: "ledger", Setup: ledger.Migrate})
	ctx := context.Background()
	wb := gateway.NewWriteBehind(pool, gateway.WriteBehindSettings{Linger: time.Hour, Retries: 1})
	t.Cleanup(func() { _ = wb.Close(ctx) })
	idem := gateway.NewPostgresIdempotency(pool, gateway.IdempotencySettings{}).WritingBehind(wb)
	budgets := gateway.NewPostgresBudgets(pool).WritingBehind(wb)
	window := time.Now().UTC().Truncate(time.Hour)
	amount, limit := decimal.RequireFromString("0.5"), decimal.RequireFromString("1")
	ok, err := budgets.Reserve(ctx, "acme", window, amount, limit)
	require.NoError(t, err)
	require.True(t, ok)
	lease, _, err := idem.Begin(ctx, "acme", "k", []byte("h"))
	require.NoError(t, err)

	// Three writes, one batch (the linger holds it open until Flush).
	require.NoError(t, idem.Complete(ctx, lease, gateway.StoredResponse{Status: 200, ContentType: "text/plain", Body: []byte("ok")}))
	require.NoError(t, budgets.Settle(ctx, "acme", window, decimal.RequireFromString("9"), decimal.Zero)) // more than reserved
	require.NoError(t, budgets.Settle(ctx, "acme", window, amount, decimal.RequireFromString("0.2")))
	require.NoError(t, wb.Flush(ctx))

	assert.Equal(t, "done", keyState(t, pool, "k"), "the completion landed")
	spent, reserved := postgresSpent(t, pool)("acme", window)
	assert.Equal(t, "0.2", spent.String(), "the good settlement landed")
	assert.True(t, reserved.IsZero())
	st := wb.Stats()
	assert.Equal(t, uint64(1), st.Lost, "the refused write")
	assert.Equal(t, uint64(2), st.Written)
}

// budgetsBehind is a fresh ledger database, a WriteBehind on it with s
// (closed when the test ends), budgets that settle through it, and the
// hour's budget window.
func budgetsBehind(t *testing.T, s gateway.WriteBehindSettings) (*pgxpool.Pool, *gateway.WriteBehind, *gateway.PostgresBudgets, time.Time) {
	pool := pgtest.NewPool(t, pgtest.Template{Name: "ledger", Setup: ledger.Migrate})
	wb := gateway.NewWriteBehind(pool, s)
	t.Cleanup(func() { _ = wb.Close(context.Background()) })
	return pool, wb, gateway.NewPostgresBudgets(pool).WritingBehind(wb), time.Now().UTC().Truncate(time.Hour)
}

// TestWriteBehindSumsATenantsSettlements: the settlements of one tenant's
// window in a batch go as one UPDATE of their sums (a hot tenant's budget
// row gets one new version and one lock per batch, not one per request);
// the row ends where five UPDATEs would have left it. (Seen red without
// the sums: five statements.)
func TestWriteBehindSumsATenantsSettlements(t *testing.T) {
	ctx := context.Background()
	pool, wb, budgets, window := budgetsBehind(t, gateway.WriteBehindSettings{Linger: time.Hour})
	each := decimal.RequireFromString("0.1")
	for range 5 {
		ok, err := budgets.Reserve(ctx, "acme", window, each, decimal.RequireFromString("1"))
		require.NoError(t, err)
		require.True(t, ok)
	}
	for i := range 5 {
		require.NoError(t, budgets.Settle(ctx, "acme", window, each, decimal.New(int64(i+1), -3)))
	}
	require.NoError(t, wb.Flush(ctx))
	assert.Equal(t, uint64(1), wb.Stats().Written, "one statement for the five")
	spent, reserved := postgresSpent(t, pool)("acme", window)
	assert.True(t, reserved.IsZero(), "%s still reserved", reserved)
	assert.Equal(t, "0.015", spent.String(), "0.001 + 0.002 + ... + 0.005")
}

// TestWriteBehindDeletesItsOldRoundTrips: each round trip leaves a row in
// write_behind_batches, for finding out whether it committed should it
// fail; the writer deletes the rows past their hour, at most once a minute,
// so the table holds an hour of round trips, not all of them. (Seen red
// without the deletion: the row of two hours ago still there.)
func TestWriteBehindDeletesItsOldRoundTrips(t *testing.T) {
	ctx := context.Background()
	pool, wb, budgets, window := budgetsBehind(t, gateway.WriteBehindSettings{Linger: time.Hour})
	age := func(ago string) {
		_, err := pool.Exec(ctx, `INSERT INTO write_behind_batches (id, written_at) VALUES (gen_random_uuid(), now() - $1::interval)`, ago)
		require.NoError(t, err)
	}
	rows := func(where string) (n int) {
		require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM write_behind_batches WHERE `+where).Scan(&n))
		return n
	}
	settle := func() {
		require.NoError(t, budgets.Settle(ctx, "acme", window, decimal.Zero, decimal.Zero))
		require.NoError(t, wb.Flush(ctx))
	}
	age("2 hours")
	age("61 minutes")
	age("59 minutes")
	settle()
	assert.Equal(t, 0, rows(`written_at < now() - interval '1 hour'`), "the rows past their hour deleted")
	assert.Equal(t, 2, rows(`true`), "the row within its hour, and the round trip's own")

	age("2 hours")
	settle()
	assert.Equal(t, 1, rows(`written_at < now() - interval '1 hour'`), "no second deletion within the minute")
	assert.Equal(t, 4, rows(`true`))
}

// TestWriteBehindWritesWhenItCannotPurge: the deletion of old rows is a
// round trip of its own, so a database that refuses it (here, a trigger
// that fails every DELETE on the table) costs no write. (Seen red with the
// deletion in the writes' batch: the settlement refused with it, and lost.)
func TestWriteBehindWritesWhenItCannotPurge(t *testing.T) {
	ctx := context.Background()
	pool, wb, budgets, window := budgetsBehind(t, gateway.WriteBehindSettings{Linger: time.Hour, Retries: 1, Logger: slog.New(slog.DiscardHandler)})
	_, err := pool.Exec(ctx, `CREATE FUNCTION no_deletes() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN RAISE EXCEPTION 'no deletes here'; END $$;
		CREATE TRIGGER no_deletes BEFORE DELETE ON write_behind_batches FOR EACH STATEMENT EXECUTE FUNCTION no_deletes()`)
	require.NoError(t, err)
	ok, err := budgets.Reserve(ctx, "acme", window, decimal.RequireFromString("0.3"), decimal.RequireFromString("1"))
	require.NoError(t, err)
	require.True(t, ok)
	require.NoError(t, budgets.Settle(ctx, "acme", window, decimal.RequireFromString("0.3"), decimal.RequireFromString("0.2")))
	require.NoError(t, wb.Flush(ctx))
	spent, reserved := postgresSpent(t, pool)("acme", window)
	assert.Equal(t, "0.2", spent.String())
	assert.True(t, reserved.IsZero(), "%s still reserved", reserved)
	assert.Zero(t, wb.Stats().Lost)
}

// TestWriteBehindWaitsOutADatabaseOutOfReach: the database drops the
// writer's connections and refuses new ones while the completions and
// settlements of requests are queued behind (a restart, a failover), for
// longer than the writer's retries last; the writer waits for it, and once
// it is back every write lands once: every key done, every reservation
// released, the spend the sum of the bills. (Seen red with the writer
// giving up after its retries, as it did: 0.5 still reserved, 0.01275 of
// 0.0505 spent, the keys of the requests finished during the outage still
// in flight.)
func TestWriteBehindWaitsOutADatabaseOutOfReach(t *testing.T) {
	ctx := context.Background()
	url := pgtest.New(t, pgtest.Template{Name: "ledger", Setup: ledger.Migrate})
	pool := pgtest.Pool(t, url)
	wb := gateway.NewWriteBehind(pool, gateway.WriteBehindSettings{Logger: slog.New(slog.DiscardHandler)})
	t.Cleanup(func() { _ = wb.Close(ctx) })
	idem := gateway.NewPostgresIdempotency(pool, gateway.IdempotencySettings{}).WritingBehind(wb)
	budgets := gateway.NewPostgresBudgets(pool).WritingBehind(wb)
	window := time.Now().UTC().Truncate(time.Hour)
	each := decimal.RequireFromString("0.01")

	const n = 100
	leases := make([]*gateway.Lease, n)
	for i := range n {
		ok, err := budgets.Reserve(ctx, "acme", window, each, decimal.RequireFromString("10"))
		require.NoError(t, err)
		require.True(t, ok)
		leases[i], _, err = idem.Begin(ctx, "acme", fmt.Sprintf("k%03d", i), []byte("h"))
		require.NoError(t, err)
	}
	// Request i's bill is (i+1) x 0.00001: 5,050 x 0.00001 in all.
	finish := func(i int) {
		require.NoError(t, idem.Complete(ctx, leases[i], gateway.StoredResponse{Status: 200, ContentType: "text/plain", Body: []byte("ok")}))
		require.NoError(t, budgets.Settle(ctx, "acme", window, each, decimal.New(int64(i+1), -5)))
	}
	for i := range n / 2 {
		finish(i)
	}
	require.NoError(t, wb.Flush(ctx))
	restore := pgtest.Shared(t).CutOff(t, url)
	for i := n / 2; i < n; i++ {
		finish(i)
	}
	// Each write is tried 1 + Retries (3) times, each try of a batch
	// waiting up to 4 times: 24 waits is past what a writer that gives up
	// would spend on a write.
	require.Eventually(t, func() bool { return wb.Stats().Waits >= 24 }, 2*time.Minute, 10*time.Millisecond,
		"the writer waiting for the database")
	restore()
	flushed, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	require.NoError(t, wb.Flush(flushed))

	spent, reserved := postgresSpent(t, pool)("acme", window)
	assert.Equal(t, "0.0505", spent.String(), "every bill, once")
	assert.True(t, reserved.IsZero(), "%s still reserved", reserved)
	for i := range n {
		assert.Equal(t, "done", keyState(t, pool, fmt.Sprintf("k%03d", i)), "key %d", i)
	}
	st := wb.Stats()
	assert.Zero(t, st.Lost, "writes given up")
	assert.Zero(t, st.Unknown, "writes whose outcome was not found out")
	assert.Zero(t, st.LeaseLost)
}

// TestWriteBehindCloseGivesUpOnADatabaseOutOfReach: the writer waits for
// a database out of reach however long, so Close is what ends the wait:
// when its ctx ends it gives up on the writes left, counted as lost, and
// the writer stops.
func TestWriteBehindCloseGivesUpOnADatabaseOutOfReach(t *testing.T) {
	cfg, err := pgxpool.ParseConfig("postgres://brownout@127.0.0.1:5432/brownout")
	require.NoError(t, err)
	cfg.ConnConfig.DialFunc = func(context.Context, string, string) (net.Conn, error) {
		return nil, errors.New("no route to the database")
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	wb := gateway.NewWriteBehind(pool, gateway.WriteBehindSettings{Logger: slog.New(slog.DiscardHandler)})
	budgets := gateway.NewPostgresBudgets(pool).WritingBehind(wb)
	window := time.Now().UTC().Truncate(time.Hour)
	for range 3 {
		require.NoError(t, budgets.Settle(context.Background(), "acme", window, decimal.RequireFromString("0.1"), decimal.Zero))
	}
	require.Eventually(t, func() bool { return wb.Stats().Waits >= 10 }, time.Minute, 10*time.Millisecond,
		"the writer waiting for the database")
	assert.Zero(t, wb.Stats().Lost, "nothing given up while it waits")

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err = wb.Close(ctx)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Contains(t, err.Error(), "gave up")
	require.Eventually(t, func() bool { return wb.Stats().Lost == 3 }, time.Minute, 10*time.Millisecond,
		"the three settlements given up")
	require.NoError(t, wb.Close(context.Background()), "the writer has stopped")
	assert.ErrorIs(t, budgets.Settle(context.Background(), "acme", window, decimal.Zero, decimal.Zero), gateway.ErrWriteBehindClosed)
}

// cut is what a cutConn does to the round trip that carries its marker.
type cut int

const (
	// cutAnswer lets the round trip through and loses the server's answer:
	// the server ran and committed it (it answers only after the commit),
	// and the client's connection fails.
	cutAnswer cut = iota
	// cutRequest loses the round trip on its way: the server never gets
	// it, and the client's connection fails.
	cutRequest
	// cutStall lets the round trip through and the client gives up on it
	// (a timeout) while the server still runs it: nothing the client sends
	// after it reaches the server, the cancel pgx sends on another
	// connection included, and the server's connection stays open, so it
	// commits the round trip once it can.
	cutStall
)

// cutter makes the connections of a pool cutConns: once armed, the next
// round trip whose text carries marker is cut as how says.
type cutter struct {
	t       *testing.T
	marker  []byte
	how     cut
	armed   atomic.Bool
	stalled atomic.Bool // a cutStall happened: cancels are lost
}

func (c *cutter) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	conn, err := (&net.Dialer{}).DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	return &cutConn{Conn: conn, c: c}, nil
}

type cutConn struct {
	net.Conn
	c       *cutter
	cutting atomic.Bool
}

// isCancel reports whether p is a CancelRequest message.
func isCancel(p []byte) bool { return len(p) >= 12 && binary.BigEndian.Uint32(p[4:8]) == 80877102 }

func (c *cutConn) Write(p []byte) (int, error) {
	switch {
	case c.cutting.Load() && c.c.how == cutStall:
		return len(p), nil // lost on the way
	case c.c.stalled.Load() && isCancel(p):
		_ = c.Conn.Close()
		return 0, io.ErrClosedPipe
	case bytes.Contains(p, c.c.marker) && c.c.armed.CompareAndSwap(true, false):
		c.cutting.Store(true)
		switch c.c.how {
		case cutRequest:
			_ = c.Conn.Close()
			return 0, io.ErrClosedPipe
		case cutStall:
			c.c.stalled.Store(true)
			c.c.t.Cleanup(func() { _ = c.Conn.Close() })
		}
	}
	return c.Conn.Write(p)
}

func (c *cutConn) Read(p []byte) (int, error) {
	if !c.cutting.Load() {
		return c.Conn.Read(p)
	}
	if c.c.how == cutAnswer {
		if _, err := c.Conn.Read(p); err != nil { // the answer: the round trip has committed
			return 0, err
		}
		_ = c.Conn.Close()
	}
	return 0, io.ErrUnexpectedEOF
}

func (c *cutConn) Close() error {
	if c.cutting.Load() && c.c.how == cutStall {
		return nil // the server's side stays open (the test's cleanup closes it)
	}
	return c.Conn.Close()
}

// cutFixture is a key claimed and two reservations taken (0.3 by the
// request whose writes are cut, 0.5 by another still in flight, of a limit
// of 1) on a pool of one connection whose next round trip carrying
// "UPDATE budget_windows" is cut as how says, once the test arms it.
type cutFixture struct {
	pool    *pgxpool.Pool
	cut     *cutter
	wb      *gateway.WriteBehind
	idem    *gateway.PostgresIdempotency
	budgets *gateway.PostgresBudgets
	window  time.Time
	lease   *gateway.Lease
}

func newCutFixture(t *testing.T, how cut) *cutFixture {
	ctx := context.Background()
	cfg, err := pgxpool.ParseConfig(pgtest.New(t, pgtest.Template{Name: "ledger", Setup: ledger.Migrate}))
	require.NoError(t, err)
	cfg.MaxConns = 1
	// Each statement's text goes with it, so the cutter knows the batch.
	cfg.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeExec
	f := &cutFixture{cut: &cutter{t: t, marker: []byte("UPDATE budget_windows"), how: how}}
	cfg.ConnConfig.DialFunc = f.cut.dial
	f.pool, err = pgxpool.NewWithConfig(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(f.pool.Close)
	f.wb = gateway.NewWriteBehind(f.pool, gateway.WriteBehindSettings{Linger: time.Hour, Retries: 2, Logger: slog.New(slog.DiscardHandler)})
	t.Cleanup(func() { _ = f.wb.Close(ctx) })
	f.idem = gateway.NewPostgresIdempotency(f.pool, gateway.IdempotencySettings{}).WritingBehind(f.wb)
	f.budgets = gateway.NewPostgresBudgets(f.pool).WritingBehind(f.wb)
	f.window = time.Now().UTC().Truncate(time.Hour)
	require.True(t, f.reserve(t, "0.3"), "this request's reservation")
	require.True(t, f.reserve(t, "0.5"), "another request's, still in flight")
	f.lease, _, err = f.idem.Begin(ctx, "acme", "k", []byte("h"))
	require.NoError(t, err)
	return f
}

func (f *cutFixture) reserve(t *testing.T, amount string) bool {
	t.Helper()
	ok, err := f.budgets.Reserve(context.Background(), "acme", f.window, decimal.RequireFromString(amount), decimal.RequireFromString("1"))
	require.NoError(t, err)
	return ok
}

// finish queues the request's writes behind, in one batch: its key's
// completion and the settlement of its reservation of 0.3 at a bill of 0.2.
func (f *cutFixture) finish(t *testing.T) {
	ctx := context.Background()
	require.NoError(t, f.idem.Complete(ctx, f.lease, gateway.StoredResponse{Status: 200, ContentType: "text/plain", Body: []byte("ok")}))
	require.NoError(t, f.budgets.Settle(ctx, "acme", f.window, decimal.RequireFromString("0.3"), decimal.RequireFromString("0.2")))
}

// settledOnce checks the request's writes are in the database once: the
// bill counted once, the other request's reservation whole, a reservation
// past the limit refused, and the key done.
// cutAndFlush cuts the next round trip carrying the request's writes (it
// must be the one the writer sends them in), finishes the request, waits
// for its writes, checks they are in once (settledOnce), and returns the
// writer's stats.
func (f *cutFixture) cutAndFlush(t *testing.T) gateway.WriteBehindStats {
	t.Helper()
	f.cut.armed.Store(true)
	f.finish(t)
	require.NoError(t, f.wb.Flush(context.Background()))
	require.False(t, f.cut.armed.Load(), "the batch went out on the cut connection")
	f.settledOnce(t)
	return f.wb.Stats()
}

func (f *cutFixture) settledOnce(t *testing.T) {
	t.Helper()
	spent, reserved := postgresSpent(t, f.pool)("acme", f.window)
	assert.Equal(t, "0.2", spent.String(), "the vendor's bill, counted once")
	assert.Equal(t, "0.5", reserved.String(), "the other request's reservation, whole, and this one's released")
	assert.False(t, f.reserve(t, "0.4"), "0.2 spent and 0.5 held leave 0.3 of the limit")
	assert.True(t, f.reserve(t, "0.3"), "and 0.3 of it can be had")
	assert.Equal(t, "done", keyState(t, f.pool, "k"))
}

// TestWriteBehindNeverSettlesTwice: a batch whose answer is lost after the
// database committed it (a connection cut, a timeout) may or may not have
// committed, and a settlement is not idempotent: sent again, it subtracts
// its reservation and adds its spend a second time. The writer finds out
// the batch committed and sends nothing again. (Seen red with the
// settlement sent again: spent 0.4 where the vendor billed 0.2, the other
// request's reservation of 0.5 down to 0.2, and a reservation of 0.4 over
// the limit of 1 taken.)
func TestWriteBehindNeverSettlesTwice(t *testing.T) {
	st := newCutFixture(t, cutAnswer).cutAndFlush(t)
	assert.Equal(t, gateway.WriteBehindStats{Batches: 1, Written: 2, Resolved: 1}, st,
		"one round trip, found committed after its answer was lost")
}

// TestWriteBehindSendsAgainWhatDidNotCommit: a batch lost on its way to the
// database leaves the client as unsure as one whose answer was lost; the
// writer finds out it did not commit and sends its writes again, so the
// reservation is released, not held until its window closes. (Seen red
// without the resolution: 0.8 still reserved, nothing spent, 0.3 refused.)
func TestWriteBehindSendsAgainWhatDidNotCommit(t *testing.T) {
	st := newCutFixture(t, cutRequest).cutAndFlush(t)
	assert.Equal(t, gateway.WriteBehindStats{Batches: 3, Written: 2, Resolved: 1}, st,
		"the round trip lost, found not committed, then each write alone")
}

// TestWriteBehindHoldsWhatItResolvesTooLate: a round trip resolved after
// half its row's retention (the database out of this gateway's reach that
// long, while others delete old rows) may have had its row deleted, so a
// fence that goes in proves nothing: the writer treats the outcome as
// unknown and does not send the settlement again; the completion, which
// only its lease's holder can write once, is. (Seen red without the
// check: the lost batch found "not committed" and its settlement sent.)
func TestWriteBehindHoldsWhatItResolvesTooLate(t *testing.T) {
	f := newCutFixture(t, cutRequest)
	gateway.SetBatchRetention(f.wb, time.Nanosecond)
	f.cut.armed.Store(true)
	f.finish(t)
	require.NoError(t, f.wb.Flush(context.Background()))
	spent, reserved := postgresSpent(t, f.pool)("acme", f.window)
	assert.True(t, spent.IsZero(), "the settlement, held")
	assert.Equal(t, "0.8", reserved.String(), "its reservation held with the other request's")
	assert.Equal(t, "done", keyState(t, f.pool, "k"), "the completion, sent again")
	st := f.wb.Stats()
	assert.Equal(t, uint64(1), st.Unknown, "the settlement")
	assert.Zero(t, st.Resolved)
	assert.Zero(t, st.Lost)
}

// TestWriteBehindWaitsForARoundTripStillInFlight: the writer gives up on a
// batch (a timeout) that the database is still running, held on a lock,
// and its cancel never gets there. Finding out whether the batch committed
// must wait for it to end, not read that it has not committed yet: here
// the batch commits once the lock is let go, and the writer sends nothing
// again. (Seen red with the resolution a read of the batch's row: the
// settlement sent again, spent 0.4.)
func TestWriteBehindWaitsForARoundTripStillInFlight(t *testing.T) {
	ctx := context.Background()
	f := newCutFixture(t, cutStall)
	connect := func() *pgx.Conn {
		c, err := pgx.Connect(ctx, f.pool.Config().ConnConfig.ConnString())
		require.NoError(t, err)
		t.Cleanup(func() { _ = c.Close(ctx) })
		return c
	}
	// Another transaction holds the tenant's budget row.
	holder, watcher := connect(), connect()
	tx, err := holder.Begin(ctx)
	require.NoError(t, err)
	_, err = tx.Exec(ctx, `SELECT 1 FROM budget_windows WHERE tenant = 'acme' FOR UPDATE`)
	require.NoError(t, err)

	f.cut.armed.Store(true)
	f.finish(t)
	flushed := make(chan error, 1)
	go func() { flushed <- f.wb.Flush(ctx) }()
	// The batch waits for the row, and then so does whatever the writer
	// sent after giving up on it.
	require.Eventually(t, func() bool {
		var waiting int
		require.NoError(t, watcher.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&waiting))
		return waiting >= 2
	}, time.Minute, 10*time.Millisecond, "the batch and the writer's next round trip waiting on locks")
	require.True(t, f.cut.stalled.Load())
	require.NoError(t, tx.Commit(ctx))
	require.NoError(t, <-flushed)
	f.settledOnce(t)
	st := f.wb.Stats()
	assert.Equal(t, gateway.WriteBehindStats{Batches: 1, Written: 2, Resolved: 1}, st,
		"one round trip, found committed once it had")
}

// TestWriteBehindNeverSettlesTwiceWhenItCannotTell: when whether a batch
// committed cannot be found out either (the database refusing the
// resolution, here with a trigger, every try), a settlement of it is not
// sent again, and if the batch committed, the tenant's window is as it
// should be; the key's completion, which only its lease's holder can write
// once, is sent again and finds it written, counted as unknown, not as a
// lost lease.
func TestWriteBehindNeverSettlesTwiceWhenItCannotTell(t *testing.T) {
	f := newCutFixture(t, cutAnswer)
	_, err := f.pool.Exec(context.Background(), `CREATE FUNCTION no_fences() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN RAISE EXCEPTION 'no fences here'; END $$;
		CREATE TRIGGER no_fences BEFORE INSERT ON write_behind_batches FOR EACH ROW WHEN (NEW.fenced) EXECUTE FUNCTION no_fences()`)
	require.NoError(t, err)
	st := f.cutAndFlush(t)
	assert.Equal(t, uint64(2), st.Unknown, "the settlement, not sent again, and the completion, found written")
	assert.Zero(t, st.Resolved)
	assert.Zero(t, st.LeaseLost)
	assert.Zero(t, st.Lost)
}
