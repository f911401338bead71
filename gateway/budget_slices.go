package gateway

import (
	"cmp"
	"context"
	"sync"
	"time"

	"github.com/shopspring/decimal"
)

// DefaultSliceTTL is how long a budget slice serves reservations before
// its unused part goes back (Budget.SliceTTL).
const DefaultSliceTTL = 10 * time.Second

// budgetSlice is a part of a tenant's budget window leased by this process:
// reserved in the BudgetStore as one reservation of size, then handed out
// locally, so a request of a hot tenant reserves without a round trip.
// used is what its requests hold (reserved, or spent once settled), never
// more than size: the store's total already counts size, so no process can
// overshoot the limit through a slice, by construction.
type budgetSlice struct {
	tenant  string
	window  time.Time
	size    decimal.Decimal
	used    decimal.Decimal // outstanding reservations plus spend
	spent   decimal.Decimal
	holders int  // reservations outstanding on it
	retired bool // past its TTL, its window, or replaced: it takes no more
	timer   *time.Timer
}

// slicer keeps the live slices of the tenants whose budgets are sliced.
type slicer struct {
	g  *Gateway
	mu sync.Mutex
	by map[string]*tenantSlices
	wg sync.WaitGroup // returns in progress
}

// tenantSlices is a tenant's live slice, and the lock that makes its
// requests lease one new slice at a time (not one each).
type tenantSlices struct {
	leasing sync.Mutex
	live    *budgetSlice // nil: none; s.mu guards it
}

// fromLive reserves r on ts's live slice if it can cover it.
func (s *slicer) fromLive(ts *tenantSlices, r *reservation) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	sl := ts.live
	if sl == nil || sl.retired || !sl.window.Equal(r.window) || sl.used.Add(r.amount).GreaterThan(sl.size) {
		return false
	}
	sl.used = sl.used.Add(r.amount)
	sl.holders++
	r.slice = sl
	return true
}

// reserveFromSlice reserves r's amount on its tenant's live slice, leasing
// a new slice (one statement: a reservation of the slice's size) when
// there is none or it cannot cover r. It reports false when no slice could
// be leased, the tenant's remaining budget being under a slice's size:
// the caller then reserves r on the store directly, so the last of a
// budget is still used, request by request.
func (s *slicer) reserveFromSlice(ctx context.Context, r *reservation, b Budget) (bool, error) {
	s.mu.Lock()
	ts := s.by[r.tenant]
	if ts == nil {
		ts = &tenantSlices{}
		s.by[r.tenant] = ts
	}
	s.mu.Unlock()
	if s.fromLive(ts, r) {
		return true, nil
	}
	ts.leasing.Lock()
	defer ts.leasing.Unlock()
	if s.fromLive(ts, r) { // leased by another request meanwhile
		return true, nil
	}
	size := decimal.Max(b.Slice, r.amount)
	ok, err := s.g.budgetStore.Reserve(ctx, r.tenant, r.window, size, r.limit)
	if err != nil || !ok {
		return false, err
	}
	fresh := &budgetSlice{tenant: r.tenant, window: r.window, size: size, used: r.amount, holders: 1}
	r.slice = fresh
	s.mu.Lock()
	defer s.mu.Unlock()
	if ts.live != nil {
		s.retire(ts.live)
	}
	ts.live = fresh
	fresh.timer = time.AfterFunc(cmp.Or(b.SliceTTL, DefaultSliceTTL), func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.retire(fresh)
	})
	return true, nil
}

// settleOnSlice settles a reservation taken on sl: its amount is released
// and actual is spent on the slice, which goes back to the store once
// retired and idle.
func (s *slicer) settleOnSlice(sl *budgetSlice, reserved, actual decimal.Decimal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sl.used = sl.used.Sub(reserved).Add(actual)
	sl.spent = sl.spent.Add(actual)
	sl.holders--
	if sl.retired && sl.holders == 0 {
		s.giveBack(sl)
	}
}

// retire stops sl taking reservations and gives it back once idle; s.mu
// is held.
func (s *slicer) retire(sl *budgetSlice) {
	if sl.retired {
		return
	}
	sl.retired = true
	if sl.timer != nil {
		sl.timer.Stop()
	}
	if ts := s.by[sl.tenant]; ts != nil && ts.live == sl {
		ts.live = nil
	}
	if sl.holders == 0 {
		s.giveBack(sl)
	}
}

// giveBack settles the slice's reservation in the store: its size is no
// longer reserved, and what its requests spent is spent; s.mu is held.
func (s *slicer) giveBack(sl *budgetSlice) {
	s.wg.Go(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.g.budgetStore.Settle(ctx, sl.tenant, sl.window, sl.size, sl.spent); err != nil {
			s.g.log.Error("gateway: budget slice not given back; its reservation stays held until its window closes",
				"tenant", sl.tenant, "error", err)
		}
	})
}

// close retires every slice (each goes back once its last request
// settles) and waits for the returns made so far.
func (s *slicer) close() {
	s.mu.Lock()
	for _, ts := range s.by {
		if ts.live != nil {
			s.retire(ts.live)
		}
	}
	s.mu.Unlock()
	s.wg.Wait()
}
