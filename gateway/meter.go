package gateway

import (
	"context"
	"errors"
	"time"

	"github.com/shopspring/decimal"

	"github.com/brownout-dev/brownout/gateway/ledger"
	"github.com/brownout-dev/brownout/gateway/llm"
)

// Metering: everything that turns an attempt into a ledger row lives here.
// Every upstream attempt is metered by meter, every request refused before
// a call (breaker open, budget exceeded) by reject; both build their row
// with row, so a ledger row has one shape whatever produced it.

// attemptRecord is what the request path knows of one finished upstream
// attempt.
type attemptRecord struct {
	target   Target
	n        int // the attempt's number within its request, across targets
	started  time.Time
	usage    llm.Usage // what the vendor reported (the partial usage of a cut stream)
	vendorID string    // the vendor's request id, which its invoice is keyed by; "" takes the error's
	err      error     // nil for a success
}

// meter records one upstream attempt of req in the ledger and the metrics,
// and returns its cost.
func (g *Gateway) meter(ctx context.Context, req *Request, r attemptRecord) decimal.Decimal {
	finished := g.now()
	cost, perr := g.prices.Cost(r.target.Provider, r.target.Model, r.usage)
	if perr != nil {
		// New checked every routed model; this is a bug, not a free call.
		g.log.Error("gateway: unpriced attempt", "target", r.target.String(), "error", perr)
	}
	a := row(req, r.target, r.n, r.started, finished)
	a.Tokens, a.Cost = r.usage, cost.Truncate(ledger.CostScale)
	a.Outcome, a.HTTPStatus, a.ProviderReqID = ledger.OutcomeOK, 200, ledger.SanitizeID(r.vendorID)
	if r.err != nil {
		class := llm.Classify(ctx, r.err)
		a.Outcome, a.HTTPStatus = outcomeOf(class), 0
		a.ErrorClass, a.ErrorMessage = string(class), r.err.Error()
		var pe *llm.ProviderError
		if errors.As(r.err, &pe) {
			a.HTTPStatus = pe.Status
			if a.ProviderReqID == "" {
				a.ProviderReqID = ledger.SanitizeID(pe.RequestID)
			}
		}
	}
	g.record(a, cost)
	return cost
}

// reject records a request refused before any upstream call, at zero cost.
func (g *Gateway) reject(req *Request, t Target, n int, outcome ledger.Outcome, msg string) {
	now := g.now()
	a := row(req, t, n, now, now)
	a.Outcome, a.ErrorClass, a.ErrorMessage = outcome, string(outcome), msg
	g.record(a, decimal.Zero)
}

// row is attempt n of req on t: its identity, who asked for what and who
// was asked, and when. The callers fill in the outcome.
func row(req *Request, t Target, n int, started, finished time.Time) ledger.Attempt {
	return ledger.Attempt{RequestID: req.ID, ClientRequestID: req.ClientRequestID, Attempt: n, IdempotencyKey: req.IdempotencyKey,
		Tenant: req.Tenant, Route: req.Route,
		Provider: t.Provider, Model: t.Model, StartedAt: started, FinishedAt: finished}
}

// record hands a to the ledger and counts it in the metrics; cost is the
// attempt's exact cost (the ledger's is truncated to its scale).
func (g *Gateway) record(a ledger.Attempt, cost decimal.Decimal) {
	if err := g.ledger.Record(a); err != nil {
		g.log.Error("gateway: ledger refused an attempt", "request_id", a.RequestID, "attempt", a.Attempt, "outcome", a.Outcome, "error", err)
	}
	g.metrics.attempt(Target{Provider: a.Provider, Model: a.Model}, a.Outcome, a.Tokens, cost, a.FinishedAt.Sub(a.StartedAt))
}

// outcomeOf is the ledger outcome of a failed attempt's error class.
func outcomeOf(c llm.Class) ledger.Outcome {
	switch c {
	case llm.ClassClient:
		return ledger.OutcomeClientError
	case llm.ClassThrottled:
		return ledger.OutcomeThrottled
	case llm.ClassServer:
		return ledger.OutcomeServerError
	case llm.ClassCancelled:
		return ledger.OutcomeCancelled
	}
	return ledger.OutcomeTransportError
}
