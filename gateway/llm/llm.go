// Package llm holds the gateway's canonical model-API types: the request
// every vendor adapter translates from, the response and stream chunks it
// translates back to, the Usage that normalises the vendors' token
// conventions, and the typed errors of a provider call. It is a leaf: the
// gateway, the adapters and the pricing table all import it.
package llm

import (
	"context"
	"math"
	"unicode/utf8"
)

// Message is one turn of a conversation.
type Message struct {
	Role    string `json:"role"` // system, user or assistant
	Content string `json:"content"`
}

// Request is a chat completion request in canonical form.
type Request struct {
	Model     string    // the vendor's model name (the route's target, not the alias)
	Messages  []Message // at least one
	MaxTokens int       // 0: the adapter's default
	// Temperature is nil when the client did not set it.
	Temperature *float64
	// Stop sequences; empty for none.
	Stop []string
}

// Usage counts the tokens of one upstream call, normalised across vendors:
//
//   - Input: prompt tokens billed at the input rate (cache reads and writes
//     excluded; OpenAI and Gemini count cached tokens inside the prompt,
//     so their adapters subtract them).
//   - Output: the visible answer tokens, reasoning excluded.
//   - Reasoning: thinking tokens, billed at the reasoning rate.
//   - CacheRead: prompt tokens read from a cache.
//   - CacheWrite, CacheWrite1h: prompt tokens written to a cache that lives
//     5 minutes, or one hour (Anthropic bills the two at different rates).
//
// Streamed usage is the final cumulative count, never a sum of deltas.
type Usage struct {
	Input      int64 `json:"input"`
	Output     int64 `json:"output"`
	Reasoning  int64 `json:"reasoning"`
	CacheRead  int64 `json:"cache_read"`
	CacheWrite int64 `json:"cache_write"`
	// CacheWrite1h is absent from exports written before it existed: 0.
	CacheWrite1h int64 `json:"cache_write_1h,omitempty"`
}

// Prompt is every prompt token of u: input, cache reads and cache writes.
func (u Usage) Prompt() int64 { return u.Input + u.CacheRead + u.CacheWrite + u.CacheWrite1h }

// Add returns the element-wise sum of u and v.
func (u Usage) Add(v Usage) Usage {
	return Usage{
		Input:        u.Input + v.Input,
		Output:       u.Output + v.Output,
		Reasoning:    u.Reasoning + v.Reasoning,
		CacheRead:    u.CacheRead + v.CacheRead,
		CacheWrite:   u.CacheWrite + v.CacheWrite,
		CacheWrite1h: u.CacheWrite1h + v.CacheWrite1h,
	}
}

// Response is a complete answer.
type Response struct {
	ID           string // the vendor's message id
	Model        string // the model that answered, as the vendor names it
	Content      string
	FinishReason string // canonical: stop, length, content_filter, or the vendor's own
	Usage        Usage
	// ProviderRequestID is the vendor's id of the request (a header, or
	// Gemini's responseId): what the vendor's invoice is keyed by.
	ProviderRequestID string
}

// Chunk is one piece of a streamed answer.
type Chunk struct {
	Content string
	// Final is set on the last chunk, which carries FinishReason and Usage.
	Final        bool
	FinishReason string
	Usage        Usage
}

// Stream is a streamed answer. Next returns chunks until the final one,
// then io.EOF; a stream that ends without its vendor's terminal event
// returns an error of class ClassTransport. Usage returns the usage seen
// so far (for metering a stream cut short). Close releases the connection.
type Stream interface {
	Next() (Chunk, error)
	Usage() Usage
	ProviderRequestID() string
	Close() error
}

// PromptEstimator is implemented by an adapter that can estimate, without
// a call, how many input tokens its vendor bills for a request's prompt.
// The gateway meters with it an attempt the vendor may have billed but
// whose usage never came back (a timeout, a cut stream).
type PromptEstimator interface {
	EstimatePromptTokens(req *Request) int64
}

// EstimatePromptTokens estimates the prompt of req at charsPerToken
// characters a token, plus perMessage tokens of framing for each message:
// the vendors' own rules of thumb, an estimate and never a count. It is at
// least 1 for a request with any message.
func EstimatePromptTokens(req *Request, charsPerToken float64, perMessage int64) int64 {
	var chars int
	for _, m := range req.Messages {
		chars += utf8.RuneCountInString(m.Content)
	}
	n := int64(math.Ceil(float64(chars)/charsPerToken)) + perMessage*int64(len(req.Messages))
	if n < 1 && len(req.Messages) > 0 {
		n = 1
	}
	return n
}

// Provider is one vendor's adapter. Implementations are safe for
// concurrent use and do not retry: the gateway's retry loop is the only one.
type Provider interface {
	Complete(ctx context.Context, req *Request) (*Response, error)
	Stream(ctx context.Context, req *Request) (Stream, error)
}

// Continuer is a Provider whose model continues a final assistant message
// (Anthropic's prefill) instead of answering anew: the gateway can carry a
// stream that died mid-way on to it, sending the answer so far.
type Continuer interface {
	ContinuesPrefill() bool
}
