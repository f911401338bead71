package llm

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// Class is what a failed provider call means for the gateway: whether it is
// retried, counted against the breaker, and failed over. The table:
//
//	class       examples                                  retried  breaker              fallback
//	client      400 401 403 404 413 422                   no       success              no
//	throttled   429, RESOURCE_EXHAUSTED                   yes      neutral (cool down)  yes
//	server      500 502 503 504 529, UNAVAILABLE          yes      failure              yes
//	transport   timeout, refused, reset, malformed body   yes      failure              yes
//	cancelled   the client went away                      no       neutral              no
//
// The columns are Retryable, BreakerFailure and BreakerNeutral (a success
// is neither), and FailOver; the breaker and the retry loop ask these
// methods rather than re-deriving them.
type Class string

// The classes.
const (
	ClassClient    Class = "client"
	ClassThrottled Class = "throttled"
	ClassServer    Class = "server"
	ClassTransport Class = "transport"
	ClassCancelled Class = "cancelled"
)

// Retryable reports whether a call that failed with c may be tried again.
func (c Class) Retryable() bool {
	return c == ClassThrottled || c == ClassServer || c == ClassTransport
}

// BreakerFailure reports whether c counts against the provider's breaker.
func (c Class) BreakerFailure() bool { return c == ClassServer || c == ClassTransport }

// BreakerNeutral reports whether c says nothing about the provider's health,
// so the breaker counts it neither as a failure nor as a success: a 429
// (the target cools down for its Retry-After instead) or the client leaving.
func (c Class) BreakerNeutral() bool { return c == ClassThrottled || c == ClassCancelled }

// FailOver reports whether the gateway may try the route's next target.
func (c Class) FailOver() bool { return c.Retryable() }

// ClassOfStatus maps an upstream HTTP status to its class.
func ClassOfStatus(status int) Class {
	switch {
	case status == http.StatusTooManyRequests:
		return ClassThrottled
	case status == http.StatusRequestTimeout:
		return ClassTransport
	case status >= 500:
		return ClassServer
	case status >= 400:
		return ClassClient
	}
	return ClassServer // a non-error status reported as an error is the provider's fault
}

// ErrProvider is the sentinel of every *ProviderError.
var ErrProvider = errors.New("llm: provider error")

// ProviderError is a failed call to a vendor: an error status, a transport
// failure, or a response the adapter could not understand.
type ProviderError struct {
	Provider   string
	Class      Class
	Status     int           // the vendor's HTTP status; 0 when none was received
	Type       string        // the vendor's error type or status name
	Message    string        // the vendor's message (no secrets: request bodies and keys never go here)
	RetryAfter time.Duration // how long the vendor asked to wait; 0 when it did not say
	RequestID  string        // the vendor's request id, when it sent one
	Err        error         // the underlying error, for transport failures
}

// Error is the whole error for the gateway's log and ledger: Summary,
// then the vendor's message and the transport's error, with anything that
// looks like a credential redacted (Redact).
func (e *ProviderError) Error() string {
	msg := e.Summary()
	if e.Message != "" {
		msg += ": " + e.Message
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return Redact(msg)
}

// Summary is the error in the gateway's own words, without the vendor's
// text: the provider, the class, and the vendor's status and error type.
// It is what a tenant is told; the vendor's message, which may quote a key
// or another tenant's request, stays in the gateway's log.
func (e *ProviderError) Summary() string {
	msg := fmt.Sprintf("%s: %s error", e.Provider, e.Class)
	if e.Status != 0 {
		msg += fmt.Sprintf(" (HTTP %d", e.Status)
		if e.Type != "" {
			msg += " " + e.Type
		}
		msg += ")"
	}
	return msg
}

// Is makes errors.Is(err, ErrProvider) true.
func (e *ProviderError) Is(target error) bool { return target == ErrProvider }

// Unwrap returns the transport error, if any.
func (e *ProviderError) Unwrap() error { return e.Err }

// Classify returns the class of err from a call made with ctx: cancelled
// when ctx was cancelled (the client went away, whatever the call then
// returned); the ProviderError's class; transport for anything else (a
// failure the adapter did not type, a per-attempt deadline: the provider's
// fault, never the client's).
func Classify(ctx context.Context, err error) Class {
	if err == nil {
		return ""
	}
	if ctx != nil && errors.Is(ctx.Err(), context.Canceled) {
		return ClassCancelled
	}
	var pe *ProviderError
	if errors.As(err, &pe) {
		return pe.Class
	}
	return ClassTransport
}

// Malformed returns the error of a response the adapter could not parse: a
// provider fault of class transport.
func Malformed(provider string, status int, requestID string, err error) *ProviderError {
	return &ProviderError{Provider: provider, Class: ClassTransport, Status: status, Type: "malformed_response",
		Message: "malformed response", RequestID: requestID, Err: err}
}

// Transport returns the error of a call that got no usable answer.
func Transport(provider string, err error) *ProviderError {
	return &ProviderError{Provider: provider, Class: ClassTransport, Err: err}
}
