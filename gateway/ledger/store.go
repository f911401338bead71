package ledger

import (
	"context"
	"io"
	"time"

	"github.com/shopspring/decimal"

	"github.com/brownout-dev/brownout/gateway/llm"
)

// Store persists attempts. Implementations have the same semantics, which
// the package's contract tests check against each of them:
//
//   - Insert is idempotent per (RequestID, Attempt): the first record of an
//     identity is kept, later ones are ignored and not counted as inserted,
//     except that a finished record replaces an unfinished one
//     (OutcomeUnfinished), once, and is counted. Within a batch, a finished
//     record of an identity wins over an unfinished one wherever it stands.
//   - Insert validates the whole batch first and writes nothing when any
//     attempt is invalid (the error wraps ErrInvalid).
//   - A batch is written atomically: all of it or, on error, none of it.
//
// The gateway does not call Insert on its request path; it records through a
// Writer, which batches, retries and spools in front of a Store.
type Store interface {
	// Insert writes the batch and reports how many attempts were new
	// (finished ones replacing unfinished ones included).
	Insert(ctx context.Context, batch []Attempt) (inserted int, err error)
	// Totals sums attempts matching q, grouped by q.GroupBy.
	Totals(ctx context.Context, q Query) ([]Total, error)
	// RequestAttempts returns the attempts of one request, by attempt number.
	RequestAttempts(ctx context.Context, requestID string) ([]Attempt, error)
	// Export writes the attempts that match q (its GroupBy is ignored) as
	// JSON lines, ordered by start time, request id and attempt.
	Export(ctx context.Context, q Query, w io.Writer) (n int, err error)
}

// replaces reports whether a record a replaces the one kept, had: a
// finished record replaces an unfinished one; nothing else replaces
// anything.
func replaces(a, had Attempt) bool {
	return had.Outcome == OutcomeUnfinished && a.Outcome != OutcomeUnfinished
}

// firstOfEach is batch with one record per identity, in the order of their
// first appearance: the first finished record of each, or its first
// unfinished one if it has none finished.
func firstOfEach(batch []Attempt) []Attempt {
	at := make(map[key]int, len(batch)) // index in out
	out := batch[:0:0]
	for _, a := range batch {
		k := key{a.RequestID, a.Attempt}
		i, ok := at[k]
		switch {
		case !ok:
			at[k] = len(out)
			out = append(out, a)
		case replaces(a, out[i]):
			out[i] = a
		}
	}
	return out
}

// Dimension is a column that Totals can group by.
type Dimension string

// The dimensions of Totals.
const (
	ByProvider Dimension = "provider"
	ByModel    Dimension = "model"
	ByTenant   Dimension = "tenant"
	ByOutcome  Dimension = "outcome"
)

// Query selects and groups attempts for Totals. The zero Query sums every
// attempt into a single Total.
type Query struct {
	From, To time.Time // started_at in [From, To); a zero bound is open
	Tenant   string    // "" matches every tenant
	Provider string    // "" matches every provider
	Model    string    // "" matches every model
	// ClientRequestID matches the attempts of the requests a client sent
	// with this X-Request-ID ("" matches every attempt).
	ClientRequestID string
	GroupBy         []Dimension
}

// Total is the sum of the attempts of one group. Fields of dimensions that
// are not grouped by are empty.
type Total struct {
	Provider string          `json:"provider,omitempty"`
	Model    string          `json:"model,omitempty"`
	Tenant   string          `json:"tenant,omitempty"`
	Outcome  Outcome         `json:"outcome,omitempty"`
	Attempts int64           `json:"attempts"`
	Requests int64           `json:"requests"` // distinct request ids
	Tokens   llm.Usage       `json:"tokens"`
	Cost     decimal.Decimal `json:"cost"`
	// EstimatedCost is the part of Cost whose usage the gateway estimated
	// (UsageEstimated): spend the vendor may bill differently.
	EstimatedCost decimal.Decimal `json:"estimated_cost"`
}
