package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/brownout-dev/brownout/gateway/ledger"
	"github.com/brownout-dev/brownout/gateway/llm"
	"github.com/brownout-dev/brownout/gateway/pricing"
	"github.com/brownout-dev/brownout/internal/backoff"
)

// ErrUnknownRoute is returned for a request naming an alias with no route:
// a client error.
var ErrUnknownRoute = errors.New("gateway: unknown model")

// Target is one (provider, model) of a route.
type Target struct {
	Provider string
	Model    string
}

func (t Target) String() string { return t.Provider + "/" + t.Model }

// ParseTarget parses "provider/model" (the model may contain slashes).
func ParseTarget(s string) (Target, error) {
	p, m, ok := strings.Cut(s, "/")
	if !ok || p == "" || m == "" {
		return Target{}, fmt.Errorf("target %q is not provider/model", s)
	}
	return Target{Provider: p, Model: m}, nil
}

// Request is a client's request as the gateway handles it.
type Request struct {
	// ID is the ledger's request_id: minted by the gateway (NewRequestID),
	// never taken from the client. Empty: Complete and Stream mint one.
	ID string
	// ClientRequestID is the client's X-Request-ID, kept for tracing.
	ClientRequestID string
	Tenant          string
	IdempotencyKey  string
	Route           string // the alias the client named as its model
	LLM             llm.Request
}

// Result is a completed request.
type Result struct {
	Response *llm.Response
	Target   Target
	Attempts int
	// Cost is what the request cost: every attempt's metered cost, those
	// that failed before the answer included (X-Brownout-Cost-USD).
	Cost decimal.Decimal
}

// SpentError is the error of a request that failed after attempts a vendor
// may bill: Cost is their metered cost. A caller that adds up what
// requests cost (an eval's cost per request) counts a failure at this, not
// at zero. The handler sends it as X-Brownout-Cost-USD with the error.
type SpentError struct {
	Err  error
	Cost decimal.Decimal
}

func (e *SpentError) Error() string { return e.Err.Error() }
func (e *SpentError) Unwrap() error { return e.Err }

// spentErr wraps err with the cost of a failed request's attempts, if any.
func spentErr(err error, spent decimal.Decimal) error {
	if err == nil || !spent.IsPositive() {
		return err
	}
	return &SpentError{Err: err, Cost: spent}
}

// Recorder meters attempts; *ledger.Writer is the production one.
type Recorder interface {
	Record(a ledger.Attempt) error
}

// Options are the parts of a Gateway.
type Options struct {
	Providers map[string]llm.Provider
	Routes    map[string][]Target
	// ContextLengthFallbacks are, by route, the targets tried once after
	// the route's own refused the prompt as longer than their context
	// window (llm.ContextLengthExceeded).
	ContextLengthFallbacks map[string][]Target
	Prices                 *pricing.Table
	Ledger                 Recorder
	// Unfinished records every attempt's row before its upstream call too,
	// as ledger.OutcomeUnfinished at the estimate of its prompt, so that a
	// crash of the process during the call leaves what the vendor may bill
	// in a ledger that outlives it; the attempt's finished row replaces it.
	// `brownout serve` sets it with a database.
	Unfinished bool
	Metrics    *Metrics // nil: no metrics
	// Breakers are the breaker settings by provider name; the "" entry is
	// the default of providers not named.
	Breakers map[string]BreakerSettings
	Retry    RetrySettings
	// Budgets are the tenants' spend limits, kept in BudgetStore (nil:
	// memory). Tenants not named have no limit.
	Budgets     map[string]Budget
	BudgetStore BudgetStore
	Logger      *slog.Logger     // nil: slog.Default()
	Now         func() time.Time // nil: time.Now
}

// Gateway routes, calls, prices and meters. It is safe for concurrent use.
type Gateway struct {
	providers  map[string]llm.Provider
	routes     map[string][]Target
	longer     map[string][]Target // the routes' context-length fallbacks
	prices     *pricing.Table
	ledger     Recorder
	unfinished bool
	metrics    *Metrics
	log        *slog.Logger
	now        func() time.Time
	retry      RetrySettings
	breakers   *breakers
	jitter     *backoff.Jitter
	cooldowns  cooldowns
	// The key and budget stores' errors, each written at most once in
	// outageLogEvery.
	idempotencyDown, budgetDown outageLog

	budgets     map[string]Budget
	budgetStore BudgetStore
	slices      *slicer
	worst       map[string]pricing.Worst // by route: the worst case of its targets' prices
	fixed       map[Target]pricing.Fixed // every routed target's price, for meter
}

// New checks the options and returns a Gateway: every route names known
// providers, and every routed model has a price (an unpriced model is an
// error here, never a silent $0 later).
func New(opts Options) (*Gateway, error) {
	if opts.Prices == nil {
		return nil, errors.New("gateway: no price table")
	}
	if opts.Ledger == nil {
		return nil, errors.New("gateway: no ledger")
	}
	var errs []error
	for _, alias := range slices.Sorted(maps.Keys(opts.Routes)) {
		targets := opts.Routes[alias]
		if len(targets) == 0 {
			errs = append(errs, fmt.Errorf("gateway: route %q has no targets", alias))
		}
		for _, t := range append(slices.Clone(targets), opts.ContextLengthFallbacks[alias]...) {
			if _, ok := opts.Providers[t.Provider]; !ok {
				errs = append(errs, fmt.Errorf("gateway: route %q: unknown provider %q", alias, t.Provider))
			}
			if _, err := opts.Prices.Lookup(t.Provider, t.Model); err != nil {
				errs = append(errs, fmt.Errorf("gateway: route %q: %w", alias, err))
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	for alias := range opts.ContextLengthFallbacks {
		if _, ok := opts.Routes[alias]; !ok {
			errs = append(errs, fmt.Errorf("gateway: context-length fallbacks for unknown route %q", alias))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	g := &Gateway{providers: opts.Providers, routes: opts.Routes, longer: opts.ContextLengthFallbacks, prices: opts.Prices, ledger: opts.Ledger, unfinished: opts.Unfinished,
		metrics: opts.Metrics, log: opts.Logger, now: opts.Now}
	if g.log == nil {
		g.log = slog.Default()
	}
	if g.now == nil {
		g.now = time.Now
	}
	g.retry = opts.Retry.withDefaults()
	g.budgets, g.budgetStore = opts.Budgets, opts.BudgetStore
	g.worst, g.fixed = make(map[string]pricing.Worst, len(g.routes)), map[Target]pricing.Fixed{}
	price := func(t Target) pricing.Price {
		p, _ := g.prices.Lookup(t.Provider, t.Model) // checked above
		g.fixed[t] = pricing.NewFixed(p)
		return p
	}
	for alias, targets := range g.routes {
		prices := make([]pricing.Price, len(targets))
		for i, t := range targets {
			prices[i] = price(t)
		}
		for _, t := range g.longer[alias] {
			price(t) // metered when a context-length fallback runs; reserved by extend
		}
		g.worst[alias] = pricing.NewWorst(prices...)
	}
	g.slices = &slicer{g: g, by: map[string]*tenantSlices{}}
	if g.budgetStore == nil {
		g.budgetStore = NewMemoryBudgets()
	}
	for tenant, b := range g.budgets {
		if b.Window <= 0 || b.Limit.IsNegative() || b.Slice.IsNegative() || b.SliceTTL < 0 {
			return nil, fmt.Errorf("gateway: budget of tenant %q: needs a positive window, and a limit, slice and slice TTL not negative", tenant)
		}
	}
	g.jitter = backoff.NewJitter(g.retry.BaseBackoff, g.retry.MaxBackoff, g.retry.Seed)
	g.breakers = newBreakers(opts.Breakers, g.now)
	// The gateway's own subscriber: the state gauge and a log line per
	// transition. It exits when Close stops the fan-out.
	events := make(chan BreakerEvent, 256)
	g.breakers.subscribe(events)
	go func() {
		for {
			select {
			case ev := <-events:
				g.metrics.breakerState(ev)
				g.log.Warn("gateway: circuit breaker", "provider", ev.Provider, "model", ev.Model, "from", ev.From, "to", ev.To,
					"consecutive_failures", ev.ConsecutiveFailures, "total_failures", ev.TotalFailures, "requests", ev.Requests)
			case <-g.breakers.done:
				return
			}
		}
	}()
	return g, nil
}

// Close stops the goroutines that deliver breaker events and waits for
// them: afterwards no subscriber channel is written to. It gives back the
// budget slices this gateway holds (each once its last request settles).
// It is safe to call more than once.
func (g *Gateway) Close() {
	g.breakers.close()
	g.slices.close()
}

// SubscribeBreakers delivers every breaker transition to ch, in order. A
// slow subscriber delays no one else: its events queue for it, up to
// 4,096; past that they are dropped, and the next event it gets says in
// Missed how many it lost.
func (g *Gateway) SubscribeBreakers(ch chan<- BreakerEvent) { g.breakers.subscribe(ch) }

// BreakerState returns the state of the breaker guarding target:
// closed, open or half_open.
func (g *Gateway) BreakerState(t Target) string { return g.breakers.state(t) }

// Routes returns the aliases, sorted.
func (g *Gateway) Routes() []string { return slices.Sorted(maps.Keys(g.routes)) }

// Complete serves a non-streamed request: admit, the retry-and-failover
// loop, settle (see the package doc). The error is ErrUnknownRoute, a
// budget refusal, or the last provider error.
func (g *Gateway) Complete(ctx context.Context, req *Request) (*Result, error) {
	resv, err := g.admit(ctx, req)
	if err != nil {
		return nil, err
	}
	return g.complete(ctx, req, resv)
}

// complete is Complete of an admitted request: resv is taken, and settled
// before it returns.
func (g *Gateway) complete(ctx context.Context, req *Request, resv *reservation) (*Result, error) {
	spent := decimal.Zero
	defer func() { g.settle(resv, spent) }()
	return g.attempts(ctx, req, resv, &spent)
}

// attempts is complete without the settlement: it adds what each attempt
// cost to *spent as it is metered, for the caller to settle resv with, even
// after a panic; the handler settles once the answer is out.
func (g *Gateway) attempts(ctx context.Context, req *Request, resv *reservation, spent *decimal.Decimal) (*Result, error) {
	var res *Result
	err := g.run(ctx, req, resv, func(ctx context.Context, t Target, n int, call *llm.Request, done func(context.Context, error)) error {
		limit := g.retry.timeouts(t).AttemptTimeout
		actx, cancel := context.WithTimeout(ctx, limit)
		defer cancel()
		rec := attemptRecord{target: t, n: n, started: g.now(), call: call}
		var resp *llm.Response
		err := ctx.Err()
		if err != nil {
			// The client left (or the deadline passed) before this attempt,
			// during its reservation, say: it is not made, and bills nothing.
			rec.unsent = true
		} else {
			g.open(req, rec)
			resp, err = g.providers[t.Provider].Complete(actx, call)
		}
		if err != nil && actx.Err() != nil && ctx.Err() == nil {
			// Its own timeout, not the client's or the deadline: named, as
			// the error is built only when it happens.
			err = fmt.Errorf("%w: %w", timeoutErr(t, "attempt_timeout", limit), err)
		}
		done(ctx, err)
		rec.err = err
		if err == nil {
			rec.usage, rec.vendorID = resp.Usage, resp.ProviderRequestID
		}
		cost := g.meter(ctx, req, rec)
		*spent = spent.Add(cost)
		if err == nil {
			res = &Result{Response: resp, Target: t, Attempts: n}
		}
		return err
	})
	if err != nil {
		return nil, spentErr(err, *spent)
	}
	res.Cost = *spent
	return res, nil
}
