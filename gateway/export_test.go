package gateway

import (
	"context"
	"time"

	"github.com/shopspring/decimal"
)

// MemorySpent is the settled spend and the outstanding reservations of a
// tenant's window in m, for the black-box tests' checks.
func MemorySpent(m *MemoryBudgets, tenant string, window time.Time) (spent, reserved decimal.Decimal) {
	m.mu.Lock()
	defer m.mu.Unlock()
	bw := m.window(tenant, window)
	return bw.spent, bw.reserved
}

// ClaimReserving claims key on p and, in the claim's statement, reserves
// amount within limit on the tenant's window, as a keyed request of a
// budgeted tenant does: it reports whether each took place.
func ClaimReserving(ctx context.Context, p *PostgresIdempotency, tenant, key string, window time.Time, amount, limit decimal.Decimal) (claimed, reserved bool, err error) {
	l, _, reserved, err := p.begin(ctx, tenant, key, []byte(key), &reservation{tenant: tenant, window: window, amount: amount, limit: limit})
	return l != nil, reserved, err
}

// BusyRow counts a reservation of the tenant's window in flight, as one
// that has not returned yet, until the returned func is called: the next
// reservation of the window takes the busy form.
func BusyRow(tenant string, window time.Time) (done func()) {
	k := rowKey{tenant, window.UnixNano()}
	reservingRows.enter(k)
	return func() { reservingRows.leave(k) }
}

// EarlyRelease reports whether a busy reservation may still release its
// row before its commit is on disk; ResetEarlyRelease allows it again.
func EarlyRelease() bool { return !durableCommitRefused.Load() }

func ResetEarlyRelease() { durableCommitRefused.Store(false) }

// SetBatchRetention makes wb keep the rows of its round trips for d, not
// batchRetention; call it before the first write.
func SetBatchRetention(wb *WriteBehind, d time.Duration) { wb.retention = d }

// ErrNoConnection is a store round trip before the upstream call that
// found no free connection within its wait.
var ErrNoConnection = errNoConnection
