package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/shopspring/decimal"

	"github.com/brownout-dev/brownout/gateway/llm"
)

// Stream is a streamed answer being relayed. Next returns the upstream's
// chunks; the attempt is metered, and its breaker told, once, when the
// stream ends: at its final chunk, at an error (with the partial usage),
// or at Close (the client left: cancelled, with the partial usage).
type Stream struct {
	g       *Gateway
	ctx     context.Context // the client's
	sctx    context.Context // the upstream call's: the client's, cut by the timeouts
	cancel  context.CancelCauseFunc
	idle    time.Duration // the most Next waits for a chunk
	req     *Request
	call    *llm.Request // what was sent upstream
	target  Target
	n       int
	started time.Time
	up      llm.Stream
	done    func(context.Context, error)
	first   *llm.Chunk // read before the stream was handed over

	resv   *reservation    // settled when the stream ends
	before decimal.Decimal // cost of the attempts before this one

	keepText  bool            // a target after this one can continue it
	text      strings.Builder // the answer sent so far, for a continuation
	spliced   bool            // carried on to a continuing target once
	idleTimer *time.Timer     // cuts the upstream call after idle without a chunk

	once sync.Once
	cost decimal.Decimal
}

// Stream starts a streamed request. It fails over, like Complete, until an
// upstream answers with its first chunk; after that the stream is the
// client's, and a failure is the stream's error. The returned error (no
// stream) is ErrUnknownRoute or the last provider error.
func (g *Gateway) Stream(ctx context.Context, req *Request) (*Stream, error) {
	resv, err := g.admit(ctx, req)
	if err != nil {
		return nil, err
	}
	return g.stream(ctx, req, resv)
}

// stream is Stream of an admitted request: resv is taken.
func (g *Gateway) stream(ctx context.Context, req *Request, resv *reservation) (*Stream, error) {
	var out *Stream
	spent := decimal.Zero // attempts that failed before the stream started
	client := ctx
	err := g.run(ctx, req, resv, func(ctx context.Context, t Target, n int, call *llm.Request, done func(context.Context, error)) error {
		if err := ctx.Err(); err != nil {
			// The client left (or the deadline passed) before this attempt:
			// it is not made, and bills nothing.
			done(ctx, err)
			spent = spent.Add(g.meter(ctx, req, attemptRecord{target: t, n: n, started: g.now(), call: call, err: err, unsent: true}))
			return err
		}
		// The stream outlives the retry loop and its deadline: it lives on
		// the client's context until Close, bounded by the first-token
		// timeout until its first chunk, then by the idle timeout between
		// chunks (Next).
		limits := g.retry.timeouts(t)
		sctx, cancel := context.WithCancelCause(client)
		timer := time.AfterFunc(limits.FirstTokenTimeout, func() { cancel(timeoutErr(t, "first_token_timeout", limits.FirstTokenTimeout)) })
		started := g.now()
		g.open(req, attemptRecord{target: t, n: n, started: started, call: call})
		up, err := g.providers[t.Provider].Stream(sctx, call)
		if err != nil {
			timer.Stop()
			err = timeoutCause(sctx, client, err)
			cancel(nil)
			done(ctx, err)
			spent = spent.Add(g.meter(ctx, req, attemptRecord{target: t, n: n, started: started, call: call, err: err}))
			return err
		}
		_, continuable := g.continuation(req.Route, t)
		s := &Stream{g: g, ctx: client, sctx: sctx, cancel: cancel, req: req, call: call, target: t, n: n, started: started, up: up, done: done,
			resv: resv, before: spent, idle: limits.IdleTimeout, keepText: continuable}
		c, err := up.Next()
		timer.Stop()
		if err != nil {
			err = timeoutCause(sctx, client, err)
			s.resv = nil // settled below, with the other failed attempts
			s.finish(err)
			spent = spent.Add(s.cost)
			_ = up.Close()
			cancel(nil)
			return err
		}
		if c.Final {
			s.finish(nil)
		}
		s.first = &c
		out = s
		return nil
	})
	if err != nil {
		g.settle(resv, spent)
		return nil, spentErr(err, spent)
	}
	return out, nil
}

// Target returns the provider and model serving the stream.
func (s *Stream) Target() Target { return s.target }

// Next returns the next chunk; after the final chunk, io.EOF.
func (s *Stream) Next() (llm.Chunk, error) {
	if s.first != nil {
		c := *s.first
		s.first = nil
		s.keep(c)
		return c, nil
	}
	if s.idleTimer == nil {
		// One timer for the upstream call, re-armed for each chunk; it
		// names the timeout only when it fires.
		cancel, target, idle := s.cancel, s.target, s.idle
		s.idleTimer = time.AfterFunc(idle, func() { cancel(timeoutErr(target, "idle_timeout", idle)) })
	} else {
		s.idleTimer.Reset(s.idle)
	}
	c, err := s.up.Next()
	s.idleTimer.Stop()
	if err != nil && !errors.Is(err, io.EOF) {
		err = timeoutCause(s.sctx, s.ctx, err)
	}
	switch {
	case errors.Is(err, io.EOF):
		return c, err
	case err != nil:
		spliced, ended := s.continueOnNext(err)
		if spliced {
			return s.Next()
		}
		if ended != nil {
			return c, ended // metered and settled by continueOnNext
		}
		s.finish(err)
	case c.Final:
		s.finish(nil)
	}
	s.keep(c)
	return c, err
}

// keep adds a chunk sent to the client to the text a continuation starts
// from, where one is possible.
func (s *Stream) keep(c llm.Chunk) {
	if s.keepText {
		s.text.WriteString(c.Content)
	}
}

// continueOnNext carries a stream that failed mid-way (a server or
// transport failure after its first chunk) on to the route's next target
// whose model continues a prefill (llm.Continuer: Anthropic): the answer
// sent so far goes as the start of the assistant's reply, and the
// continuation is spliced on, so the client reads one answer. The failed
// attempt and the continuation are each metered, reserved on the budget
// and judged by their breakers, as any attempts. It returns spliced when
// the stream now reads from the new target. When no target can continue,
// it does nothing (the stream ends with err); when the continuation itself
// fails, the stream has ended, metered and settled, and ended is err, the
// first failure, with the continuation's beside it.
func (s *Stream) continueOnNext(err error) (spliced bool, ended error) {
	class := llm.Classify(s.ctx, err)
	if s.spliced || s.text.Len() == 0 || (class != llm.ClassServer && class != llm.ClassTransport) {
		return false, nil
	}
	t, ok := s.g.continuation(s.req.Route, s.target)
	if !ok {
		return false, nil
	}
	allowed, berr := s.g.breakers.get(t).cb.Allow()
	if berr != nil {
		return false, nil
	}
	if rerr := s.g.extend(s.ctx, s.resv, s.req, t); rerr != nil {
		allowed(&llm.ProviderError{Class: llm.ClassCancelled, Err: rerr}) // not tried
		return false, nil
	}
	// The failed attempt ends here: its breaker learns, its row is written.
	s.done(s.ctx, err)
	s.before = s.before.Add(s.g.meter(s.ctx, s.req, attemptRecord{target: s.target, n: s.n, started: s.started, call: s.call,
		usage: s.up.Usage(), vendorID: s.up.ProviderRequestID(), err: err, opened: true}))
	_ = s.up.Close()
	s.cancel(nil)

	call := *s.call
	call.Model = t.Model
	call.Messages = append(slices.Clone(s.call.Messages), llm.Message{Role: "assistant", Content: s.text.String()})
	limits := s.g.retry.timeouts(t)
	sctx, cancel := context.WithCancelCause(s.ctx)
	timer := time.AfterFunc(limits.FirstTokenTimeout, func() { cancel(timeoutErr(t, "first_token_timeout", limits.FirstTokenTimeout)) })
	started, n := s.g.now(), s.n+1
	s.g.open(s.req, attemptRecord{target: t, n: n, started: started, call: &call})
	up, cerr := s.g.providers[t.Provider].Stream(sctx, &call)
	var c llm.Chunk
	if cerr == nil {
		c, cerr = up.Next()
	}
	timer.Stop()
	done := func(ctx context.Context, err error) { allowed(breakerErr(ctx, err)) }
	if cerr != nil {
		cerr = timeoutCause(sctx, s.ctx, cerr)
		done(s.ctx, cerr)
		rec := attemptRecord{target: t, n: n, started: started, call: &call, err: cerr}
		if up != nil {
			rec.usage, rec.vendorID, rec.opened = up.Usage(), up.ProviderRequestID(), true
			_ = up.Close()
		}
		cancel(nil)
		s.once.Do(func() {
			s.cost = s.g.meter(s.ctx, s.req, rec)
			s.g.settle(s.resv, s.before.Add(s.cost))
		})
		return false, fmt.Errorf("%w (continuing on %s failed too: %v)", err, t, cerr)
	}
	s.up, s.target, s.n, s.started, s.call, s.done = up, t, n, started, &call, done
	s.sctx, s.cancel, s.idle, s.spliced, s.idleTimer = sctx, cancel, limits.IdleTimeout, true, nil // the next Next arms a timer for the new call
	if c.Final {
		s.finish(nil)
	}
	s.first = &c
	return true, nil
}

// continuation is the first target after cur on route whose model
// continues a prefill.
func (g *Gateway) continuation(route string, cur Target) (Target, bool) {
	targets := g.routes[route]
	for i, t := range targets {
		if t != cur {
			continue
		}
		for _, next := range targets[i+1:] {
			if c, ok := g.providers[next.Provider].(llm.Continuer); ok && c.ContinuesPrefill() {
				return next, true
			}
		}
	}
	return Target{}, false
}

func (s *Stream) finish(err error) {
	s.once.Do(func() {
		s.done(s.ctx, err)
		s.cost = s.g.meter(s.ctx, s.req, attemptRecord{target: s.target, n: s.n, started: s.started, call: s.call,
			usage: s.up.Usage(), vendorID: s.up.ProviderRequestID(), err: err, opened: true})
		s.g.settle(s.resv, s.before.Add(s.cost))
	})
}

// Close ends the stream; if it had not ended, the attempt is metered as
// cancelled with the usage seen so far.
func (s *Stream) Close() error {
	s.finish(&llm.ProviderError{Provider: s.target.Provider, Class: llm.ClassCancelled, Message: "the client stopped reading the stream"})
	s.cancel(nil)
	return s.up.Close()
}

// timeoutCause is err, with the timeout that cut the upstream call in
// front of it when one did (and not the client leaving).
func timeoutCause(upstream, client context.Context, err error) error {
	if cause := context.Cause(upstream); client.Err() == nil && errors.Is(cause, errTimeout) {
		return fmt.Errorf("%w: %w", cause, err)
	}
	return err
}
