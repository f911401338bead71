package gateway

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/shopspring/decimal"
)

// PostgresBudgets is a BudgetStore in Postgres (the table of the ledger's
// migration 0003). The reservation is one conditional UPDATE, which row
// locking makes atomic across connections and processes.
type PostgresBudgets struct {
	pool   *pgxpool.Pool
	behind *WriteBehind  // nil: Settle writes at once
	wait   time.Duration // the most a reservation waits for a connection
}

var _ BudgetStore = (*PostgresBudgets)(nil)

// NewPostgresBudgets returns a store over pool (ledger.Migrate first).
func NewPostgresBudgets(pool *pgxpool.Pool) *PostgresBudgets {
	return &PostgresBudgets{pool: pool, wait: DefaultConnectionWait}
}

// WithConnectionWait sets the most a reservation waits for one of the
// pool's connections before it fails, having sent nothing (zero or less:
// DefaultConnectionWait). It returns p.
func (p *PostgresBudgets) WithConnectionWait(d time.Duration) *PostgresBudgets {
	p.wait = connectionWait(d)
	return p
}

// WritingBehind makes Settle queue its write on wb, which must be on the
// same database, and return at once (see WriteBehind): the reservation
// stays held until it lands. It returns p.
func (p *PostgresBudgets) WritingBehind(wb *WriteBehind) *PostgresBudgets {
	p.behind = wb
	return p
}

// reserveOnConflict is a reservation's update of a window that has one
// already, only within the limit, the statement's placeholder limit: the
// one clause of Reserve and of PostgresIdempotency's claim that reserves.
func reserveOnConflict(limit string) string {
	return `ON CONFLICT (tenant, window_start) DO UPDATE SET reserved = b.reserved + EXCLUDED.reserved
	WHERE b.spent + b.reserved + EXCLUDED.reserved <= ` + limit + `::numeric`
}

// Reserve implements BudgetStore.
func (p *PostgresBudgets) Reserve(ctx context.Context, tenant string, w time.Time, amount, limit decimal.Decimal) (bool, error) {
	// The window's first reservation inserts the row, later ones update it
	// under its row lock, each only within the limit.
	var reserved bool
	err := reserveOnRow(ctx, p.pool, p.wait, tenant, w, func(b *pgx.Batch) {
		b.Queue(`INSERT INTO budget_windows AS b (tenant, window_start, reserved)
			SELECT $1, $2, $3::numeric WHERE $3::numeric <= $4::numeric
			`+reserveOnConflict("$4"),
			tenant, w, amount.String(), limit.String()).Exec(func(tag pgconn.CommandTag) error {
			reserved = tag.RowsAffected() == 1
			return nil
		})
	})
	return reserved, err
}

// reserveOnRow sends the statement that queue adds, one that reserves on
// the tenant's budget window w (one row), in one round trip and one commit
// waited for.
//
// Every reservation of a tenant locks the window's row until its
// transaction ends, and a transaction committed as usual ends only once
// its commit is on disk: reservations of a busy tenant queue for the row
// one fsync each (one row served 867 to 986 of 1,000 requests a second in
// BenchmarkSustainedDurable). So when another reservation of the window is
// in flight in this process, the statement commits in a transaction of its
// own with synchronous_commit off, which releases the row at once, and a
// second transaction in the same round trip writes a WAL record (a
// transactional logical message, prefix "brownout") and commits as usual,
// waiting until the WAL is durable through its own commit, and so through
// the first, which precedes it. The caller learns the result only then: a
// reservation is never acted on before it is as durable as a synchronous
// commit makes it (flushed, and replicated where synchronous replication is
// set). Reservations of the row then wait for each other's statements, not
// each other's fsyncs, and their flushes, waited for together, share fsyncs
// (Postgres's group commit). Another transaction may see a reservation
// before it is durable; that can only make it refuse a request, and any
// commit it makes after seeing it comes later in the WAL, so no crash keeps
// that commit and loses the reservation it saw.
//
// The round trip is not cut short by the caller's cancellation (a client
// gone): cut after it went out, it may have committed with no one told to
// settle it, and the reservation would be held until its window closed.
// It runs to its end, within reserveTimeout, and the caller, told it
// reserved, settles as ever (uncutRoundTrip). A caller gone while it waits
// for a pooled connection sends nothing, nor does one that waited wait
// for it.
//
// A reservation alone in this process commits as usual: the two
// transactions cost 0.1 to 0.3 ms more at p50 on a durable Postgres
// (BenchmarkOverhead), for a row no one here is waiting on. Reservations
// of one tenant from several processes, each too quiet to overlap its own,
// still queue for the row one fsync each. A database that refuses the WAL
// message (EXECUTE on it revoked) fails the reservation that met the
// refusal, and every later one commits as usual.
func reserveOnRow(ctx context.Context, pool *pgxpool.Pool, wait time.Duration, tenant string, w time.Time, queue func(*pgx.Batch)) error {
	k := rowKey{tenant, w.UnixNano()}
	busy := reservingRows.enter(k)
	defer reservingRows.leave(k)
	var b pgx.Batch
	if !busy || durableCommitRefused.Load() {
		queue(&b)
		return uncutRoundTrip(ctx, pool, wait, func(ctx context.Context, c *pgxpool.Conn) error {
			return c.SendBatch(ctx, &b).Close()
		})
	}
	b.Queue("BEGIN")
	b.Queue("SET LOCAL synchronous_commit TO off")
	queue(&b)
	b.Queue("COMMIT")
	b.Queue(durableCommitSQL)
	err := uncutRoundTrip(ctx, pool, wait, func(ctx context.Context, c *pgxpool.Conn) error {
		return c.SendBatch(ctx, &b).Close()
	})
	// 42501, insufficient_privilege, on the message (not on the statement,
	// whose refusal the usual commit would meet as well).
	if pgErr, ok := errors.AsType[*pgconn.PgError](err); ok && pgErr.Code == "42501" && strings.Contains(pgErr.Message, "pg_logical_emit_message") {
		durableCommitRefused.Store(true)
		return fmt.Errorf("gateway: budget reservation: the role may not run %s (EXECUTE revoked), which makes a reservation "+
			"that released its row early durable; this one's durability is unknown, and every reservation of this process "+
			"now holds its row until it is on disk: %w", durableCommitSQL, err)
	}
	return err
}

// reserveTimeout bounds a claim's or a reservation's round trip once it no
// longer ends with its caller (uncutRoundTrip).
const reserveTimeout = 10 * time.Second

// DefaultConnectionWait is the most a request's claim or reservation waits
// for one of the pool's connections: every connection busy that long is a
// database that stopped answering (a partition, a stall, a lock) or far
// more load than the pool serves, and the request is better refused at
// once, a 503 with nothing sent upstream, than left to queue for as long
// as that lasts, its goroutine and buffers held, while more arrive. A
// healthy pool's waits are far shorter: BenchmarkOverhead's p99 is under
// 0.1 ms, and under 50 ms with a durable Postgres serving the statements
// before and after the call synchronously (all-synchronous).
const DefaultConnectionWait = time.Second

// connectionWait is d, or DefaultConnectionWait when d is not positive:
// a wait of zero would refuse every request.
func connectionWait(d time.Duration) time.Duration {
	if d <= 0 {
		return DefaultConnectionWait
	}
	return d
}

// errNoConnection is a request's store round trip that found no free
// connection within its wait, and so sent nothing.
var errNoConnection = errors.New("no database connection came free")

// acquire takes one of pool's connections, waiting at most wait, and no
// longer than ctx.
func acquire(ctx context.Context, pool *pgxpool.Pool, wait time.Duration) (*pgxpool.Conn, error) {
	actx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	c, err := pool.Acquire(actx)
	if err != nil && ctx.Err() == nil && actx.Err() != nil {
		return nil, fmt.Errorf("%w within %s (a pool of %d): %w", errNoConnection, wait, pool.Stat().MaxConns(), err)
	}
	return c, err
}

// uncutRoundTrip runs send, a round trip whose outcome its caller must
// learn (one cut short after it went out may have committed), on a
// connection of pool. The wait for the connection ends with ctx, or after
// wait (errNoConnection): nothing has been sent then, so a caller gone
// meanwhile has nothing to give back, and under overload (the pool's
// connections all busy, clients giving up) requests no one waits for do
// not queue for them, nor, with the database stalled, do requests whose
// clients would wait as long as it does. The round trip itself runs on ctx
// without its cancellation and deadline, bounded by reserveTimeout instead.
func uncutRoundTrip(ctx context.Context, pool *pgxpool.Pool, wait time.Duration, send func(context.Context, *pgxpool.Conn) error) error {
	c, err := acquire(ctx, pool, wait)
	if err != nil {
		return err
	}
	defer c.Release()
	if err := ctx.Err(); err != nil { // gone as the connection came
		return err
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), reserveTimeout)
	defer cancel()
	return send(ctx, c)
}

// durableCommitSQL writes a WAL record, so its commit, as usual, waits
// until the WAL is durable through it.
const durableCommitSQL = "SELECT pg_logical_emit_message(true, 'brownout', 'reservation durable')"

// durableCommitRefused is set for the process the first time the database
// refuses durableCommitSQL: every role may run it unless EXECUTE on it was
// revoked, and without it no reservation may release its row early.
var durableCommitRefused atomic.Bool

// rowKey is a tenant's budget window.
type rowKey struct {
	tenant string
	window int64 // Unix nanoseconds
}

// reservingRows counts the reservations in flight in this process per
// budget window (every Postgres store of the process together: a tenant
// of the same name on two databases only makes a reservation release its
// row early when it need not).
var reservingRows = rowTraffic{n: map[rowKey]int{}}

type rowTraffic struct {
	mu sync.Mutex
	n  map[rowKey]int
}

// enter counts a reservation of k in; it reports whether another was in
// flight.
func (t *rowTraffic) enter(k rowKey) (busy bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.n[k]++
	return t.n[k] > 1
}

func (t *rowTraffic) leave(k rowKey) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.n[k]--; t.n[k] == 0 {
		delete(t.n, k)
	}
}

// Settle implements BudgetStore.
func (p *PostgresBudgets) Settle(ctx context.Context, tenant string, w time.Time, reserved, actual decimal.Decimal) error {
	st := &settlement{tenant: tenant, window: w, reserved: reserved, actual: actual}
	if p.behind != nil {
		return p.behind.queue(ctx, st.write())
	}
	_, err := p.pool.Exec(ctx, settleSQL, st.write().args...)
	return err
}
