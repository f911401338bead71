package gateway

import (
	"context"
	"errors"
	"io"
	"sync"
	"time"

	"github.com/shopspring/decimal"

	"github.com/brownout-dev/brownout/gateway/llm"
)

// Stream is a streamed answer being relayed. Next returns the upstream's
// chunks; the attempt is metered once, when the stream ends: at its final
// chunk, at an error (with the partial usage), or at Close (the client
// left: cancelled, with the partial usage). Call Close when done.
type Stream struct {
	g       *Gateway
	ctx     context.Context
	req     *Request
	target  Target
	n       int
	started time.Time
	up      llm.Stream

	once sync.Once
	cost decimal.Decimal
	err  error
}

// Stream starts a streamed request on the route's first target. The
// returned error (no stream) is ErrUnknownRoute or the provider's error
// before any byte of the answer; it is metered.
func (g *Gateway) Stream(ctx context.Context, req *Request) (*Stream, error) {
	t, call, err := g.firstTarget(req)
	if err != nil {
		return nil, err
	}
	started := g.now()
	up, err := g.providers[t.Provider].Stream(ctx, &call)
	if err != nil {
		g.meter(ctx, req, t, 1, started, llm.Usage{}, providerRequestID(err), err)
		return nil, err
	}
	return &Stream{g: g, ctx: ctx, req: req, target: t, n: 1, started: started, up: up}, nil
}

// Target returns the provider and model serving the stream.
func (s *Stream) Target() Target { return s.target }

// Next returns the next chunk; after the final chunk, io.EOF.
func (s *Stream) Next() (llm.Chunk, error) {
	c, err := s.up.Next()
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

// Cost is the metered cost, known once the stream has ended.
func (s *Stream) Cost() decimal.Decimal { return s.cost }

func (s *Stream) finish(err error) {
	s.once.Do(func() {
		s.err = err
		s.cost = s.g.meter(s.ctx, s.req, s.target, s.n, s.started, s.up.Usage(), s.up.ProviderRequestID(), err)
	})
}

// Close ends the stream; if it had not ended, the attempt is metered as
// cancelled with the usage seen so far.
func (s *Stream) Close() error {
	s.finish(&llm.ProviderError{Provider: s.target.Provider, Class: llm.ClassCancelled, Message: "the client stopped reading the stream"})
	return s.up.Close()
}
