package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/puddle/v2"
	"github.com/shopspring/decimal"

	"github.com/brownout-dev/brownout/internal/backoff"
)

// ErrWriteBehindClosed is a write queued after WriteBehind.Close.
var ErrWriteBehindClosed = errors.New("gateway: write-behind closed")

// WriteBehindSettings configure a WriteBehind. The zero value of every field
// means the default named in its comment.
type WriteBehindSettings struct {
	// QueueSize bounds the writes waiting for a batch (default 65536); when
	// it is full, a write waits for room: backpressure, never a lost write.
	QueueSize int
	// MaxBatch is the most writes one batch carries (default 512).
	MaxBatch int
	// Linger is how long a batch waits for more writes after its first
	// (default 10ms, the ledger writer's group commit), so the writes of one
	// request (a settlement, then its key's completion) and of requests
	// close together share a round trip and a commit.
	Linger time.Duration
	// Retries is how many times a write that failed is tried again, alone,
	// with jittered backoff, before it is given up (default 3). A database
	// out of reach spends none of them: the writer waits for it.
	Retries int
	// Timeout bounds one batch's round trip (default 5s).
	Timeout time.Duration
	Logger  *slog.Logger // default slog.Default()
}

// WriteBehind writes the Postgres statements that follow a response, off
// the client's critical path: an Idempotency-Key's completion or release
// (PostgresIdempotency) and a budget reservation's settlement
// (PostgresBudgets). Queued writes go out together, as one pipelined batch
// in one implicit transaction: one round trip and one commit per batch,
// however many requests it finishes (a group commit). A batch is what is
// queued within Linger of its first write, and while the last batch was
// out: a busy gateway writes in larger batches.
//
// Nothing a request promises depends on these writes being synchronous:
// until a completion lands, a duplicate of its key waits on the lease and
// then replays; until a settlement lands (within Linger and a round trip
// of the answer), the reservation stays held, which can only refuse a
// request early, never let one overshoot: a tenant at its limit may be
// refused for those milliseconds what its last request no longer needs. A write lost
// with its process (a crash) is what a crash before it would leave: the
// key's lease runs out and a duplicate takes it over, and the reservation
// is held until its window closes.
//
// While the database is out of reach (a restart, a failover, a partition),
// the writer waits for it, however long, trying again with jittered
// backoff of up to a second, and writes what is queued once it is back;
// writes queue meanwhile (QueueSize), and Close gives up on them when its
// ctx ends.
//
// Each round trip writes exactly once. A budget settlement is not
// idempotent (sent twice, it subtracts its reservation and adds its spend
// twice), and a round trip that fails after it went out (its connection
// lost, a timeout) may have committed. So every round trip also inserts a
// row of its own (migration 0009's write_behind_batches), and a failed one
// is resolved: the writer inserts the same id, fenced, which waits for the
// round trip if the database is still running it and, once in, keeps it
// from ever committing; the row then there says whether it committed, and
// only what did not is sent again.
type WriteBehind struct {
	pool     *pgxpool.Pool
	settings WriteBehindSettings
	log      *slog.Logger
	jitter   *backoff.Jitter

	mu     sync.RWMutex // held to queue; Close takes it to close q
	closed bool
	q      chan deferredWrite
	done   chan struct{}

	batches, written, lost, leaseLost, unknown, resolved, waits atomic.Uint64

	retention time.Duration // batchRetention, but in tests
	purged    time.Time     // the last purge of write_behind_batches; the loop's own
	away      time.Time     // since when the database has been out of reach; the loop's own

	quit   context.Context // ends when Close gives up: every wait and round trip stops
	giveUp context.CancelFunc
}

// batchRetention is how long a round trip's row in write_behind_batches is
// kept (every gateway on the database deletes them): far longer than a
// failed round trip usually takes to be resolved. A resolution that comes
// later than half of it (the database out of this gateway's reach that
// long) may find the row deleted, so it cannot tell that the round trip
// did not commit: its outcome is unknown.
const batchRetention = time.Hour

// purgeEvery is how often a round trip deletes the rows past
// batchRetention.
const purgeEvery = time.Minute

// deferredWrite is one statement queued on a WriteBehind, or a barrier
// (flushed non-nil) that Flush waits on.
type deferredWrite struct {
	what    string // for the log: "idempotency complete", "budget settle", ...
	tenant  string // for the log
	sql     string
	args    []any
	leased  bool // one row affected, or the lease was lost
	flushed chan struct{}
	// settle, when set, is a budget settlement: the settlements of one
	// tenant's window in a batch go as one UPDATE of their sums, so a hot
	// tenant's budget row gets one new version, and one lock, per batch.
	settle *settlement
}

// settlement is a budget settlement, written as settleSQL.
type settlement struct {
	tenant           string
	window           time.Time
	reserved, actual decimal.Decimal
}

const settleSQL = `UPDATE budget_windows SET reserved = reserved - $3::numeric, spent = spent + $4::numeric
	WHERE tenant = $1 AND window_start = $2`

// write is the settlement as a deferred write.
func (st *settlement) write() deferredWrite {
	return deferredWrite{what: "budget settle", tenant: st.tenant, sql: settleSQL,
		args: []any{st.tenant, st.window, st.reserved.String(), st.actual.String()}, settle: st}
}

// WriteBehindStats count a WriteBehind's work since it started.
type WriteBehindStats struct {
	Batches   uint64 // round trips carrying writes
	Written   uint64 // statements the database took
	Lost      uint64 // writes given up: refused through their retries, or left when Close gave up (logged)
	LeaseLost uint64 // completions and releases of a lease already lost (logged)
	// Waits counts the waits for a database out of reach (the first of
	// each outage logged).
	Waits uint64
	// Resolved counts round trips that failed after they went out and were
	// then found to have committed, or fenced so they never will (logged).
	Resolved uint64
	// Unknown counts writes whose outcome could not be found out, their
	// round trip having failed after it went out and its resolution too
	// (the database refusing it every try, or Close giving up) (logged):
	// settlements, then not sent again, and completions and releases, sent
	// again, that found their claim gone.
	Unknown uint64
}

// NewWriteBehind starts a WriteBehind over pool; Close stops it.
func NewWriteBehind(pool *pgxpool.Pool, s WriteBehindSettings) *WriteBehind {
	if s.QueueSize <= 0 {
		s.QueueSize = 65536
	}
	if s.MaxBatch <= 0 {
		s.MaxBatch = 512
	}
	if s.Retries <= 0 {
		s.Retries = 3
	}
	if s.Linger <= 0 {
		s.Linger = 10 * time.Millisecond
	}
	if s.Timeout <= 0 {
		s.Timeout = 5 * time.Second
	}
	w := &WriteBehind{pool: pool, settings: s, log: s.Logger, jitter: backoff.NewJitter(20*time.Millisecond, time.Second, 1),
		q: make(chan deferredWrite, s.QueueSize), done: make(chan struct{}), retention: batchRetention}
	w.quit, w.giveUp = context.WithCancel(context.Background())
	if w.log == nil {
		w.log = slog.Default()
	}
	go w.loop()
	return w
}

// Stats returns the counts so far.
func (w *WriteBehind) Stats() WriteBehindStats {
	return WriteBehindStats{Batches: w.batches.Load(), Written: w.written.Load(), Lost: w.lost.Load(), LeaseLost: w.leaseLost.Load(),
		Waits: w.waits.Load(), Resolved: w.resolved.Load(), Unknown: w.unknown.Load()}
}

// queue adds a write to the next batch, waiting for room when the queue is
// full (or until ctx ends).
func (w *WriteBehind) queue(ctx context.Context, d deferredWrite) error {
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.closed {
		return ErrWriteBehindClosed
	}
	select {
	case w.q <- d:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("gateway: write-behind %s: %w", d.what, ctx.Err())
	}
}

// Flush waits until every write queued before it has been written (or
// given up), or ctx ends.
func (w *WriteBehind) Flush(ctx context.Context) error {
	b := deferredWrite{what: "flush", flushed: make(chan struct{})}
	if err := w.queue(ctx, b); err != nil {
		return err
	}
	select {
	case <-b.flushed:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close writes what is queued and stops; writes queued after it fail with
// ErrWriteBehindClosed. If the queue has not drained when ctx ends (the
// database out of reach), it gives up on what is left, counted as lost,
// and returns ctx's error. Safe to call more than once.
func (w *WriteBehind) Close(ctx context.Context) error {
	w.mu.Lock()
	if !w.closed {
		w.closed = true
		close(w.q)
	}
	w.mu.Unlock()
	select {
	case <-w.done:
		return nil
	case <-ctx.Done():
		n := len(w.q)
		w.giveUp()
		return fmt.Errorf("gateway: write-behind: gave up on %d writes still queued and the batch in hand: %w", n, ctx.Err())
	}
}

func (w *WriteBehind) loop() {
	defer close(w.done)
	batch := make([]deferredWrite, 0, w.settings.MaxBatch)
	linger := time.NewTimer(time.Hour)
	linger.Stop()
	for first := range w.q {
		batch = append(batch[:0], first)
		linger.Reset(w.settings.Linger)
	fill:
		for len(batch) < w.settings.MaxBatch && first.flushed == nil {
			select {
			case d, ok := <-w.q:
				if !ok {
					break fill
				}
				batch = append(batch, d)
				if d.flushed != nil {
					break fill // Flush waits for no linger
				}
			case <-linger.C:
				break fill
			}
		}
		linger.Stop()
		w.write(batch)
	}
}

// write sends a batch's statements as one; when that fails (one statement
// refused rolls back the batch, or the database is away) each is tried
// alone, with retries, so one bad write never costs the others. A round
// trip that failed after it went out is resolved first (deliver): one that
// committed is not sent again. Only when that cannot be found out either
// (the database refusing the resolution every try, Close giving up, or
// half of batchRetention gone by) is a settlement of it not sent again, as
// a second would subtract its reservation and add its spend twice, and a
// reservation subtracted twice lets another request overshoot: if the batch did not commit, the reservation stays held until
// its window closes, which can only refuse early. Completions and
// releases, which only their lease's holder can write once, are sent again
// in any case.
func (w *WriteBehind) write(batch []deferredWrite) {
	// The batch's writes, the settlements of one tenant's window summed in
	// one; alone is each write as it was queued, for the one-at-a-time pass.
	var writes, alone []deferredWrite
	sums := map[budgetKey]int{} // index in writes
	for _, d := range batch {
		switch {
		case d.flushed != nil:
			continue
		case d.settle != nil:
			k := budgetKey{d.settle.tenant, d.settle.window}
			if i, ok := sums[k]; ok {
				sum := *writes[i].settle
				sum.reserved, sum.actual = sum.reserved.Add(d.settle.reserved), sum.actual.Add(d.settle.actual)
				writes[i] = sum.write()
			} else {
				sums[k] = len(writes)
				writes = append(writes, d)
			}
		default:
			writes = append(writes, d)
		}
		alone = append(alone, d)
	}
	if len(writes) > 0 {
		if unknown, err := w.deliver(writes, false); err != nil {
			w.oneByOne(alone, err, unknown)
		}
	}
	if time.Since(w.purged) >= purgeEvery {
		w.purge()
	}
	for _, d := range batch {
		if d.flushed != nil {
			close(d.flushed)
		}
	}
}

// oneByOne sends each of writes alone, with retries, after their batch
// failed with batchErr; unknown says the batch may have committed.
func (w *WriteBehind) oneByOne(writes []deferredWrite, batchErr error, unknown bool) {
	for _, d := range writes {
		err, sentBefore := batchErr, unknown // d may be in the database already
		for n := 0; err != nil && n <= w.settings.Retries; n++ {
			if sentBefore && d.settle != nil {
				w.unknown.Add(1)
				w.log.Error("gateway: write-behind: budget settle: the round trip that carried it failed after it was sent, "+
					"and whether it committed could not be found out; not sent again, which would count it twice (if it "+
					"did not commit, its reservation stays held until its window closes)", "tenant", d.tenant, "error", err)
				err = nil
				break
			}
			if n > 0 {
				backoff.Sleep(w.quit, w.jitter.Next(n))
			}
			var u bool
			u, err = w.deliver([]deferredWrite{d}, sentBefore)
			sentBefore = sentBefore || u
		}
		if err != nil {
			w.lost.Add(1)
			w.log.Error("gateway: write-behind: given up", "write", d.what, "tenant", d.tenant, "error", err)
		}
	}
}

// outcomeUnknown reports whether a round trip that failed with err may
// have committed: it failed after it had a connection to send on, and not
// by the server refusing a statement (an ERROR rolls the batch back).
// pgconn.SafeToRetry is no guide here: pgx reports a batch whose
// connection was lost after it went out as "conn closed", which it calls
// safe to retry (TestWriteBehindNeverSettlesTwice).
func outcomeUnknown(err error) bool {
	if errors.Is(err, errNotSent) {
		return false
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Severity != "ERROR" // FATAL and PANIC end the session, perhaps after a commit
	}
	return true
}

// errNotSent wraps the failure to get a connection for a round trip:
// nothing was sent.
var errNotSent = errors.New("no connection to send on")

// deliver sends writes as one round trip (send) and, when it fails after
// it went out, resolves it. It returns nil when the writes are in the
// database; otherwise the round trip's error, and unknown when they may be
// in it nonetheless, the resolution having failed too.
func (w *WriteBehind) deliver(writes []deferredWrite, sentBefore bool) (unknown bool, err error) {
	id := uuid.New()
	var sent time.Time
	for n := 1; ; n++ {
		sent = time.Now()
		if err = w.send(id, writes, sentBefore); !unreachable(err) || !w.waitFor(n, err) {
			break
		}
	}
	if err == nil || !outcomeUnknown(err) {
		return false, err
	}
	committed, rerr := w.resolve(id)
	if rerr == nil && !committed && time.Since(sent) >= w.retention/2 {
		rerr = fmt.Errorf("resolved %s after the round trip, when its row may have been deleted", time.Since(sent).Round(time.Second))
	}
	if rerr != nil {
		w.log.Error("gateway: write-behind: a round trip failed after it went out, and whether it committed could not "+
			"be found out", "writes", len(writes), "error", err, "resolving", rerr)
		return true, err
	}
	w.resolved.Add(1)
	if committed {
		// Each statement's answer was lost with the round trip's: a
		// completion that found its lease lost goes uncounted.
		w.written.Add(uint64(len(writes)))
		w.log.Warn("gateway: write-behind: a round trip failed after it went out, and had committed: not sent again",
			"writes", len(writes), "error", err)
		return false, nil
	}
	w.log.Warn("gateway: write-behind: a round trip failed after it went out, and did not commit: sent again",
		"writes", len(writes), "error", err)
	return false, err
}

// purge deletes the rows of write_behind_batches past batchRetention, in
// a round trip of its own, so a purge that fails never costs a write.
func (w *WriteBehind) purge() {
	w.purged = time.Now()
	ctx, cancel := context.WithTimeout(w.quit, w.settings.Timeout)
	defer cancel()
	if _, err := w.pool.Exec(ctx, `DELETE FROM write_behind_batches WHERE written_at < now() - $1::bigint * interval '1 second'`,
		int64(w.retention/time.Second)); err != nil {
		w.log.Warn("gateway: write-behind: deleting old rows of write_behind_batches", "error", err)
	}
}

// unreachable reports whether a round trip failed for want of a
// connection (the database out of reach), which the writer waits out; a
// closed pool is not waited for.
func unreachable(err error) bool {
	return errors.Is(err, errNotSent) && !errors.Is(err, puddle.ErrClosedPool)
}

// waitFor waits before try n+1 of a round trip that failed with err while
// the database is out of reach (or its outcome unknown), and reports
// whether to try again: false once Close has given up.
func (w *WriteBehind) waitFor(n int, err error) bool {
	w.waits.Add(1)
	if w.away.IsZero() {
		w.away = time.Now()
		w.log.Warn("gateway: write-behind: the database is out of reach; writes wait for it", "error", err)
	}
	return backoff.Sleep(w.quit, w.jitter.Next(min(n, 10)))
}

// resolve finds out whether the round trip that wrote id committed,
// waiting out a database out of reach (or a round trip of its own lost),
// and trying again Retries times a resolution the database refuses. It
// inserts id as fenced: the insert waits for the round trip if the
// database is still running it, and once the fenced row is in, the
// round trip's own insert of id can only fail, so it never commits. The
// row then there says which happened: a fenced one that the round trip did
// not commit (this insert's, or an earlier try's whose answer was lost
// too), an unfenced one that it did.
func (w *WriteBehind) resolve(id uuid.UUID) (committed bool, err error) {
	for n, refused := 1, 0; ; n++ {
		var fenced bool
		var b pgx.Batch
		b.Queue(`INSERT INTO write_behind_batches (id, fenced) VALUES ($1, true) ON CONFLICT (id) DO NOTHING`, id)
		b.Queue(`SELECT fenced FROM write_behind_batches WHERE id = $1`, id).QueryRow(func(r pgx.Row) error {
			return r.Scan(&fenced)
		})
		ctx, cancel := context.WithTimeout(w.quit, w.settings.Timeout)
		err = w.pool.SendBatch(ctx, &b).Close()
		cancel()
		if err == nil {
			w.back()
			return !fenced, nil
		}
		if pgErr, ok := errors.AsType[*pgconn.PgError](err); ok && pgErr.Severity == "ERROR" || errors.Is(err, pgx.ErrNoRows) {
			if refused++; refused > w.settings.Retries {
				return false, err
			}
		}
		if errors.Is(err, puddle.ErrClosedPool) || !w.waitFor(n, err) {
			return false, err
		}
	}
}

// back notes a round trip that reached the database.
func (w *WriteBehind) back() {
	if !w.away.IsZero() {
		w.log.Info("gateway: write-behind: the database is back", "after", time.Since(w.away))
		w.away = time.Time{}
	}
}

// send runs writes as one pipelined batch: one round trip, one transaction,
// which inserts id into write_behind_batches first (resolve). sentBefore says
// the writes were in a round trip whose outcome is unknown: a completion
// or release that finds its claim gone is then likely to have been written
// by it, and is counted as unknown, not as a lost lease.
func (w *WriteBehind) send(id uuid.UUID, writes []deferredWrite, sentBefore bool) error {
	ctx, cancel := context.WithTimeout(w.quit, w.settings.Timeout)
	defer cancel()
	var b pgx.Batch
	b.Queue(`INSERT INTO write_behind_batches (id) VALUES ($1)`, id)
	lost := make([]bool, len(writes))
	for i, d := range writes {
		b.Queue(d.sql, d.args...).Exec(func(tag pgconn.CommandTag) error {
			lost[i] = d.leased && tag.RowsAffected() != 1
			return nil
		})
	}
	conn, err := w.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("%w: %w", errNotSent, err)
	}
	defer conn.Release()
	w.batches.Add(1)
	err = conn.SendBatch(ctx, &b).Close()
	w.back()
	if err != nil {
		return err
	}
	w.written.Add(uint64(len(writes)))
	for i, d := range writes {
		switch {
		case !lost[i]:
		case sentBefore:
			w.unknown.Add(1)
			w.log.Warn("gateway: write-behind: "+d.what+": no claim in flight; the round trip that failed before "+
				"had likely written it, or the lease was lost", "tenant", d.tenant)
		default:
			w.leaseLost.Add(1)
			w.log.Error("gateway: write-behind: "+d.what, "tenant", d.tenant, "error", ErrLeaseLost)
		}
	}
	return nil
}
