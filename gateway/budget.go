package gateway

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/shopspring/decimal"

	"github.com/brownout-dev/brownout/gateway/ledger"
)

// ErrBudgetExceeded is returned when a tenant's budget cannot cover a
// request's worst-case cost: a 429 with code budget_exceeded.
var ErrBudgetExceeded = errors.New("gateway: budget exceeded")

// Budget is a tenant's spend limit per window. Windows are fixed and aligned
// to the Unix epoch (a 24h window runs midnight to midnight UTC).
type Budget struct {
	Limit  decimal.Decimal
	Window time.Duration
	// Slice, when positive, makes the tenant's reservations local: the
	// gateway leases a slice of this size from the BudgetStore (one
	// reservation) and reserves its requests against it in memory, with no
	// round trip; the unused part goes back after SliceTTL (default
	// DefaultSliceTTL), or when the gateway closes. Several gateway
	// processes never overshoot the limit together: a slice is taken from
	// the shared total. A slice a process dies holding stays reserved until
	// its window closes.
	Slice    decimal.Decimal
	SliceTTL time.Duration
}

// DefaultBudgetMaxTokens is the max_tokens the gateway sets on a budgeted
// request that has none, so its worst case is bounded.
const DefaultBudgetMaxTokens = 4096

// BudgetStore keeps spend and reservations per tenant and window.
// MemoryBudgets and PostgresBudgets implement it with the same semantics;
// the Postgres one holds across gateway processes.
type BudgetStore interface {
	// Reserve adds amount to the window's reservations if spent + reserved
	// + amount stays within limit, atomically; it reports whether it did.
	Reserve(ctx context.Context, tenant string, window time.Time, amount, limit decimal.Decimal) (bool, error)
	// Settle replaces a reservation by the actual cost.
	Settle(ctx context.Context, tenant string, window time.Time, reserved, actual decimal.Decimal) error
}

// reservation is one request's hold on its tenant's budget: the worst case
// of its first attempt, grown by the worst case of each attempt after it
// (extend), so retries and failovers are covered as the first attempt is.
type reservation struct {
	tenant string
	window time.Time
	amount decimal.Decimal
	input  int64 // the prompt's worst-case tokens
	limit  decimal.Decimal
	every  time.Duration // the budget's window

	sliced  bool            // the tenant's budget is sliced: take reserves on a slice
	slice   *budgetSlice    // the slice the first attempt's amount is on
	onSlice decimal.Decimal // that amount; the rest (extend's) is on the store
}

// extend reserves the worst case of one more attempt of req on t before it
// is made. A request whose budget cannot cover it ends there, with
// ErrBudgetExceeded, rather than retry past its tenant's limit.
func (g *Gateway) extend(ctx context.Context, r *reservation, req *Request, t Target) error {
	if r == nil {
		return nil
	}
	p, err := g.prices.Lookup(t.Provider, t.Model)
	if err != nil {
		return err
	}
	worst := p.WorstCase(r.input, int64(req.LLM.MaxTokens)).RoundUp(ledger.CostScale)
	ok, err := g.budgetStore.Reserve(ctx, r.tenant, r.window, worst, r.limit)
	if err != nil {
		return fmt.Errorf("gateway: budget: %w", err)
	}
	if !ok {
		return fmt.Errorf("%w: tenant %s cannot cover another attempt's worst case of $%s within its $%s",
			ErrBudgetExceeded, r.tenant, worst, r.limit)
	}
	r.amount = r.amount.Add(worst)
	return nil
}

// admit mints the request's id if it has none, checks the route and
// reserves the request's worst case on its tenant's budget (hold, then
// take); a refusal is metered as a rejection at zero cost.
func (g *Gateway) admit(ctx context.Context, req *Request) (*reservation, error) {
	resv, err := g.hold(req)
	if err != nil {
		return nil, err
	}
	return resv, g.take(ctx, req, resv)
}

// hold mints the request's id if it has none, checks the route, and works
// out the reservation of req's first attempt without taking it (take, or
// a store that takes it with the Idempotency-Key's claim): the worst-case
// cost on its tenant's budget (each attempt after it is reserved by extend
// before it is made). A request with no max_tokens gets
// DefaultBudgetMaxTokens, so the worst case is bounded: input at most one
// token per byte plus 8 per message, priced by pricing.Price.WorstCase on
// the route's dearest target (pricing.Worst, worked out by New). nil when
// the tenant has no budget.
func (g *Gateway) hold(req *Request) (*reservation, error) {
	if req.ID == "" {
		req.ID = NewRequestID()
	}
	worst, ok := g.worst[req.Route] // one for every route (New)
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrUnknownRoute, req.Route)
	}
	b, ok := g.budgets[req.Tenant]
	if !ok {
		return nil, nil
	}
	if req.LLM.MaxTokens == 0 {
		req.LLM.MaxTokens = DefaultBudgetMaxTokens
	}
	var input int64
	for _, m := range req.LLM.Messages {
		input += int64(len(m.Content)) + 8
	}
	return &reservation{tenant: req.Tenant, window: g.now().UTC().Truncate(b.Window),
		amount: worst.Cost(input, int64(req.LLM.MaxTokens), ledger.CostScale),
		input:  input, limit: b.Limit, every: b.Window, sliced: b.Slice.IsPositive()}, nil
}

// take takes the reservation hold worked out (nil: nothing to take) on its
// tenant's budget: on a slice of it, when it is sliced and a slice can be
// had, else on the store.
func (g *Gateway) take(ctx context.Context, req *Request, r *reservation) error {
	if r == nil {
		return nil
	}
	if r.sliced {
		ok, err := g.slices.reserveFromSlice(ctx, r, g.budgets[r.tenant])
		if err != nil {
			return g.unavailable(ctx, req, err)
		}
		if ok {
			r.onSlice = r.amount
			return nil
		}
	}
	ok, err := g.budgetStore.Reserve(ctx, r.tenant, r.window, r.amount, r.limit)
	if err != nil {
		return g.unavailable(ctx, req, err)
	}
	if !ok {
		return g.refuse(req, r)
	}
	return nil
}

// unavailable is the error of a reservation the budget store failed:
// errClientGone when req's client went away meanwhile, else
// errBudgetUnavailable, logged with the store's error (outageLog).
func (g *Gateway) unavailable(ctx context.Context, req *Request, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%w: %w", errClientGone, context.Cause(ctx))
	}
	g.budgetDown.error(g.log, g.now(), "gateway: budget store unavailable", "request_id", req.ID, "tenant", req.Tenant, "error", err)
	return fmt.Errorf("%w: %w", errBudgetUnavailable, err)
}

// refuse meters req's refusal by its tenant's budget, as a rejection at
// zero cost, and returns the error the client gets.
func (g *Gateway) refuse(req *Request, r *reservation) error {
	err := fmt.Errorf("%w: tenant %s cannot cover this request's worst case of $%s within its $%s per %s",
		ErrBudgetExceeded, r.tenant, r.amount, r.limit, r.every)
	g.reject(req, g.routes[req.Route][0], 1, ledger.OutcomeRejectedBudget, err.Error())
	return err
}

// settle replaces a reservation with what the request really cost.
func (g *Gateway) settle(r *reservation, actual decimal.Decimal) {
	if r == nil {
		return
	}
	reserved := r.amount
	if r.slice != nil {
		// The slice's part settles locally; the part extend reserved on the
		// store, first, with as much of the cost as it covers.
		reserved = r.amount.Sub(r.onSlice)
		direct := decimal.Min(actual, reserved)
		defer g.slices.settleOnSlice(r.slice, r.onSlice, actual.Sub(direct))
		if reserved.IsZero() {
			return
		}
		actual = direct
	}
	// Settling must not depend on the client still being there.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := g.budgetStore.Settle(ctx, r.tenant, r.window, reserved, actual); err != nil {
		g.log.Error("gateway: budget settle failed; the reservation stays held", "tenant", r.tenant, "error", err)
	}
}

// MemoryBudgets is a BudgetStore in process memory. Safe for concurrent use.
type MemoryBudgets struct {
	mu sync.Mutex
	w  map[budgetKey]*budgetWindow
}

type budgetKey struct {
	tenant string
	window time.Time
}

type budgetWindow struct{ spent, reserved decimal.Decimal }

var _ BudgetStore = (*MemoryBudgets)(nil)

// NewMemoryBudgets returns an empty store.
func NewMemoryBudgets() *MemoryBudgets { return &MemoryBudgets{w: map[budgetKey]*budgetWindow{}} }

func (m *MemoryBudgets) window(tenant string, w time.Time) *budgetWindow {
	k := budgetKey{tenant, w.UTC()}
	bw := m.w[k]
	if bw == nil {
		bw = &budgetWindow{}
		m.w[k] = bw
	}
	return bw
}

// Reserve implements BudgetStore.
func (m *MemoryBudgets) Reserve(_ context.Context, tenant string, w time.Time, amount, limit decimal.Decimal) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	bw := m.window(tenant, w)
	if bw.spent.Add(bw.reserved).Add(amount).GreaterThan(limit) {
		return false, nil
	}
	bw.reserved = bw.reserved.Add(amount)
	return true, nil
}

// Settle implements BudgetStore.
func (m *MemoryBudgets) Settle(_ context.Context, tenant string, w time.Time, reserved, actual decimal.Decimal) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	bw := m.window(tenant, w)
	bw.reserved = bw.reserved.Sub(reserved)
	bw.spent = bw.spent.Add(actual)
	return nil
}
