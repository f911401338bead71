package gateway

import (
	"context"
	"errors"

	"github.com/brownout-dev/brownout/gateway/ledger"
	"github.com/brownout-dev/brownout/gateway/llm"
)

// attemptFunc makes attempt n of a request on target t and meters it. It
// owns done, the breaker's second step: it calls done with the outcome
// (at once for a plain call, at the end for a stream it hands over).
type attemptFunc func(ctx context.Context, t Target, n int, call *llm.Request, done func(error)) error

// run is Fallback(Retry(Breaker(call))): the route's targets in order; on
// each, attempts while the error is transient, with jittered backoff or the
// vendor's Retry-After; a target is skipped while its breaker is open or it
// cools down after a 429, and the next one serves. A client error or the
// client leaving ends the request at once. Every attempt and every breaker
// rejection is a ledger row, numbered across targets.
func (g *Gateway) run(ctx context.Context, req *Request, attempt attemptFunc) error {
	targets := g.routes[req.Route] // admit checked the route
	ctx, cancel := context.WithTimeout(ctx, g.retry.Deadline)
	defer cancel()
	n := 0
	var lastErr error
	for i, t := range targets {
		last := i == len(targets)-1
		call := req.LLM
		call.Model = t.Model
		for tries := 0; tries < g.retry.MaxAttempts; {
			if until := g.cooldowns.get(t); g.now().Before(until) {
				if !last {
					break // fail over while this target cools down
				}
				wait := until.Sub(g.now())
				if dl, ok := ctx.Deadline(); ok && g.now().Add(wait).After(dl) {
					return lastErrOr(lastErr, t)
				}
				if !sleep(ctx, wait) {
					return ctxErr(ctx, lastErr)
				}
			}
			n++
			done, err := g.breakers.get(t).cb.Allow()
			if err != nil {
				g.reject(req, t, n, ledger.OutcomeRejectedBreaker, "circuit breaker "+err.Error())
				lastErr = &llm.ProviderError{Provider: t.Provider, Class: llm.ClassServer, Type: "circuit_open",
					Message: "circuit breaker open for " + t.String()}
				break
			}
			tries++
			err = attempt(ctx, t, n, &call, func(err error) { done(breakerErr(ctx, err)) })
			if err == nil {
				return nil
			}
			lastErr = err
			class := llm.Classify(ctx, err)
			if !class.Retryable() {
				return err
			}
			var pe *llm.ProviderError
			if class == llm.ClassThrottled && errors.As(err, &pe) {
				wait := pe.RetryAfter
				if wait <= 0 {
					wait = g.jitter.backoff(g.retry, tries)
				}
				g.cooldowns.set(t, g.now().Add(wait))
				continue // the top of the loop fails over, or waits when this is the last target
			}
			if tries >= g.retry.MaxAttempts {
				break
			}
			if !sleep(ctx, g.jitter.backoff(g.retry, tries)) {
				return ctxErr(ctx, lastErr)
			}
		}
		if ctx.Err() != nil {
			return ctxErr(ctx, lastErr)
		}
	}
	return lastErrOr(lastErr, targets[len(targets)-1])
}

func lastErrOr(err error, t Target) error {
	if err != nil {
		return err
	}
	return &llm.ProviderError{Provider: t.Provider, Class: llm.ClassServer, Type: "no_target", Message: "no target could serve the request"}
}

// ctxErr is the error of a request whose context ended while it waited:
// the client left (cancelled) or the overall deadline passed (transport).
func ctxErr(ctx context.Context, last error) error {
	if errors.Is(ctx.Err(), context.Canceled) {
		return &llm.ProviderError{Class: llm.ClassCancelled, Message: "the client went away", Err: ctx.Err()}
	}
	if last != nil {
		return last
	}
	return &llm.ProviderError{Class: llm.ClassTransport, Message: "request deadline exceeded", Err: ctx.Err()}
}

// breakerErr is what the breaker is told of an attempt's error: a client
// leaving becomes a cancelled-class error, which the breaker excludes.
func breakerErr(ctx context.Context, err error) error {
	if err != nil && llm.Classify(ctx, err) == llm.ClassCancelled {
		return &llm.ProviderError{Class: llm.ClassCancelled, Err: err}
	}
	return err
}

// reject meters a request refused before any upstream call, at zero cost.
func (g *Gateway) reject(req *Request, t Target, n int, outcome ledger.Outcome, msg string) {
	now := g.now()
	a := ledger.Attempt{RequestID: req.ID, Attempt: n, IdempotencyKey: req.IdempotencyKey, Tenant: req.Tenant, Route: req.Route,
		Provider: t.Provider, Model: t.Model, Outcome: outcome, ErrorClass: string(outcome), ErrorMessage: msg,
		StartedAt: now, FinishedAt: now}
	if err := g.ledger.Record(a); err != nil {
		g.log.Error("gateway: ledger refused a rejection", "request_id", req.ID, "attempt", n, "error", err)
	}
	g.metrics.attempt(t, outcome, llm.Usage{}, zeroCost, 0)
}
