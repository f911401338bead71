package gateway

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/brownout-dev/brownout/gateway/ledger"
	"github.com/brownout-dev/brownout/gateway/llm"
	"github.com/brownout-dev/brownout/internal/backoff"
)

// RetrySettings configure the retry loop: the only one between a client and
// a vendor (the adapters never retry). The zero value of each field means
// the default in its comment.
type RetrySettings struct {
	// MaxAttempts is the most attempts on one target, the first included
	// (default 3). Only transient classes (throttled, server, transport) are
	// retried.
	MaxAttempts int `yaml:"max_attempts"`
	// BaseBackoff and MaxBackoff bound the exponential backoff with full
	// jitter: before retry n the loop waits a random duration in
	// [0, min(MaxBackoff, BaseBackoff*2^n)] (defaults 200ms, 10s).
	BaseBackoff time.Duration `yaml:"base_backoff"`
	MaxBackoff  time.Duration `yaml:"max_backoff"`
	// AttemptTimeout bounds a plain call, to its last byte (default 60s).
	// FirstTokenTimeout bounds a stream's wait for its first chunk
	// (default: AttemptTimeout), IdleTimeout every wait for a chunk after
	// it: a stall (default 2m; long enough for a reasoning model to think
	// before it writes). A stream's whole length is bounded by its
	// provider's timeout. Providers sets them per provider.
	AttemptTimeout    time.Duration `yaml:"attempt_timeout"`
	FirstTokenTimeout time.Duration `yaml:"first_token_timeout"`
	IdleTimeout       time.Duration `yaml:"idle_timeout"`
	// OnTimeout is what a timed-out attempt does: "failover" (default)
	// tries the route's next target at once, since a silent target is
	// likely to stay silent; "retry" tries the same target again first,
	// as a 5xx or a reset does. On a route's last target a timeout is
	// retried either way.
	OnTimeout string `yaml:"on_timeout"`
	// MaxRetryAfterWait is the longest Retry-After a 429 may ask for and
	// still be waited out on the same target while another target is left
	// (default 0: fail over at once; a 429 on the last target is always
	// waited out, within Deadline).
	MaxRetryAfterWait time.Duration `yaml:"max_retry_after_wait"`
	// Deadline bounds a whole request, every target and wait included
	// (default 120s).
	Deadline time.Duration `yaml:"deadline"`
	// Seed seeds the jitter (default 1), so runs are reproducible.
	Seed uint64 `yaml:"seed"`
	// Providers override the timeouts for one provider's targets.
	Providers map[string]Timeouts `yaml:"providers"`
}

// Timeouts are one provider's attempt timeouts (RetrySettings); a zero
// field keeps the retry settings' value.
type Timeouts struct {
	AttemptTimeout    time.Duration `yaml:"attempt_timeout"`
	FirstTokenTimeout time.Duration `yaml:"first_token_timeout"`
	IdleTimeout       time.Duration `yaml:"idle_timeout"`
}

// The values of RetrySettings.OnTimeout.
const (
	OnTimeoutFailover = "failover"
	OnTimeoutRetry    = "retry"
)

// timeouts returns the timeouts of a target's attempts.
func (s RetrySettings) timeouts(t Target) Timeouts {
	out := Timeouts{AttemptTimeout: s.AttemptTimeout, FirstTokenTimeout: s.FirstTokenTimeout, IdleTimeout: s.IdleTimeout}
	p := s.Providers[t.Provider]
	if p.AttemptTimeout > 0 {
		out.AttemptTimeout = p.AttemptTimeout
	}
	if p.FirstTokenTimeout > 0 {
		out.FirstTokenTimeout = p.FirstTokenTimeout
	} else if p.AttemptTimeout > 0 && s.FirstTokenTimeout == s.AttemptTimeout {
		out.FirstTokenTimeout = p.AttemptTimeout // it follows the attempt timeout by default
	}
	if p.IdleTimeout > 0 {
		out.IdleTimeout = p.IdleTimeout
	}
	return out
}

// errTimeout is in the chain of an attempt that ran out of its time: the
// whole call, the first token or a chunk after it.
var errTimeout = errors.New("attempt timed out")

// timeoutErr is the error of an attempt on t that got no answer within d.
func timeoutErr(t Target, kind string, d time.Duration) error {
	return &llm.ProviderError{Provider: t.Provider, Class: llm.ClassTransport, Type: kind,
		Message: fmt.Sprintf("no answer within the %s of %s", strings.ReplaceAll(kind, "_", " "), d), Err: errTimeout}
}

// timedOut reports whether err is an attempt running out of its time.
func timedOut(err error) bool {
	var ne net.Error
	return errors.Is(err, errTimeout) || errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

func (s RetrySettings) withDefaults() RetrySettings {
	if s.MaxAttempts <= 0 {
		s.MaxAttempts = 3
	}
	if s.BaseBackoff <= 0 {
		s.BaseBackoff = 200 * time.Millisecond
	}
	if s.MaxBackoff <= 0 {
		s.MaxBackoff = 10 * time.Second
	}
	if s.AttemptTimeout <= 0 {
		s.AttemptTimeout = 60 * time.Second
	}
	if s.FirstTokenTimeout <= 0 {
		s.FirstTokenTimeout = s.AttemptTimeout
	}
	if s.IdleTimeout <= 0 {
		s.IdleTimeout = 2 * time.Minute
	}
	if s.OnTimeout == "" {
		s.OnTimeout = OnTimeoutFailover
	}
	if s.Deadline <= 0 {
		s.Deadline = 120 * time.Second
	}
	if s.Seed == 0 {
		s.Seed = 1
	}
	return s
}

// attemptFunc makes attempt n of a request on target t and meters it. It
// owns done, the breaker's second step: it calls done with the outcome
// (at once for a plain call, at the end for a stream it hands over) and
// the context the call ran on, which says whether the client left. A
// stream handed over outlives the loop's context (cancelled when run
// returns): judged by it, every mid-stream failure would look like a client
// leaving and the breaker would never learn of it.
type attemptFunc func(ctx context.Context, t Target, n int, call *llm.Request, done func(context.Context, error)) error

// run is the retry-and-failover loop, with the breaker inside it: the
// route's targets in order; on each, attempts while the error is
// transient (Class.Retryable), with jittered backoff or the vendor's
// Retry-After; a target is skipped while its breaker is open or while it
// cools down after a 429, and the next one serves. An error whose class
// does not allow failover (Class.FailOver: a client error, the client
// leaving) ends the request at once. Every attempt after the first
// reserves its own worst case on the tenant's budget (resv) before it is
// made; one the budget cannot cover ends the request. Every attempt and
// every rejection is a ledger row, numbered across targets.
func (g *Gateway) run(ctx context.Context, req *Request, resv *reservation, attempt attemptFunc) error {
	targets := g.routes[req.Route] // admit checked the route
	ctx, cancel := context.WithTimeout(ctx, g.retry.Deadline)
	defer cancel()
	n, made := 0, 0
	longer := false // the context-length fallbacks were entered
	var lastErr error
	var cause error    // the first failure that sent the request on to another target
	var causeAt Target // the target it came from
targets:
	for i := 0; i < len(targets); i++ {
		t := targets[i]
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
				if !backoff.Sleep(ctx, wait) {
					return ctxErr(ctx, lastErr)
				}
			}
			// The first attempt is covered by admit's reservation; each one
			// after it reserves its own worst case first.
			if made > 0 {
				if err := g.extend(ctx, resv, req, t); err != nil {
					n++
					if errors.Is(err, ErrBudgetExceeded) {
						g.reject(req, t, n, ledger.OutcomeRejectedBudget, err.Error())
					}
					return err
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
			made++
			err = attempt(ctx, t, n, &call, func(callCtx context.Context, err error) { done(breakerErr(callCtx, err)) })
			if err == nil {
				return nil
			}
			lastErr = err
			class := llm.Classify(ctx, err)
			if !class.FailOver() {
				if fb := g.longer[req.Route]; !longer && len(fb) > 0 && llm.ContextLengthExceeded(err) {
					// Too long for this target's window: the route's
					// larger-window targets, once.
					longer, targets, i = true, fb, -1
					continue targets
				}
				if cause != nil && class == llm.ClassClient && t != causeAt {
					// A fallback refusing what the failing target would have
					// served: the failure is the request's real cause.
					return fmt.Errorf("%w (then %s refused the request: %v)", cause, t, err)
				}
				return err
			}
			if cause == nil {
				cause, causeAt = err, t
			}
			if !class.Retryable() {
				break // the next target, not this one again
			}
			if !last && g.retry.OnTimeout == OnTimeoutFailover && timedOut(err) {
				break // a silent target: the next one, at once
			}
			var pe *llm.ProviderError
			if class == llm.ClassThrottled && errors.As(err, &pe) {
				wait := pe.RetryAfter
				if wait <= 0 {
					wait = g.jitter.Next(tries)
				}
				g.cooldowns.set(t, g.now().Add(wait))
				if !last && pe.RetryAfter > 0 && wait <= g.retry.MaxRetryAfterWait {
					// A short wait the vendor asked for: wait it out here
					// rather than move the request to another target.
					if dl, ok := ctx.Deadline(); ok && g.now().Add(wait).After(dl) {
						return lastErr
					}
					if !backoff.Sleep(ctx, wait) {
						return ctxErr(ctx, lastErr)
					}
				}
				continue // the top of the loop fails over, or waits when this is the last target
			}
			if tries >= g.retry.MaxAttempts {
				break
			}
			if !backoff.Sleep(ctx, g.jitter.Next(tries)) {
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

// cooldowns remembers targets that answered 429 and when they may be tried
// again.
type cooldowns struct {
	mu    sync.Mutex
	until map[Target]time.Time
}

func (c *cooldowns) set(t Target, until time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.until == nil {
		c.until = map[Target]time.Time{}
	}
	if until.After(c.until[t]) {
		c.until[t] = until
	}
}

func (c *cooldowns) get(t Target) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.until[t]
}
