package gateway

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/brownout-dev/brownout/internal/backoff"
)

// PostgresIdempotency is an IdempotencyStore in Postgres (the table of the
// ledger's migrations 0002 and 0007), shared by every gateway process on
// the database. A duplicate of an in-flight key polls until it completes,
// is released, or its lease runs out unrenewed (its gateway died).
type PostgresIdempotency struct {
	pool     *pgxpool.Pool
	settings IdempotencySettings
	poll     time.Duration
	wait     time.Duration // the most a claim (and its lookup) waits for a connection
	behind   *WriteBehind  // nil: Complete and Release write at once
}

var _ IdempotencyStore = (*PostgresIdempotency)(nil)

// NewPostgresIdempotency returns a store over pool (ledger.Migrate first).
func NewPostgresIdempotency(pool *pgxpool.Pool, s IdempotencySettings) *PostgresIdempotency {
	return &PostgresIdempotency{pool: pool, settings: s.withDefaults(), poll: 20 * time.Millisecond, wait: DefaultConnectionWait}
}

// WithConnectionWait sets the most a claim, and a duplicate's look at the
// key it waits on, waits for one of the pool's connections before it
// fails, having sent nothing (zero or less: DefaultConnectionWait). It
// returns p.
func (p *PostgresIdempotency) WithConnectionWait(d time.Duration) *PostgresIdempotency {
	p.wait = connectionWait(d)
	return p
}

// WritingBehind makes Complete and Release queue their writes on wb, which
// must be on the same database, and return at once (see WriteBehind): the
// request that completes its key waits for no round trip. It returns p.
func (p *PostgresIdempotency) WritingBehind(wb *WriteBehind) *PostgresIdempotency {
	p.behind = wb
	return p
}

// claimSQL inserts a claim owned by $6, or takes over one that expired
// (completed long ago) or whose owner stopped renewing its lease (with the
// same request only).
const claimSQL = `INSERT INTO idempotency_keys (tenant, key, body_hash, state, locked_until, expires_at, owner)
VALUES ($1, $2, $3, 'in_flight', now() + make_interval(secs => $4), now() + make_interval(secs => $5), $6)
ON CONFLICT (tenant, key) DO UPDATE
SET body_hash = EXCLUDED.body_hash, state = 'in_flight', status = NULL, content_type = NULL, body = NULL, body_omitted = 0,
    locked_until = EXCLUDED.locked_until, expires_at = EXCLUDED.expires_at, owner = EXCLUDED.owner
WHERE idempotency_keys.expires_at < now()
   OR (idempotency_keys.state = 'in_flight' AND idempotency_keys.locked_until < now()
       AND idempotency_keys.body_hash = EXCLUDED.body_hash)
RETURNING true`

// claimReservingSQL is claimSQL and, when the key is claimed, a budget
// reservation of $7 within the limit $8 on the tenant's window $9 (the
// statement of PostgresBudgets.Reserve): the two in one statement, so one
// round trip and one commit before the upstream call. It reports whether
// each took place.
var claimReservingSQL = `WITH claim AS (` + claimSQL + `),
hold AS (
	INSERT INTO budget_windows AS b (tenant, window_start, reserved)
	SELECT $1, $9, $7::numeric FROM claim WHERE $7::numeric <= $8::numeric
	` + reserveOnConflict("$8") + `
	RETURNING true)
SELECT EXISTS (SELECT FROM claim), EXISTS (SELECT FROM hold)`

// reservesOn reports whether Begin can take a reservation of budgets in
// the claim's statement: budgets are PostgresBudgets on p's pool.
func (p *PostgresIdempotency) reservesOn(budgets BudgetStore) bool {
	pb, ok := budgets.(*PostgresBudgets)
	return ok && pb.pool == p.pool
}

// Begin implements IdempotencyStore.
func (p *PostgresIdempotency) Begin(ctx context.Context, tenant, key string, hash []byte) (*Lease, *StoredResponse, error) {
	l, stored, _, err := p.begin(ctx, tenant, key, hash, nil)
	return l, stored, err
}

// begin is Begin that, given r, also reserves r on the tenant's budget in
// the claim's own statement, when it claims the key (reservesOn says when
// it can): reserved reports whether the budget covered it.
func (p *PostgresIdempotency) begin(ctx context.Context, tenant, key string, hash []byte, r *reservation) (_ *Lease, _ *StoredResponse, reserved bool, _ error) {
	lease, retention := p.settings.Lease.Seconds(), p.settings.Retention.Seconds()
	for {
		l := &Lease{Tenant: tenant, Key: key, Token: newLeaseToken(), TTL: p.settings.Lease, MaxBody: p.settings.MaxResponseBytes}
		var claimed bool
		var err error
		if r == nil {
			// Not cut short by the caller once sent (uncutRoundTrip): a
			// claim that committed unseen would hold the key until its
			// lease ran out.
			err = uncutRoundTrip(ctx, p.pool, p.wait, func(ctx context.Context, c *pgxpool.Conn) error {
				return c.QueryRow(ctx, claimSQL, tenant, key, hash, lease, retention, l.Token).Scan(&claimed)
			})
			if errors.Is(err, pgx.ErrNoRows) {
				err = nil
			}
		} else {
			// Scanned into locals: a round trip that fails after the
			// statement (its durability unknown) reports nothing.
			var c, rs bool
			err = reserveOnRow(ctx, p.pool, p.wait, tenant, r.window, func(b *pgx.Batch) {
				b.Queue(claimReservingSQL, tenant, key, hash, lease, retention, l.Token,
					r.amount.String(), r.limit.String(), r.window).QueryRow(func(row pgx.Row) error { return row.Scan(&c, &rs) })
			})
			if err == nil {
				claimed, reserved = c, rs
			}
		}
		if err != nil {
			return nil, nil, false, fmt.Errorf("gateway: idempotency claim: %w", err)
		}
		if claimed {
			return l, nil, reserved, nil
		}
		var stored []byte
		var state string
		var resp StoredResponse
		var status *int32
		var ctype *string
		var c *pgxpool.Conn
		if c, err = acquire(ctx, p.pool, p.wait); err == nil {
			err = c.QueryRow(ctx, `SELECT body_hash, state, status, content_type, body, body_omitted FROM idempotency_keys
				WHERE tenant = $1 AND key = $2`, tenant, key).Scan(&stored, &state, &status, &ctype, &resp.Body, &resp.Omitted)
			c.Release()
		}
		if errors.Is(err, pgx.ErrNoRows) {
			continue // released between the two statements: claim again
		}
		if err != nil {
			return nil, nil, false, fmt.Errorf("gateway: idempotency read: %w", err)
		}
		if !bytes.Equal(stored, hash) {
			return nil, nil, false, ErrIdempotencyMismatch
		}
		if state == "done" && status != nil && ctype != nil {
			resp.Status, resp.ContentType = int(*status), *ctype
			return nil, &resp, false, nil
		}
		if !backoff.Sleep(ctx, p.poll) {
			return nil, nil, false, ctx.Err()
		}
	}
}

// finish is leased for the writes that end a lease (complete, release):
// with a WriteBehind they are queued on it, which logs and counts a lost
// lease, and return at once.
func (p *PostgresIdempotency) finish(ctx context.Context, l *Lease, what, sql string, args ...any) error {
	if p.behind != nil {
		return p.behind.queue(ctx, deferredWrite{what: "idempotency " + what, tenant: l.Tenant, sql: sql, args: args, leased: true})
	}
	return p.leased(ctx, what, sql, args...)
}

// leased runs an update of the key l holds; none affected is ErrLeaseLost.
func (p *PostgresIdempotency) leased(ctx context.Context, what, sql string, args ...any) error {
	tag, err := p.pool.Exec(ctx, sql, args...)
	if err != nil {
		return fmt.Errorf("gateway: idempotency %s: %w", what, err)
	}
	if tag.RowsAffected() != 1 {
		return ErrLeaseLost
	}
	return nil
}

// Heartbeat implements IdempotencyStore.
func (p *PostgresIdempotency) Heartbeat(ctx context.Context, l *Lease) error {
	return p.leased(ctx, "heartbeat", `UPDATE idempotency_keys SET locked_until = now() + make_interval(secs => $4)
		WHERE tenant = $1 AND key = $2 AND owner = $3 AND state = 'in_flight'`, l.Tenant, l.Key, l.Token, p.settings.Lease.Seconds())
}

// Complete implements IdempotencyStore.
func (p *PostgresIdempotency) Complete(ctx context.Context, l *Lease, resp StoredResponse) error {
	resp = keepable(resp, p.settings.MaxResponseBytes)
	return p.finish(ctx, l, "complete", `UPDATE idempotency_keys SET state = 'done', status = $4, content_type = $5, body = $6,
		body_omitted = $7, owner = '', expires_at = now() + make_interval(secs => $8)
		WHERE tenant = $1 AND key = $2 AND owner = $3 AND state = 'in_flight'`,
		l.Tenant, l.Key, l.Token, resp.Status, resp.ContentType, resp.Body, resp.Omitted, p.settings.Retention.Seconds())
}

// Release implements IdempotencyStore.
func (p *PostgresIdempotency) Release(ctx context.Context, l *Lease) error {
	return p.finish(ctx, l, "release", `DELETE FROM idempotency_keys WHERE tenant = $1 AND key = $2 AND owner = $3 AND state = 'in_flight'`,
		l.Tenant, l.Key, l.Token)
}

// Purge implements IdempotencyStore.
func (p *PostgresIdempotency) Purge(ctx context.Context) (int, error) {
	tag, err := p.pool.Exec(ctx, `DELETE FROM idempotency_keys
		WHERE (state = 'done' AND expires_at < now())
		   OR (state = 'in_flight' AND locked_until < now() - make_interval(secs => $1))`, p.settings.Lease.Seconds())
	if err != nil {
		return 0, fmt.Errorf("gateway: idempotency purge: %w", err)
	}
	return int(tag.RowsAffected()), nil
}
