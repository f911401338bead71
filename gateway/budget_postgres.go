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
type PostgresBudgets struct{ pool *pgxpool.Pool }

var _ BudgetStore = (*PostgresBudgets)(nil)

// NewPostgresBudgets returns a store over pool (ledger.Migrate first).
func NewPostgresBudgets(pool *pgxpool.Pool) *PostgresBudgets { return &PostgresBudgets{pool: pool} }

// Reserve implements BudgetStore.
func (p *PostgresBudgets) Reserve(ctx context.Context, tenant string, w time.Time, amount, limit decimal.Decimal) (bool, error) {
	// One round trip: the window's first reservation inserts the row, later
	// ones update it under its row lock, each only within the limit.
	tag, err := p.pool.Exec(ctx, `INSERT INTO budget_windows AS b (tenant, window_start, reserved)
		SELECT $1, $2, $3::numeric WHERE $3::numeric <= $4::numeric
		ON CONFLICT (tenant, window_start) DO UPDATE SET reserved = b.reserved + EXCLUDED.reserved
		WHERE b.spent + b.reserved + EXCLUDED.reserved <= $4::numeric`,
		tenant, w, amount.String(), limit.String())
	if err != nil {
		return false, err
	}
	return tag.RowsAffected() == 1, nil
}

// Settle implements BudgetStore.
func (p *PostgresBudgets) Settle(ctx context.Context, tenant string, w time.Time, reserved, actual decimal.Decimal) error {
	_, err := p.pool.Exec(ctx, `UPDATE budget_windows SET reserved = reserved - $3::numeric, spent = spent + $4::numeric
		WHERE tenant = $1 AND window_start = $2`, tenant, w, reserved.String(), actual.String())
	return err
}
