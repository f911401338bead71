package gateway

import (
	"context"
	"errors"
	"net"
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
	call     *llm.Request // what was sent: the prompt an estimate starts from
	usage    llm.Usage    // what the vendor reported (the partial usage of a cut stream)
	vendorID string       // the vendor's request id, which its invoice is keyed by; "" takes the error's
	err      error        // nil for a success
	// opened is set once the vendor began a successful answer (a stream's
	// 200): an error after it may come with billed work.
	opened bool
	// unsent is an attempt never made: its request's context had ended
	// (the client gone, the deadline past) before it, so nothing is billed.
	unsent bool
}

// meter records one upstream attempt of req in the ledger and the metrics,
// and returns its cost. The exact cost is rounded once, here, to the
// ledger's scale (half away from zero); the row, the metric, the budget's
// settlement and the client's X-Brownout-Cost-USD all carry that value.
func (g *Gateway) meter(ctx context.Context, req *Request, r attemptRecord) decimal.Decimal {
	finished := g.now()
	usage, source := g.usage(r)
	price, ok := g.fixed[r.target]
	if !ok {
		// New priced every routed target; this is a bug, not a free call.
		g.log.Error("gateway: unpriced attempt", "target", r.target.String())
	}
	cost := price.Cost(usage, ledger.CostScale)
	a := row(req, r.target, r.n, r.started, finished)
	a.Tokens, a.UsageSource, a.Cost = usage, source, cost
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
			if pe.Message != "" {
				// The vendor's words, credentials redacted, for the operator:
				// the tenant is told only pe.Summary().
				g.log.Warn("gateway: upstream error", "target", r.target.String(), "request_id", req.ID, "attempt", r.n,
					"status", pe.Status, "type", pe.Type, "error", r.err.Error())
			}
		}
	}
	g.record(a)
	return cost
}

// open records attempt r of req, about to be called, as unfinished (with
// Options.Unfinished): the row a crash of this process during the call
// leaves, the estimate of its prompt, which the vendor may bill from the
// moment it has the call. meter's row replaces it in the ledger. It counts
// in no metric: the finished row does.
func (g *Gateway) open(req *Request, r attemptRecord) {
	if !g.unfinished {
		return
	}
	usage := llm.Usage{Input: g.estimatePrompt(r.target, r.call)}
	a := row(req, r.target, r.n, r.started, r.started)
	a.Outcome, a.UsageSource, a.Tokens = ledger.OutcomeUnfinished, ledger.UsageEstimated, usage
	a.Cost = g.fixed[r.target].Cost(usage, ledger.CostScale)
	a.ErrorClass, a.ErrorMessage = string(ledger.OutcomeUnfinished), "the gateway stopped before the attempt ended: its prompt's estimate"
	g.toLedger(a)
}

// usage is what attempt r used as far as the gateway can know, and how it
// knows. A vendor's usage is taken as reported; an error answer bills
// nothing; an attempt never made or a connection never made reached no
// vendor. Anything else may have been billed with its usage lost (a
// timeout, a disconnect, a malformed body, a cut or cancelled stream): it
// is estimated, never zero.
// Input comes from the prompt by the adapter's estimate unless the vendor
// had said it (Anthropic's message_start); output is what was received.
func (g *Gateway) usage(r attemptRecord) (llm.Usage, ledger.UsageSource) {
	if r.err == nil {
		return r.usage, ledger.UsageReported
	}
	if r.unsent {
		return llm.Usage{}, ledger.UsageNone
	}
	var pe *llm.ProviderError
	if !r.opened && errors.As(r.err, &pe) && pe.Status >= 400 {
		return llm.Usage{}, ledger.UsageReported
	}
	if neverConnected(r.err) {
		return llm.Usage{}, ledger.UsageNone
	}
	u := r.usage
	if u.Prompt() == 0 && r.call != nil {
		u.Input = g.estimatePrompt(r.target, r.call)
	}
	return u, ledger.UsageEstimated
}

// estimatePrompt is the input tokens t's vendor is likely to bill for call.
func (g *Gateway) estimatePrompt(t Target, call *llm.Request) int64 {
	if e, ok := g.providers[t.Provider].(llm.PromptEstimator); ok {
		return e.EstimatePromptTokens(call)
	}
	return llm.EstimatePromptTokens(call, 4, 4)
}

// neverConnected reports whether err is a failure to connect: nothing was
// sent, so nothing can be billed.
func neverConnected(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// reject records a request refused before any upstream call, at zero cost.
func (g *Gateway) reject(req *Request, t Target, n int, outcome ledger.Outcome, msg string) {
	now := g.now()
	a := row(req, t, n, now, now)
	a.Outcome, a.ErrorClass, a.ErrorMessage, a.UsageSource = outcome, string(outcome), msg, ledger.UsageNone
	g.record(a)
}

// row is attempt n of req on t: its identity, who asked for what and who
// was asked, and when. The callers fill in the outcome.
func row(req *Request, t Target, n int, started, finished time.Time) ledger.Attempt {
	return ledger.Attempt{RequestID: req.ID, ClientRequestID: req.ClientRequestID, Attempt: n, IdempotencyKey: req.IdempotencyKey,
		Tenant: req.Tenant, Route: req.Route,
		Provider: t.Provider, Model: t.Model, StartedAt: started, FinishedAt: finished}
}

// record hands a to the ledger and counts it in the metrics.
func (g *Gateway) record(a ledger.Attempt) {
	g.toLedger(a)
	g.metrics.attempt(Target{Provider: a.Provider, Model: a.Model}, a.Outcome, a.UsageSource, a.Tokens, a.Cost, a.FinishedAt.Sub(a.StartedAt))
}

// toLedger hands a to the ledger; a refusal is logged and counted.
func (g *Gateway) toLedger(a ledger.Attempt) {
	if err := g.ledger.Record(a); err != nil {
		// The ledger's Writer keeps it as a dead letter; the metric is what
		// an alert watches.
		g.log.Error("gateway: ledger refused an attempt", "request_id", a.RequestID, "attempt", a.Attempt, "outcome", a.Outcome, "error", err)
		g.metrics.ledgerRefused(err)
	}
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
