package ledger

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/shopspring/decimal"

	"github.com/brownout-dev/brownout/gateway/llm"
)

// Outcome is what one upstream attempt came to. The set is closed: a value
// outside it is rejected by Validate.
type Outcome string

// The outcomes, one per error class of the request path plus the two kinds of
// rejection that never reach a provider.
const (
	OutcomeOK              Outcome = "ok"
	OutcomeClientError     Outcome = "client_error"
	OutcomeThrottled       Outcome = "throttled"
	OutcomeServerError     Outcome = "server_error"
	OutcomeTransportError  Outcome = "transport_error"
	OutcomeCancelled       Outcome = "cancelled"
	OutcomeRejectedBreaker Outcome = "rejected_breaker"
	OutcomeRejectedBudget  Outcome = "rejected_budget"
	// OutcomeUnfinished is the row of an attempt recorded before its
	// upstream call: the estimate of its prompt (UsageEstimated), which the
	// vendor may bill from the moment it has the call. The attempt's
	// finished row replaces it; one left unfinished is an attempt whose
	// gateway stopped before it ended (a crash), metered at that estimate.
	OutcomeUnfinished Outcome = "unfinished"
)

// Outcomes lists every valid Outcome, in a stable order.
var Outcomes = []Outcome{
	OutcomeOK, OutcomeClientError, OutcomeThrottled, OutcomeServerError,
	OutcomeTransportError, OutcomeCancelled, OutcomeRejectedBreaker, OutcomeRejectedBudget, OutcomeUnfinished,
}

// Valid reports whether o is one of Outcomes.
func (o Outcome) Valid() bool {
	for _, v := range Outcomes {
		if o == v {
			return true
		}
	}
	return false
}

// UsageSource says how an attempt's tokens, and so its cost, are known.
type UsageSource string

// The usage sources. Every attempt a vendor could have billed has a row:
// where the vendor's usage never arrived, the row carries the gateway's
// estimate and says so, never a silent zero.
const (
	// UsageReported: the vendor's own usage fields (a success, a stream's
	// final usage), or an error answer, which the vendors do not bill.
	UsageReported UsageSource = "reported"
	// UsageEstimated: the call reached the vendor and may be billed, but
	// its usage never came back (a timeout, a disconnect, a malformed
	// body, a cut or cancelled stream). Input is estimated from the prompt
	// unless the vendor had said it; output is what was received.
	UsageEstimated UsageSource = "estimated"
	// UsageNone: nothing reached a vendor (a rejection by the breaker or
	// the budget, a connection never made): nothing can be billed.
	UsageNone UsageSource = "none"
	// UsageUnknown: the row does not say (written before the ledger kept
	// the source, or by a writer that left it empty).
	UsageUnknown UsageSource = "unknown"
)

// Valid reports whether s is one of the usage sources.
func (s UsageSource) Valid() bool {
	return s == UsageReported || s == UsageEstimated || s == UsageNone || s == UsageUnknown
}

// Limits on the text fields of an Attempt. IDs over the limit are an error;
// an error message over the limit is truncated (it is diagnostic, not a key).
const (
	MaxIDLen      = 128
	MaxMessageLen = 512
)

// ErrInvalid is the sentinel of every validation failure; the error returned
// is an *InvalidError that says which field and why.
var ErrInvalid = errors.New("ledger: invalid attempt")

// InvalidError says which field of an Attempt is bad and why.
type InvalidError struct {
	RequestID string
	Attempt   int
	Field     string
	Reason    string
}

func (e *InvalidError) Error() string {
	return fmt.Sprintf("ledger: invalid attempt (request_id=%q attempt=%d): %s: %s",
		e.RequestID, e.Attempt, e.Field, e.Reason)
}

// Is makes errors.Is(err, ErrInvalid) true.
func (e *InvalidError) Is(target error) bool { return target == ErrInvalid }

// Attempt is one upstream attempt of one gateway request: the unit of
// metering. (RequestID, Attempt) is its identity; recording the same identity
// twice keeps the first record and counts it once, except that a finished
// record replaces an unfinished one (OutcomeUnfinished).
//
// The JSON form is the ledger's export format (one Attempt per line); its
// field names are stable.
type Attempt struct {
	// RequestID is minted by the gateway (time-ordered, unique): the key of
	// the row is never a value a client chose.
	RequestID string `json:"request_id"`
	// ClientRequestID is the client's X-Request-ID, for tracing; "" when
	// it sent none. Any number of rows may share one.
	ClientRequestID string          `json:"client_request_id,omitempty"`
	Attempt         int             `json:"attempt"` // 1-based, in the order the gateway made them
	IdempotencyKey  string          `json:"idempotency_key,omitempty"`
	Tenant          string          `json:"tenant"`
	Route           string          `json:"route"` // the alias the client asked for
	Provider        string          `json:"provider"`
	Model           string          `json:"model"`
	Outcome         Outcome         `json:"outcome"`
	HTTPStatus      int             `json:"http_status,omitempty"` // the provider's status; 0 when none was received
	ErrorClass      string          `json:"error_class,omitempty"`
	ErrorMessage    string          `json:"error_message,omitempty"` // truncated to MaxMessageLen bytes
	Tokens          llm.Usage       `json:"tokens"`
	UsageSource     UsageSource     `json:"usage_source"` // how Tokens are known; "" is kept as unknown
	Cost            decimal.Decimal `json:"cost"`         // USD, exact
	StartedAt       time.Time       `json:"started_at"`
	FinishedAt      time.Time       `json:"finished_at"`
	ProviderReqID   string          `json:"provider_request_id,omitempty"`
}

// Latency is how long the attempt took.
func (a *Attempt) Latency() time.Duration { return a.FinishedAt.Sub(a.StartedAt) }

// Validate checks a and normalises it the way every Store keeps it: the error
// message truncated to MaxMessageLen bytes on a rune boundary, times in UTC
// at microsecond precision (Postgres's). It returns an *InvalidError naming
// the first bad field.
func (a *Attempt) Validate() error {
	bad := func(field, format string, args ...any) error {
		return &InvalidError{RequestID: clip(a.RequestID, 64), Attempt: a.Attempt, Field: field, Reason: fmt.Sprintf(format, args...)}
	}
	if err := checkID(a.RequestID, true); err != nil {
		return bad("request_id", "%s", err)
	}
	if a.Attempt < 1 {
		return bad("attempt", "must be at least 1, got %d", a.Attempt)
	}
	for _, f := range []struct{ name, v string }{
		{"client_request_id", a.ClientRequestID}, {"idempotency_key", a.IdempotencyKey},
		{"tenant", a.Tenant}, {"route", a.Route}, {"provider", a.Provider}, {"model", a.Model},
		{"error_class", a.ErrorClass}, {"provider_request_id", a.ProviderReqID},
	} {
		if err := checkID(f.v, false); err != nil {
			return bad(f.name, "%s", err)
		}
	}
	if !a.Outcome.Valid() {
		return bad("outcome", "unknown outcome %q", clip(string(a.Outcome), 32))
	}
	if a.UsageSource == "" {
		a.UsageSource = UsageUnknown
	}
	if !a.UsageSource.Valid() {
		return bad("usage_source", "unknown usage source %q", clip(string(a.UsageSource), 32))
	}
	if a.HTTPStatus != 0 && (a.HTTPStatus < 100 || a.HTTPStatus > 599) {
		return bad("http_status", "must be 0 or 100..599, got %d", a.HTTPStatus)
	}
	for _, f := range []struct {
		name string
		v    int64
	}{
		{"tokens.input", a.Tokens.Input}, {"tokens.output", a.Tokens.Output},
		{"tokens.reasoning", a.Tokens.Reasoning}, {"tokens.cache_read", a.Tokens.CacheRead},
		{"tokens.cache_write", a.Tokens.CacheWrite}, {"tokens.cache_write_1h", a.Tokens.CacheWrite1h},
	} {
		if f.v < 0 {
			return bad(f.name, "must not be negative, got %d", f.v)
		}
	}
	if a.Cost.IsNegative() {
		return bad("cost", "must not be negative, got %s", a.Cost)
	}
	if !a.Cost.Equal(a.Cost.Truncate(CostScale)) {
		return bad("cost", "has more than %d decimal places: %s", CostScale, a.Cost)
	}
	if a.Cost.GreaterThanOrEqual(maxCost) {
		return bad("cost", "must be below %s, got %s", maxCost, a.Cost)
	}
	if a.StartedAt.IsZero() {
		return bad("started_at", "must be set")
	}
	if a.FinishedAt.Before(a.StartedAt) {
		return bad("finished_at", "%s is before started_at %s", a.FinishedAt.Format(time.RFC3339Nano), a.StartedAt.Format(time.RFC3339Nano))
	}
	a.ErrorMessage = truncate(a.ErrorMessage, MaxMessageLen)
	a.StartedAt = a.StartedAt.UTC().Truncate(time.Microsecond)
	a.FinishedAt = a.FinishedAt.UTC().Truncate(time.Microsecond)
	return nil
}

// CostScale is the number of decimal places the ledger keeps for a cost
// (NUMERIC(20,12) in Postgres): a millionth of a micro-dollar.
const CostScale = 12

// maxCost is 10^8, the least cost NUMERIC(20,12) cannot hold, at the
// ledger's scale: a cost at that scale (every metered one) compares with it
// without a rescale, which would allocate.
var maxCost = decimal.New(1, 20-CostScale).Round(CostScale)

// CheckID reports why s cannot be an identifier column of the ledger
// (tenant, route, provider, model, keys): longer than MaxIDLen bytes, not
// UTF-8, or holding a control character. Configuration is checked with it,
// so that a value the ledger refuses is an error at start-up, not a lost row.
func CheckID(s string) error { return checkID(s, false) }

func checkID(s string, required bool) error {
	switch {
	case s == "" && required:
		return errors.New("must not be empty")
	case len(s) > MaxIDLen:
		return fmt.Errorf("longer than %d bytes (%d)", MaxIDLen, len(s))
	case !utf8.ValidString(s):
		return errors.New("not valid UTF-8")
	case strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return errors.New("contains a control character")
	}
	return nil
}

// SanitizeID makes a value that came from outside the gateway (a vendor's
// request id) fit an identifier column instead of being a reason to refuse
// the row: control characters and invalid UTF-8 become '?', and the value
// is cut to MaxIDLen bytes on a rune boundary.
func SanitizeID(s string) string {
	if checkID(s, false) == nil {
		return s
	}
	s = strings.ToValidUTF8(s, "?")
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, s)
	return truncate(s, MaxIDLen)
}

// truncate cuts s to at most n bytes without splitting a rune, and removes
// NUL bytes, which Postgres text cannot hold.
func truncate(s string, n int) string {
	if strings.IndexByte(s, 0) >= 0 {
		s = strings.ReplaceAll(s, "\x00", "")
	}
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return truncate(s, n) + "..."
}
