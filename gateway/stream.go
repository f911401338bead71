package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
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
	var out *Stream
	spent := decimal.Zero // attempts that failed before the stream started
	client := ctx
	err = g.run(ctx, req, resv, func(ctx context.Context, t Target, n int, call *llm.Request, done func(context.Context, error)) error {
		// The stream outlives the retry loop and its deadline: it lives on
		// the client's context until Close, bounded by the first-token
		// timeout until its first chunk, then by the idle timeout between
		// chunks (Next).
		limits := g.retry.timeouts(t)
		sctx, cancel := context.WithCancelCause(client)
		late := timeoutErr(t, "first_token_timeout", limits.FirstTokenTimeout)
		timer := time.AfterFunc(limits.FirstTokenTimeout, func() { cancel(late) })
		started := g.now()
		up, err := g.providers[t.Provider].Stream(sctx, call)
		if err != nil {
			timer.Stop()
			err = timeoutCause(sctx, client, err)
			cancel(nil)
			done(ctx, err)
			spent = spent.Add(g.meter(ctx, req, attemptRecord{target: t, n: n, started: started, call: call, err: err}))
			return err
		}
		s := &Stream{g: g, ctx: client, sctx: sctx, cancel: cancel, req: req, call: call, target: t, n: n, started: started, up: up, done: done,
			resv: resv, before: spent, idle: limits.IdleTimeout}
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
		return c, nil
	}
	stalled := timeoutErr(s.target, "idle_timeout", s.idle)
	timer := time.AfterFunc(s.idle, func() { s.cancel(stalled) })
	c, err := s.up.Next()
	timer.Stop()
	if err != nil && !errors.Is(err, io.EOF) {
		err = timeoutCause(s.sctx, s.ctx, err)
	}
	switch {
	case errors.Is(err, io.EOF):
		return c, err
	case err != nil:
		s.finish(err)
	case c.Final:
		s.finish(nil)
	}
	return c, err
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
