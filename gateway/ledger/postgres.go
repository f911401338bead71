package ledger

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/shopspring/decimal"
)

// PostgresStore is a Store in Postgres, through a pgx pool it does not own.
// Costs are NUMERIC(20,12) and travel as decimal text, never as floats. It
// is safe for concurrent use. Call Migrate (or MigrateConn) before using it.
type PostgresStore struct {
	pool *pgxpool.Pool
}

var _ Store = (*PostgresStore)(nil)

// NewPostgresStore returns a store over pool; the caller closes the pool.
func NewPostgresStore(pool *pgxpool.Pool) *PostgresStore {
	return &PostgresStore{pool: pool}
}

const attemptColumns = `request_id, attempt, idempotency_key, tenant, route, provider, model, outcome,
	http_status, error_class, error_message, input_tokens, output_tokens, reasoning_tokens,
	cache_read_tokens, cache_write_tokens, cost, started_at, finished_at, provider_request_id, client_request_id, usage_source,
	cache_write_1h_tokens`

// insertSQL inserts a whole batch in one statement from column arrays: one
// round trip. It is idempotent: a conflicting record replaces the row only
// when it is finished and the row unfinished (the batch has one record per
// identity: ON CONFLICT DO UPDATE may not meet a row twice).
var insertSQL = `INSERT INTO ledger_attempts (` + attemptColumns + `)
SELECT request_id, attempt, idempotency_key, tenant, route, provider, model, outcome,
	http_status, error_class, error_message, input_tokens, output_tokens, reasoning_tokens,
	cache_read_tokens, cache_write_tokens, cost::numeric(20,12), started_at, finished_at, provider_request_id, client_request_id, usage_source,
	cache_write_1h_tokens
FROM unnest($1::text[], $2::int[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[],
	$9::int[], $10::text[], $11::text[], $12::bigint[], $13::bigint[], $14::bigint[],
	$15::bigint[], $16::bigint[], $17::text[], $18::timestamptz[], $19::timestamptz[], $20::text[], $21::text[], $22::text[], $23::bigint[])
	AS t(` + attemptColumns + `)
ON CONFLICT (request_id, attempt) DO UPDATE SET (` + attemptColumns + `) = (` + excludedColumns + `), recorded_at = now()
	WHERE ledger_attempts.outcome = 'unfinished' AND EXCLUDED.outcome <> 'unfinished'`

// excludedColumns is attemptColumns, each of EXCLUDED.
var excludedColumns = "EXCLUDED." + strings.Join(strings.Split(strings.Join(strings.Fields(attemptColumns), ""), ","), ", EXCLUDED.")

// Insert implements Store.
func (s *PostgresStore) Insert(ctx context.Context, batch []Attempt) (int, error) {
	batch, err := validBatch(batch)
	if err != nil {
		return 0, err
	}
	batch = firstOfEach(batch)
	if len(batch) == 0 {
		return 0, nil
	}
	n := len(batch)
	var (
		reqIDs, idemKeys, tenants, routes, providers, models, outcomes = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		errClasses, errMsgs, costs, provReqIDs, clientReqIDs, sources  = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		attempts, statuses                                             = make([]int32, n), make([]int32, n)
		in, out, reasoning, cacheRead, cacheWrite, cacheWrite1h        = make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
		started, finished                                              = make([]time.Time, n), make([]time.Time, n)
	)
	for i := range batch {
		a := &batch[i]
		reqIDs[i], attempts[i], idemKeys[i], tenants[i] = a.RequestID, int32(a.Attempt), a.IdempotencyKey, a.Tenant
		routes[i], providers[i], models[i], outcomes[i] = a.Route, a.Provider, a.Model, string(a.Outcome)
		statuses[i], errClasses[i], errMsgs[i] = int32(a.HTTPStatus), a.ErrorClass, a.ErrorMessage
		in[i], out[i], reasoning[i] = a.Tokens.Input, a.Tokens.Output, a.Tokens.Reasoning
		cacheRead[i], cacheWrite[i], cacheWrite1h[i] = a.Tokens.CacheRead, a.Tokens.CacheWrite, a.Tokens.CacheWrite1h
		costs[i], started[i], finished[i], provReqIDs[i] = a.Cost.String(), a.StartedAt, a.FinishedAt, a.ProviderReqID
		clientReqIDs[i], sources[i] = a.ClientRequestID, string(a.UsageSource)
	}
	tag, err := s.pool.Exec(ctx, insertSQL, reqIDs, attempts, idemKeys, tenants, routes, providers, models, outcomes,
		statuses, errClasses, errMsgs, in, out, reasoning, cacheRead, cacheWrite, costs, started, finished, provReqIDs, clientReqIDs, sources, cacheWrite1h)
	if err != nil {
		return 0, fmt.Errorf("ledger: postgres insert of %d attempts: %w", n, err)
	}
	return int(tag.RowsAffected()), nil
}

// where renders the filter of q as a WHERE clause with its arguments.
func (q *Query) where() (string, []any) {
	var conds []string
	var args []any
	add := func(cond string, v any) {
		args = append(args, v)
		conds = append(conds, fmt.Sprintf(cond, len(args)))
	}
	if !q.From.IsZero() {
		add("started_at >= $%d", q.From)
	}
	if !q.To.IsZero() {
		add("started_at < $%d", q.To)
	}
	if q.Tenant != "" {
		add("tenant = $%d", q.Tenant)
	}
	if q.Provider != "" {
		add("provider = $%d", q.Provider)
	}
	if q.Model != "" {
		add("model = $%d", q.Model)
	}
	if q.ClientRequestID != "" {
		add("client_request_id = $%d", q.ClientRequestID)
	}
	if len(conds) == 0 {
		return "", nil
	}
	return " WHERE " + strings.Join(conds, " AND "), args
}

// Totals implements Store.
func (s *PostgresStore) Totals(ctx context.Context, q Query) ([]Total, error) {
	if err := q.validate(); err != nil {
		return nil, err
	}
	// Columns in a fixed order, whatever the order of q.GroupBy, so rows sort
	// as MemoryStore sorts them; names come from the validated enum only.
	grouped := map[Dimension]bool{}
	for _, d := range q.GroupBy {
		grouped[d] = true
	}
	var cols []string
	for _, d := range []Dimension{ByProvider, ByModel, ByTenant, ByOutcome} {
		if grouped[d] {
			cols = append(cols, string(d))
		} else {
			cols = append(cols, "''")
		}
	}
	where, args := q.where()
	var groupBy, orderBy []string
	for _, c := range cols {
		if c != "''" {
			groupBy = append(groupBy, c)
			orderBy = append(orderBy, c+` COLLATE "C"`)
		}
	}
	sql := "SELECT " + strings.Join(cols, ", ") + `, count(*), count(DISTINCT request_id),
		sum(input_tokens), sum(output_tokens), sum(reasoning_tokens), sum(cache_read_tokens), sum(cache_write_tokens), sum(cache_write_1h_tokens),
		sum(cost)::text, coalesce(sum(cost) FILTER (WHERE usage_source = 'estimated'), 0)::text FROM ledger_attempts` + where
	if len(groupBy) > 0 {
		sql += " GROUP BY " + strings.Join(groupBy, ", ") + " ORDER BY " + strings.Join(orderBy, ", ")
	} else {
		sql += " HAVING count(*) > 0"
	}
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("ledger: postgres totals: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Total, error) {
		var t Total
		var outcome, cost, estimated string
		// sum(bigint) is numeric in Postgres; pgx scans it into int64 exactly.
		err := row.Scan(&t.Provider, &t.Model, &t.Tenant, &outcome, &t.Attempts, &t.Requests,
			&t.Tokens.Input, &t.Tokens.Output, &t.Tokens.Reasoning, &t.Tokens.CacheRead, &t.Tokens.CacheWrite, &t.Tokens.CacheWrite1h, &cost, &estimated)
		if err != nil {
			return t, err
		}
		t.Outcome = Outcome(outcome)
		if t.Cost, err = decimal.NewFromString(cost); err != nil {
			return t, err
		}
		t.EstimatedCost, err = decimal.NewFromString(estimated)
		return t, err
	})
	if err != nil {
		return nil, fmt.Errorf("ledger: postgres totals: %w", err)
	}
	return out, nil
}

const selectAttempts = `SELECT ` + attemptColumns + ` FROM ledger_attempts`

func scanAttempt(row pgx.CollectableRow) (Attempt, error) {
	var a Attempt
	var outcome, cost, source string
	var attempt, status int32
	err := row.Scan(&a.RequestID, &attempt, &a.IdempotencyKey, &a.Tenant, &a.Route, &a.Provider, &a.Model, &outcome,
		&status, &a.ErrorClass, &a.ErrorMessage, &a.Tokens.Input, &a.Tokens.Output, &a.Tokens.Reasoning,
		&a.Tokens.CacheRead, &a.Tokens.CacheWrite, &cost, &a.StartedAt, &a.FinishedAt, &a.ProviderReqID, &a.ClientRequestID, &source,
		&a.Tokens.CacheWrite1h)
	if err != nil {
		return a, err
	}
	a.Attempt, a.HTTPStatus, a.Outcome = int(attempt), int(status), Outcome(outcome)
	a.UsageSource = UsageSource(source)
	a.StartedAt, a.FinishedAt = a.StartedAt.UTC(), a.FinishedAt.UTC()
	a.Cost, err = decimal.NewFromString(cost)
	return a, err
}

// RequestAttempts implements Store.
func (s *PostgresStore) RequestAttempts(ctx context.Context, requestID string) ([]Attempt, error) {
	rows, err := s.pool.Query(ctx, selectAttempts+" WHERE request_id = $1 ORDER BY attempt", requestID)
	if err != nil {
		return nil, fmt.Errorf("ledger: postgres attempts of %q: %w", requestID, err)
	}
	out, err := pgx.CollectRows(rows, scanAttempt)
	if err != nil {
		return nil, fmt.Errorf("ledger: postgres attempts of %q: %w", requestID, err)
	}
	return out, nil
}

// Export implements Store. Rows stream from the server; memory use does not
// grow with the window.
func (s *PostgresStore) Export(ctx context.Context, q Query, w io.Writer) (int, error) {
	if err := q.validate(); err != nil {
		return 0, err
	}
	where, args := q.where()
	rows, err := s.pool.Query(ctx, selectAttempts+where+` ORDER BY started_at, request_id COLLATE "C", attempt`, args...)
	if err != nil {
		return 0, fmt.Errorf("ledger: postgres export: %w", err)
	}
	defer rows.Close()
	enc := json.NewEncoder(w)
	n := 0
	for rows.Next() {
		a, err := scanAttempt(rows)
		if err != nil {
			return n, fmt.Errorf("ledger: postgres export: row %d: %w", n+1, err)
		}
		if err := enc.Encode(&a); err != nil {
			return n, fmt.Errorf("ledger: postgres export: %w", err)
		}
		n++
	}
	if err := rows.Err(); err != nil {
		return n, fmt.Errorf("ledger: postgres export: %w", err)
	}
	return n, nil
}
