package gateway

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/shopspring/decimal"
)

// PostgresBudgets is a BudgetStore in Postgres (the table of the ledger's
// migration 0003). The reservation is one conditional UPDATE, which row
// locking makes atomic across connections and processes.
type PostgresBudgets struct {
	pool   *pgxpool.Pool
	behind *WriteBehind // nil: Settle writes at once
}

var _ BudgetStore = (*PostgresBudgets)(nil)

// NewPostgresBudgets returns a store over pool (ledger.Migrate first).
func NewPostgresBudgets(pool *pgxpool.Pool) *PostgresBudgets { return &PostgresBudgets{pool: pool} }

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
	// One round trip: the window's first reservation inserts the row, later
	// ones update it under its row lock, each only within the limit.
	tag, err := p.pool.Exec(ctx, `INSERT INTO budget_windows AS b (tenant, window_start, reserved)
		SELECT $1, $2, $3::numeric WHERE $3::numeric <= $4::numeric
		`+reserveOnConflict("$4"),
		tenant, w, amount.String(), limit.String())
	if err != nil {
		return false, err
	}
	return tag.RowsAffected() == 1, nil
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
