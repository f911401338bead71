// Package anthropic is the gateway's adapter for the Anthropic Messages API
// (POST {base}/v1/messages), plain and streamed.
//
// Usage: output_tokens includes the thinking tokens; when the response says
// how many (output_tokens_details.thinking_tokens) they are split out as
// Reasoning, otherwise all of output_tokens is Output (billed at the output
// rate either way). input_tokens excludes cache reads and writes, which are
// their own counts.
package anthropic

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/brownout-dev/brownout/gateway/llm"
	"github.com/brownout-dev/brownout/gateway/providers/internal/wire"
	"github.com/brownout-dev/brownout/internal/sse"
)

// Version is the anthropic-version header the adapter sends.
const Version = "2023-06-01"

// DefaultMaxTokens is sent when the request sets none (the API requires it).
const DefaultMaxTokens = 4096

// Config configures an Adapter.
type Config struct {
	Name    string // the provider's name in the gateway config
	BaseURL string // default https://api.anthropic.com
	APIKey  string // sent in x-api-key; never logged
	Client  *http.Client
	Now     func() time.Time
	// ThinkingBudget enables extended thinking for the models it names,
	// with that many budget tokens (at least 1024, below max_tokens).
	ThinkingBudget map[string]int
}

// Adapter calls the Messages API. It is safe for concurrent use.
type Adapter struct {
	cfg Config
	url string
}

var _ llm.Provider = (*Adapter)(nil)

// New returns an Adapter.
func New(cfg Config) *Adapter {
	wire.Defaults(&cfg.Name, &cfg.BaseURL, &cfg.Client, &cfg.Now, "anthropic", "https://api.anthropic.com")
	return &Adapter{cfg: cfg, url: strings.TrimSuffix(cfg.BaseURL, "/") + "/v1/messages"}
}

type messagesRequest struct {
	Model         string        `json:"model"`
	MaxTokens     int           `json:"max_tokens"`
	System        string        `json:"system,omitempty"`
	Messages      []llm.Message `json:"messages"`
	Temperature   *float64      `json:"temperature,omitempty"`
	StopSequences []string      `json:"stop_sequences,omitempty"`
	Stream        bool          `json:"stream,omitempty"`
	Thinking      *thinking     `json:"thinking,omitempty"`
}

type thinking struct {
	Type         string `json:"type"`
	BudgetTokens int    `json:"budget_tokens"`
}

func (a *Adapter) body(req *llm.Request, stream bool) messagesRequest {
	b := messagesRequest{Model: req.Model, MaxTokens: req.MaxTokens, Temperature: req.Temperature,
		StopSequences: req.Stop, Stream: stream}
	if b.MaxTokens == 0 {
		b.MaxTokens = DefaultMaxTokens
	}
	var system []string
	for _, m := range req.Messages {
		if m.Role == "system" || m.Role == "developer" {
			system = append(system, m.Content)
			continue
		}
		b.Messages = append(b.Messages, m)
	}
	b.System = strings.Join(system, "\n\n")
	if budget := a.cfg.ThinkingBudget[req.Model]; budget > 0 {
		b.Thinking = &thinking{Type: "enabled", BudgetTokens: budget}
		b.MaxTokens = max(b.MaxTokens, budget+1)
	}
	return b
}

func (a *Adapter) post(ctx context.Context, req *llm.Request, stream bool) (*http.Response, string, error) {
	h := wire.Header("x-api-key", a.cfg.APIKey, "anthropic-version", Version)
	body := a.body(req, stream)
	resp, err := wire.PostJSON(ctx, a.cfg.Client, a.cfg.Name, a.url, h, appendRequest(make([]byte, 0, 512), &body))
	if err != nil {
		return nil, "", err
	}
	reqID := resp.Header.Get("Request-Id") // canonical: no allocation to canonicalise it
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		typ, msg := errorOf(body)
		if msg == "" {
			msg = http.StatusText(resp.StatusCode)
		}
		return nil, reqID, wire.StatusError(a.cfg.Name, resp.StatusCode, typ, msg, wire.RetryAfter(resp.Header, a.cfg.Now()), reqID)
	}
	return resp, reqID, nil
}

type errorBody struct {
	Error *struct {
		Type    string `json:"type"`
		Message string `json:"message"`
	} `json:"error"`
}

func errorOf(body []byte) (typ, msg string) {
	var e errorBody
	if json.Unmarshal(body, &e) == nil && e.Error != nil {
		return e.Error.Type, e.Error.Message
	}
	return "", ""
}

type usage struct {
	InputTokens              *int64 `json:"input_tokens"`
	OutputTokens             *int64 `json:"output_tokens"`
	CacheCreationInputTokens int64  `json:"cache_creation_input_tokens"`
	CacheReadInputTokens     int64  `json:"cache_read_input_tokens"`
	// CacheCreation splits cache_creation_input_tokens by the cache's
	// lifetime, which Anthropic bills at different rates.
	CacheCreation       *cacheCreation `json:"cache_creation"`
	OutputTokensDetails *outputDetails `json:"output_tokens_details"`
}

type cacheCreation struct {
	Ephemeral5m int64 `json:"ephemeral_5m_input_tokens"`
	Ephemeral1h int64 `json:"ephemeral_1h_input_tokens"`
}

type outputDetails struct {
	ThinkingTokens int64 `json:"thinking_tokens"`
}

// normalise splits output_tokens, which includes thinking, into Output and
// Reasoning when the response says how much was thinking. The thinking is
// counted from these fields only, never from the content: a thinking block
// that is empty or redacted (a signature alone) still bills its tokens
// inside output_tokens.
func (u *usage) normalise() (llm.Usage, error) {
	if u.InputTokens == nil || u.OutputTokens == nil {
		return llm.Usage{}, errors.New("usage without input_tokens or output_tokens")
	}
	out := llm.Usage{Input: *u.InputTokens, Output: *u.OutputTokens, CacheRead: u.CacheReadInputTokens}
	out.CacheWrite, out.CacheWrite1h = u.cacheWrites()
	if d := u.OutputTokensDetails; d != nil {
		out.Reasoning = d.ThinkingTokens
		out.Output -= d.ThinkingTokens
	}
	if out.Input < 0 || out.Output < 0 || out.Reasoning < 0 || out.CacheRead < 0 || out.CacheWrite < 0 || out.CacheWrite1h < 0 {
		return llm.Usage{}, fmt.Errorf("inconsistent usage: output_tokens %d, thinking_tokens %d", *u.OutputTokens, out.Reasoning)
	}
	return out, nil
}

// cacheWrites splits cache_creation_input_tokens into 5-minute and 1-hour
// writes by the cache_creation breakdown; without one, all are 5-minute
// (the API's default lifetime).
func (u *usage) cacheWrites() (fiveMin, oneHour int64) {
	if c := u.CacheCreation; c != nil {
		return u.CacheCreationInputTokens - c.Ephemeral1h, c.Ephemeral1h
	}
	return u.CacheCreationInputTokens, 0
}

type messageResponse struct {
	ID         string  `json:"id"`
	Type       string  `json:"type"`
	Model      string  `json:"model"`
	StopReason string  `json:"stop_reason"`
	Content    []block `json:"content"`
	Usage      *usage  `json:"usage"`
}

// block is one of a message's content blocks; only text blocks are read.
type block struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

func finishReason(stop string) string {
	switch stop {
	case "end_turn", "stop_sequence":
		return "stop"
	case "max_tokens":
		return "length"
	case "refusal":
		return "content_filter"
	}
	return stop
}

// EstimatePromptTokens implements llm.PromptEstimator with Anthropic's
// rule of thumb: about 3.5 characters a token, and 3 tokens of framing a
// message.
func (a *Adapter) EstimatePromptTokens(req *llm.Request) int64 {
	return llm.EstimatePromptTokens(req, 3.5, 3)
}

// Complete implements llm.Provider.
func (a *Adapter) Complete(ctx context.Context, req *llm.Request) (*llm.Response, error) {
	resp, reqID, err := a.post(ctx, req, false)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := wire.ReadBody(a.cfg.Name, resp, reqID)
	if err != nil {
		return nil, err
	}
	m, err := decodeMessage(body)
	if err != nil {
		return nil, llm.Malformed(a.cfg.Name, resp.StatusCode, reqID, err)
	}
	if m.Type != "message" || m.Usage == nil {
		return nil, llm.Malformed(a.cfg.Name, resp.StatusCode, reqID, errors.New("not a message with usage"))
	}
	u, err := m.Usage.normalise()
	if err != nil {
		return nil, llm.Malformed(a.cfg.Name, resp.StatusCode, reqID, err)
	}
	var text strings.Builder
	for _, b := range m.Content {
		if b.Type == "text" {
			text.WriteString(b.Text)
		}
	}
	return &llm.Response{ID: m.ID, Model: m.Model, Content: text.String(), FinishReason: finishReason(m.StopReason),
		Usage: u, ProviderRequestID: reqID}, nil
}

// Stream implements llm.Provider.
// ContinuesPrefill implements llm.Continuer: a final assistant message is
// the start of the reply, which the model continues.
func (a *Adapter) ContinuesPrefill() bool { return true }

func (a *Adapter) Stream(ctx context.Context, req *llm.Request) (llm.Stream, error) {
	resp, reqID, err := a.post(ctx, req, true)
	if err != nil {
		return nil, err
	}
	return &stream{a: a, body: resp.Body, events: sse.NewReader(resp.Body), reqID: reqID}, nil
}

type stream struct {
	a      *Adapter
	body   io.ReadCloser
	events *sse.Reader
	reqID  string

	start          *usage // from message_start
	last           *usage // from the latest message_delta
	finish         string
	textDeltas     int64
	thinkingDeltas int64
	done           bool
}

type event struct {
	Type    string        `json:"type"`
	Message *eventMessage `json:"message"`
	Delta   *delta        `json:"delta"`
	Usage   *usage        `json:"usage"`
	Error   *eventError   `json:"error"`
}

// eventMessage is message_start's message, read for its usage.
type eventMessage struct {
	Usage *usage `json:"usage"`
}

// delta is a content_block_delta's or a message_delta's.
type delta struct {
	Type       string `json:"type"`
	Text       string `json:"text"`
	StopReason string `json:"stop_reason"`
}

type eventError struct {
	Type    string `json:"type"`
	Message string `json:"message"`
}

func (s *stream) Next() (llm.Chunk, error) {
	if s.done {
		return llm.Chunk{}, io.EOF
	}
	for {
		ev, err := s.events.Next()
		if errors.Is(err, io.EOF) && s.finish != "" && s.last != nil {
			// A clean end after message_delta's stop reason and final
			// usage: the whole answer, only message_stop (which carries
			// nothing) is missing.
			return s.end()
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = errors.New("stream ended before its stop reason and final usage")
			}
			return llm.Chunk{}, llm.Transport(s.a.cfg.Name, fmt.Errorf("stream cut: %w", err))
		}
		e, err := decodeEvent(ev.Data)
		if err != nil {
			return llm.Chunk{}, llm.Malformed(s.a.cfg.Name, http.StatusOK, s.reqID, err)
		}
		switch e.Type {
		case "message_start":
			if e.Message == nil || e.Message.Usage == nil {
				return llm.Chunk{}, llm.Malformed(s.a.cfg.Name, http.StatusOK, s.reqID, errors.New("message_start without usage"))
			}
			s.start = e.Message.Usage
		case "content_block_delta":
			if e.Delta == nil {
				continue
			}
			switch e.Delta.Type {
			case "text_delta":
				s.textDeltas++
				return llm.Chunk{Content: e.Delta.Text}, nil
			case "thinking_delta":
				s.thinkingDeltas++
			}
		case "message_delta":
			if e.Delta != nil {
				s.finish = finishReason(e.Delta.StopReason)
			}
			if e.Usage != nil {
				s.last = e.Usage
			}
		case "message_stop":
			return s.end()
		case "error":
			typ, msg := "", ""
			if e.Error != nil {
				typ, msg = e.Error.Type, e.Error.Message
			}
			return llm.Chunk{}, &llm.ProviderError{Provider: s.a.cfg.Name, Class: classOfType(typ), Status: http.StatusOK,
				Type: typ, Message: wire.Clip(msg), RequestID: s.reqID}
		}
	}
}

// end is the final chunk, with the usage of message_start and the last
// message_delta.
func (s *stream) end() (llm.Chunk, error) {
	u, err := s.final()
	if err != nil {
		return llm.Chunk{}, llm.Malformed(s.a.cfg.Name, http.StatusOK, s.reqID, err)
	}
	s.done = true
	return llm.Chunk{Final: true, FinishReason: s.finish, Usage: u}, nil
}

// final combines message_start's input counts with the cumulative output
// counts of the last message_delta.
func (s *stream) final() (llm.Usage, error) {
	if s.start == nil || s.last == nil {
		return llm.Usage{}, errors.New("message_stop without message_start and message_delta usage")
	}
	merged := *s.start
	merged.OutputTokens = s.last.OutputTokens
	merged.OutputTokensDetails = s.last.OutputTokensDetails
	if s.last.InputTokens != nil {
		merged.InputTokens = s.last.InputTokens
	}
	if s.last.CacheReadInputTokens != 0 || s.last.CacheCreationInputTokens != 0 {
		merged.CacheReadInputTokens, merged.CacheCreationInputTokens = s.last.CacheReadInputTokens, s.last.CacheCreationInputTokens
	}
	return merged.normalise()
}

// classOfType maps a mid-stream error type to its class.
func classOfType(typ string) llm.Class {
	switch typ {
	case "rate_limit_error":
		return llm.ClassThrottled
	case "invalid_request_error", "authentication_error", "permission_error", "not_found_error", "request_too_large":
		return llm.ClassClient
	}
	return llm.ClassServer
}

// Usage returns the final usage after message_stop; before that, what is
// known: message_start's input and cache counts, and one output token per
// text delta and one reasoning token per thinking delta received.
func (s *stream) Usage() llm.Usage {
	if s.done {
		u, _ := s.final()
		return u
	}
	var u llm.Usage
	if s.start != nil && s.start.InputTokens != nil {
		u.Input, u.CacheRead = *s.start.InputTokens, s.start.CacheReadInputTokens
		u.CacheWrite, u.CacheWrite1h = s.start.cacheWrites()
	}
	u.Output, u.Reasoning = s.textDeltas, s.thinkingDeltas
	return u
}

func (s *stream) ProviderRequestID() string { return s.reqID }
func (s *stream) Close() error              { return s.body.Close() }
