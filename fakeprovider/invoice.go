package fakeprovider

import (
	"time"

	"github.com/shopspring/decimal"
)

// InvoiceLine is what the vendor would bill for one request. The rules
// follow the vendors': an error answer (4xx, 5xx) bills nothing; a
// generation bills its input and the reasoning and output tokens generated,
// also when the client went away or the stream was cut before the end.
type InvoiceLine struct {
	// RequestID is the provider's id as the client saw it: the request-id
	// header (Anthropic), x-request-id (OpenAI) or responseId (Gemini).
	RequestID string `json:"request_id"`
	Model     string `json:"model"`
	// InputTokens are the prompt tokens billed at the input rate: cache
	// reads excluded, as in the gateway's normalised usage.
	InputTokens      int64         `json:"input_tokens"`
	OutputTokens     int64         `json:"output_tokens"`    // visible answer tokens
	ReasoningTokens  int64         `json:"reasoning_tokens"` // thinking tokens, billed as output
	CacheReadTokens  int64         `json:"cache_read_tokens"`
	CacheWriteTokens int64         `json:"cache_write_tokens"`
	Stream           bool          `json:"stream"`
	Complete         bool          `json:"complete"` // false when cut short
	At               time.Duration `json:"at"`       // on the fake's clock
	// Cost is the line's exact cost at the fake's price table; zero and
	// Unpriced when the table has no price for the model.
	Cost     decimal.Decimal `json:"cost"`
	Unpriced bool            `json:"unpriced,omitempty"`
	// UnreportedTokens are the reasoning tokens of ReasoningTokens that the
	// response's usage left out (FaultUnreportedUsage).
	UnreportedTokens int64 `json:"unreported_tokens,omitempty"`
}

// charge is a line's cost by kind of token, at the vendor's price for the
// request (its long-context tier included).
type charge struct {
	input, cacheRead, cacheWrite, output decimal.Decimal // output: reasoning included
}

func (c charge) total() decimal.Decimal {
	return c.input.Add(c.cacheRead).Add(c.cacheWrite).Add(c.output)
}

// Invoice is everything a fake has billed since it started (or was reset).
type Invoice struct {
	Vendor Vendor        `json:"vendor"`
	Lines  []InvoiceLine `json:"lines"`
	Totals InvoiceTotals `json:"totals"`
}

// InvoiceTotals sums an invoice's lines.
type InvoiceTotals struct {
	Requests         int             `json:"requests"`
	InputTokens      int64           `json:"input_tokens"`
	OutputTokens     int64           `json:"output_tokens"`
	ReasoningTokens  int64           `json:"reasoning_tokens"`
	CacheReadTokens  int64           `json:"cache_read_tokens"`
	CacheWriteTokens int64           `json:"cache_write_tokens"`
	Cost             decimal.Decimal `json:"cost"`
	UnpricedLines    int             `json:"unpriced_lines,omitempty"`
}

func newInvoice(v Vendor, lines []InvoiceLine) Invoice {
	inv := Invoice{Vendor: v, Lines: lines}
	for _, l := range lines {
		inv.Totals.Requests++
		inv.Totals.InputTokens += l.InputTokens
		inv.Totals.OutputTokens += l.OutputTokens
		inv.Totals.ReasoningTokens += l.ReasoningTokens
		inv.Totals.CacheReadTokens += l.CacheReadTokens
		inv.Totals.CacheWriteTokens += l.CacheWriteTokens
		inv.Totals.Cost = inv.Totals.Cost.Add(l.Cost)
		if l.Unpriced {
			inv.Totals.UnpricedLines++
		}
	}
	return inv
}

// JournalEntry is one request the fake received, as GET /_fake/requests
// lists it.
type JournalEntry struct {
	Seq       uint64        `json:"seq"`
	At        time.Duration `json:"at"` // on the fake's clock
	Method    string        `json:"method"`
	Path      string        `json:"path"`
	Model     string        `json:"model,omitempty"`
	Stream    bool          `json:"stream"`
	Status    int           `json:"status"` // 0 when no status was sent (outage, hang, client gone)
	Outcome   string        `json:"outcome"`
	Faults    []string      `json:"faults,omitempty"`
	RequestID string        `json:"request_id,omitempty"`
}

// The journal's outcomes.
const (
	OutcomeOK          = "ok"
	OutcomeError       = "error"        // an error answer: bad input or an injected status
	OutcomeAborted     = "aborted"      // connection cut without a response (outage)
	OutcomeHang        = "hang"         // no answer until the client left
	OutcomeStalled     = "stalled"      // a stream that stopped mid-way until the client left
	OutcomeClientGone  = "client_gone"  // the client left before the end
	OutcomeTruncated   = "truncated"    // the body or stream was cut short
	OutcomeReset       = "reset"        // the connection was dropped mid-body
	OutcomeMalformed   = "malformed"    // the body was garbled
	OutcomeStreamError = "stream_error" // an error event after a 200
)
