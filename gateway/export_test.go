package gateway

import (
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
