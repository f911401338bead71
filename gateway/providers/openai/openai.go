// Package openai is the gateway's adapter for OpenAI Chat Completions
// (POST {base}/v1/chat/completions), plain and streamed.
//
// Usage: completion_tokens includes completion_tokens_details.reasoning_tokens,
// so Output = completion - reasoning; prompt_tokens includes
// prompt_tokens_details.cached_tokens, so Input = prompt - cached.
package openai

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

// Config configures an Adapter.
type Config struct {
	Name    string       // the provider's name in the gateway config, used in errors and the ledger
	BaseURL string       // scheme://host[:port], without /v1 (default https://api.openai.com)
	APIKey  string       // sent as a bearer token; never logged
	Client  *http.Client // default http.DefaultClient
	Now     func() time.Time
}

// Adapter calls OpenAI's Chat Completions API. It is safe for concurrent use.
type Adapter struct {
	cfg Config
	url string
}

var _ llm.Provider = (*Adapter)(nil)

// New returns an Adapter.
func New(cfg Config) *Adapter {
	wire.Defaults(&cfg.Name, &cfg.BaseURL, &cfg.Client, &cfg.Now, "openai", "https://api.openai.com")
	return &Adapter{cfg: cfg, url: strings.TrimSuffix(cfg.BaseURL, "/") + "/v1/chat/completions"}
}

func (a *Adapter) post(ctx context.Context, req *llm.Request, stream bool) (*http.Response, string, error) {
	resp, err := wire.PostJSON(ctx, a.cfg.Client, a.cfg.Name, a.url, wire.Header("Authorization", "Bearer "+a.cfg.APIKey), appendRequest(nil, req, stream))
	if err != nil {
		return nil, "", err
	}
	reqID := resp.Header.Get("X-Request-Id") // canonical: no allocation to canonicalise it
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		return nil, reqID, a.statusError(resp, body, reqID)
	}
	return resp, reqID, nil
}

type apiError struct {
	Error *struct {
		Message string  `json:"message"`
		Type    string  `json:"type"`
		Code    *string `json:"code"`
	} `json:"error"`
}

func (a *Adapter) statusError(resp *http.Response, body []byte, reqID string) error {
	var e apiError
	typ, msg := "", http.StatusText(resp.StatusCode)
	if json.Unmarshal(body, &e) == nil && e.Error != nil {
		typ, msg = e.Error.Type, e.Error.Message
		if e.Error.Code != nil && *e.Error.Code != "" {
			typ = *e.Error.Code
		}
	}
	return wire.StatusError(a.cfg.Name, resp.StatusCode, typ, msg, wire.RetryAfter(resp.Header, a.cfg.Now()), reqID)
}

type usage struct {
	PromptTokens            int64              `json:"prompt_tokens"`
	CompletionTokens        int64              `json:"completion_tokens"`
	PromptTokensDetails     *promptDetails     `json:"prompt_tokens_details"`
	CompletionTokensDetails *completionDetails `json:"completion_tokens_details"`
}

type promptDetails struct {
	CachedTokens int64 `json:"cached_tokens"`
}

type completionDetails struct {
	ReasoningTokens int64 `json:"reasoning_tokens"`
}

// normalise turns OpenAI's usage into the gateway's; completion_tokens
// includes reasoning, prompt_tokens includes cached tokens.
func (u *usage) normalise() (llm.Usage, error) {
	var out llm.Usage
	if u.CompletionTokensDetails != nil {
		out.Reasoning = u.CompletionTokensDetails.ReasoningTokens
	}
	if u.PromptTokensDetails != nil {
		out.CacheRead = u.PromptTokensDetails.CachedTokens
	}
	out.Output = u.CompletionTokens - out.Reasoning
	out.Input = u.PromptTokens - out.CacheRead
	if out.Output < 0 || out.Input < 0 || out.Reasoning < 0 || out.CacheRead < 0 {
		return llm.Usage{}, fmt.Errorf("inconsistent usage: prompt %d (cached %d), completion %d (reasoning %d)",
			u.PromptTokens, out.CacheRead, u.CompletionTokens, out.Reasoning)
	}
	return out, nil
}

type completion struct {
	ID      string   `json:"id"`
	Model   string   `json:"model"`
	Choices []choice `json:"choices"`
	Usage   *usage   `json:"usage"`
}

type choice struct {
	Message struct {
		Content *string `json:"content"`
	} `json:"message"`
	FinishReason string `json:"finish_reason"`
}

// EstimatePromptTokens implements llm.PromptEstimator with OpenAI's rule of
// thumb: about 4 characters a token, and 4 tokens of framing a message.
func (a *Adapter) EstimatePromptTokens(req *llm.Request) int64 {
	return llm.EstimatePromptTokens(req, 4, 4)
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
	c, err := decodeCompletion(body)
	if err != nil {
		return nil, llm.Malformed(a.cfg.Name, resp.StatusCode, reqID, err)
	}
	if len(c.Choices) == 0 || c.Usage == nil || c.Choices[0].Message.Content == nil {
		return nil, llm.Malformed(a.cfg.Name, resp.StatusCode, reqID, errors.New("no choice, content or usage"))
	}
	u, err := c.Usage.normalise()
	if err != nil {
		return nil, llm.Malformed(a.cfg.Name, resp.StatusCode, reqID, err)
	}
	return &llm.Response{ID: c.ID, Model: c.Model, Content: *c.Choices[0].Message.Content,
		FinishReason: c.Choices[0].FinishReason, Usage: u, ProviderRequestID: reqID}, nil
}

// Stream implements llm.Provider.
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

	usage  llm.Usage
	final  bool // the usage chunk arrived
	finish string
	deltas int64
	done   bool
}

type chunk struct {
	Choices []chunkChoice `json:"choices"`
	Usage   *usage        `json:"usage"`
	Error   *chunkError   `json:"error"`
}

type chunkChoice struct {
	Delta struct {
		Content string `json:"content"`
	} `json:"delta"`
	FinishReason *string `json:"finish_reason"`
}

type chunkError struct {
	Message string `json:"message"`
	Type    string `json:"type"`
}

func (s *stream) Next() (llm.Chunk, error) {
	if s.done {
		return llm.Chunk{}, io.EOF
	}
	for {
		ev, err := s.events.Next()
		if errors.Is(err, io.EOF) && s.final && s.finish != "" {
			// The body ended cleanly after the finish reason and the usage:
			// some OpenAI-compatible servers never send [DONE]. Nothing was
			// cut, so it is a success.
			s.done = true
			return llm.Chunk{Final: true, FinishReason: s.finish, Usage: s.usage}, nil
		}
		if err != nil {
			return llm.Chunk{}, s.cut(err)
		}
		if string(ev.Data) == "[DONE]" {
			if !s.final {
				return llm.Chunk{}, llm.Malformed(s.a.cfg.Name, http.StatusOK, s.reqID, errors.New("stream ended without its usage chunk"))
			}
			s.done = true
			return llm.Chunk{Final: true, FinishReason: s.finish, Usage: s.usage}, nil
		}
		c, err := decodeChunk(ev.Data)
		if err != nil {
			return llm.Chunk{}, llm.Malformed(s.a.cfg.Name, http.StatusOK, s.reqID, err)
		}
		if c.Error != nil {
			return llm.Chunk{}, &llm.ProviderError{Provider: s.a.cfg.Name, Class: llm.ClassServer, Status: http.StatusOK,
				Type: c.Error.Type, Message: wire.Clip(c.Error.Message), RequestID: s.reqID}
		}
		if c.Usage != nil {
			u, err := c.Usage.normalise()
			if err != nil {
				return llm.Chunk{}, llm.Malformed(s.a.cfg.Name, http.StatusOK, s.reqID, err)
			}
			s.usage, s.final = u, true
		}
		if len(c.Choices) == 0 {
			continue
		}
		ch := c.Choices[0]
		if ch.FinishReason != nil && *ch.FinishReason != "" {
			s.finish = *ch.FinishReason
		}
		if ch.Delta.Content != "" {
			s.deltas++
			return llm.Chunk{Content: ch.Delta.Content}, nil
		}
	}
}

// cut is the error of a stream that ended before [DONE].
func (s *stream) cut(err error) error {
	if errors.Is(err, io.EOF) {
		err = errors.New("stream ended before [DONE]")
	}
	return llm.Transport(s.a.cfg.Name, fmt.Errorf("stream cut: %w", err))
}

// Usage returns the final usage once it arrived; before that, an estimate
// of one output token per content delta received (input unknown: 0).
func (s *stream) Usage() llm.Usage {
	if s.final {
		return s.usage
	}
	return llm.Usage{Output: s.deltas}
}

func (s *stream) ProviderRequestID() string { return s.reqID }
func (s *stream) Close() error              { return s.body.Close() }
