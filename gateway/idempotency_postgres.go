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
// ledger's migration 0002), shared by every gateway process on the
// database. A duplicate of an in-flight key polls until it completes.
type PostgresIdempotency struct {
	pool     *pgxpool.Pool
	settings IdempotencySettings
	poll     time.Duration
}

var _ IdempotencyStore = (*PostgresIdempotency)(nil)

// NewPostgresIdempotency returns a store over pool (ledger.Migrate first).
func NewPostgresIdempotency(pool *pgxpool.Pool, s IdempotencySettings) *PostgresIdempotency {
	return &PostgresIdempotency{pool: pool, settings: s.withDefaults(), poll: 20 * time.Millisecond}
}

// claimSQL inserts a claim, or takes over one that expired (completed long
// ago) or whose owner's lease ran out (with the same request only).
const claimSQL = `INSERT INTO idempotency_keys (tenant, key, body_hash, state, locked_until, expires_at)
VALUES ($1, $2, $3, 'in_flight', now() + make_interval(secs => $4), now() + make_interval(secs => $5))
ON CONFLICT (tenant, key) DO UPDATE
SET body_hash = EXCLUDED.body_hash, state = 'in_flight', status = NULL, content_type = NULL, body = NULL,
    locked_until = EXCLUDED.locked_until, expires_at = EXCLUDED.expires_at
WHERE idempotency_keys.expires_at < now()
   OR (idempotency_keys.state = 'in_flight' AND idempotency_keys.locked_until < now()
       AND idempotency_keys.body_hash = EXCLUDED.body_hash)
RETURNING true`

// Begin implements IdempotencyStore.
func (p *PostgresIdempotency) Begin(ctx context.Context, tenant, key string, hash []byte) (*StoredResponse, error) {
	lease, retention := p.settings.Lease.Seconds(), p.settings.Retention.Seconds()
	for {
		var claimed bool
		err := p.pool.QueryRow(ctx, claimSQL, tenant, key, hash, lease, retention).Scan(&claimed)
		if err == nil {
			return nil, nil
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return nil, fmt.Errorf("gateway: idempotency claim: %w", err)
		}
		var stored []byte
		var state string
		var resp StoredResponse
		var status *int32
		var ctype *string
		err = p.pool.QueryRow(ctx, `SELECT body_hash, state, status, content_type, body FROM idempotency_keys
			WHERE tenant = $1 AND key = $2`, tenant, key).Scan(&stored, &state, &status, &ctype, &resp.Body)
		if errors.Is(err, pgx.ErrNoRows) {
			continue // released between the two statements: claim again
		}
		if err != nil {
			return nil, fmt.Errorf("gateway: idempotency read: %w", err)
		}
		if !bytes.Equal(stored, hash) {
			return nil, ErrIdempotencyMismatch
		}
		if state == "done" && status != nil && ctype != nil {
			resp.Status, resp.ContentType = int(*status), *ctype
			return &resp, nil
		}
		if !backoff.Sleep(ctx, p.poll) {
			return nil, ctx.Err()
		}
	}
}

// Complete implements IdempotencyStore.
func (p *PostgresIdempotency) Complete(ctx context.Context, tenant, key string, resp StoredResponse) error {
	tag, err := p.pool.Exec(ctx, `UPDATE idempotency_keys SET state = 'done', status = $3, content_type = $4, body = $5,
		expires_at = now() + make_interval(secs => $6) WHERE tenant = $1 AND key = $2 AND state = 'in_flight'`,
		tenant, key, resp.Status, resp.ContentType, resp.Body, p.settings.Retention.Seconds())
	if err != nil {
		return fmt.Errorf("gateway: idempotency complete: %w", err)
	}
	if tag.RowsAffected() != 1 {
		return errors.New("gateway: idempotency: complete of a key not claimed")
	}
	return nil
}

// Release implements IdempotencyStore.
func (p *PostgresIdempotency) Release(ctx context.Context, tenant, key string) error {
	_, err := p.pool.Exec(ctx, `DELETE FROM idempotency_keys WHERE tenant = $1 AND key = $2 AND state = 'in_flight'`, tenant, key)
	if err != nil {
		return fmt.Errorf("gateway: idempotency release: %w", err)
	}
	return nil
}
