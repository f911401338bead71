// Package gemini is the gateway's adapter for the Gemini API
// (POST {base}/v1beta/models/{model}:generateContent, and
// :streamGenerateContent?alt=sse), plain and streamed.
//
// Usage: candidatesTokenCount excludes thoughtsTokenCount, so Output =
// candidates and Reasoning = thoughts; promptTokenCount includes
// cachedContentTokenCount, so Input = prompt - cached. A 429 carries its
// wait in a google.rpc.RetryInfo detail (retryDelay), which becomes the
// error's RetryAfter.
package gemini

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/brownout-dev/brownout/gateway/llm"
	"github.com/brownout-dev/brownout/gateway/providers/internal/wire"
	"github.com/brownout-dev/brownout/internal/sse"
)

// Config configures an Adapter.
type Config struct {
	Name    string // the provider's name in the gateway config
	BaseURL string // default https://generativelanguage.googleapis.com
	APIKey  string // sent in x-goog-api-key; never logged
	Client  *http.Client
	Now     func() time.Time
}

// Adapter calls the Gemini API. It is safe for concurrent use.
type Adapter struct {
	cfg  Config
	base string
}

var _ llm.Provider = (*Adapter)(nil)

// New returns an Adapter.
func New(cfg Config) *Adapter {
	wire.Defaults(&cfg.Name, &cfg.BaseURL, &cfg.Client, &cfg.Now, "gemini", "https://generativelanguage.googleapis.com")
	return &Adapter{cfg: cfg, base: strings.TrimSuffix(cfg.BaseURL, "/") + "/v1beta/models/"}
}

type part struct {
	Text    string `json:"text"`
	Thought bool   `json:"thought,omitempty"`
}

type content struct {
	Role  string `json:"role,omitempty"`
	Parts []part `json:"parts"`
}

type generationConfig struct {
	MaxOutputTokens int      `json:"maxOutputTokens,omitempty"`
	Temperature     *float64 `json:"temperature,omitempty"`
	StopSequences   []string `json:"stopSequences,omitempty"`
}

type generateRequest struct {
	Contents          []content         `json:"contents"`
	SystemInstruction *content          `json:"systemInstruction,omitempty"`
	GenerationConfig  *generationConfig `json:"generationConfig,omitempty"`
}

func body(req *llm.Request) generateRequest {
	var b generateRequest
	var system []part
	for _, m := range req.Messages {
		switch m.Role {
		case "system", "developer":
			system = append(system, part{Text: m.Content})
		case "assistant":
			b.Contents = append(b.Contents, content{Role: "model", Parts: []part{{Text: m.Content}}})
		default:
			b.Contents = append(b.Contents, content{Role: "user", Parts: []part{{Text: m.Content}}})
		}
	}
	if len(system) > 0 {
		b.SystemInstruction = &content{Parts: system}
	}
	if req.MaxTokens > 0 || req.Temperature != nil || len(req.Stop) > 0 {
		b.GenerationConfig = &generationConfig{MaxOutputTokens: req.MaxTokens, Temperature: req.Temperature, StopSequences: req.Stop}
	}
	return b
}

func (a *Adapter) post(ctx context.Context, req *llm.Request, stream bool) (*http.Response, error) {
	u := a.base + url.PathEscape(req.Model) + ":generateContent"
	if stream {
		u = a.base + url.PathEscape(req.Model) + ":streamGenerateContent?alt=sse"
	}
	b := body(req)
	resp, err := wire.PostJSON(ctx, a.cfg.Client, a.cfg.Name, u, wire.Header("x-goog-api-key", a.cfg.APIKey), appendRequest(make([]byte, 0, 512), &b))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		var e errorEnvelope
		_ = json.Unmarshal(raw, &e)
		return nil, a.apiError(resp.StatusCode, resp.Header, e.Error)
	}
	return resp, nil
}

type errorEnvelope struct {
	Error *apiError `json:"error"`
}

type apiError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Status  string `json:"status"`
	Details []struct {
		Type       string `json:"@type"`
		RetryDelay string `json:"retryDelay"`
	} `json:"details"`
}

// apiError turns an error object into a ProviderError; status is the HTTP
// status (200 for an error inside a stream).
func (a *Adapter) apiError(status int, h http.Header, e *apiError) error {
	if e == nil {
		return wire.StatusError(a.cfg.Name, status, "", http.StatusText(status), wire.RetryAfter(h, a.cfg.Now()), "")
	}
	retry := wire.RetryAfter(h, a.cfg.Now())
	for _, d := range e.Details {
		if strings.HasSuffix(d.Type, "google.rpc.RetryInfo") {
			if dur, err := time.ParseDuration(d.RetryDelay); err == nil && dur > 0 {
				retry = dur
			}
		}
	}
	classStatus := status
	if status == http.StatusOK && e.Code != 0 {
		classStatus = e.Code
	}
	pe := wire.StatusError(a.cfg.Name, classStatus, e.Status, e.Message, retry, "")
	pe.Status = status
	return pe
}

type usageMetadata struct {
	PromptTokenCount        *int64 `json:"promptTokenCount"`
	CandidatesTokenCount    int64  `json:"candidatesTokenCount"`
	ThoughtsTokenCount      int64  `json:"thoughtsTokenCount"`
	CachedContentTokenCount int64  `json:"cachedContentTokenCount"`
}

// normalise: thoughts are not inside candidates; cached tokens are inside prompt.
func (u *usageMetadata) normalise() (llm.Usage, error) {
	if u.PromptTokenCount == nil {
		return llm.Usage{}, errors.New("usageMetadata without promptTokenCount")
	}
	out := llm.Usage{Input: *u.PromptTokenCount - u.CachedContentTokenCount, Output: u.CandidatesTokenCount,
		Reasoning: u.ThoughtsTokenCount, CacheRead: u.CachedContentTokenCount}
	if out.Input < 0 || out.Output < 0 || out.Reasoning < 0 || out.CacheRead < 0 {
		return llm.Usage{}, fmt.Errorf("inconsistent usage: prompt %d, cached %d", *u.PromptTokenCount, u.CachedContentTokenCount)
	}
	return out, nil
}

type generateResponse struct {
	Candidates    []candidate    `json:"candidates"`
	UsageMetadata *usageMetadata `json:"usageMetadata"`
	ModelVersion  string         `json:"modelVersion"`
	ResponseID    string         `json:"responseId"`
	Error         *apiError      `json:"error"`
}

type candidate struct {
	Content      *content `json:"content"`
	FinishReason string   `json:"finishReason"`
}

func (r *generateResponse) text() string {
	var b strings.Builder
	if len(r.Candidates) > 0 && r.Candidates[0].Content != nil {
		for _, p := range r.Candidates[0].Content.Parts {
			if !p.Thought {
				b.WriteString(p.Text)
			}
		}
	}
	return b.String()
}

func (r *generateResponse) finish() string {
	if len(r.Candidates) == 0 {
		return ""
	}
	switch f := r.Candidates[0].FinishReason; f {
	case "STOP":
		return "stop"
	case "MAX_TOKENS":
		return "length"
	case "SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT":
		return "content_filter"
	default:
		return strings.ToLower(f)
	}
}

// EstimatePromptTokens implements llm.PromptEstimator with Google's rule
// of thumb: about 4 characters a token, and no framing counted.
func (a *Adapter) EstimatePromptTokens(req *llm.Request) int64 {
	return llm.EstimatePromptTokens(req, 4, 0)
}

// Complete implements llm.Provider.
func (a *Adapter) Complete(ctx context.Context, req *llm.Request) (*llm.Response, error) {
	resp, err := a.post(ctx, req, false)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, err := wire.ReadBody(a.cfg.Name, resp, "")
	if err != nil {
		return nil, err
	}
	r, err := decodeResponse(raw)
	if err != nil {
		return nil, llm.Malformed(a.cfg.Name, resp.StatusCode, "", err)
	}
	if r.UsageMetadata == nil || len(r.Candidates) == 0 {
		return nil, llm.Malformed(a.cfg.Name, resp.StatusCode, r.ResponseID, errors.New("no candidates or usageMetadata"))
	}
	u, err := r.UsageMetadata.normalise()
	if err != nil {
		return nil, llm.Malformed(a.cfg.Name, resp.StatusCode, r.ResponseID, err)
	}
	return &llm.Response{ID: r.ResponseID, Model: r.ModelVersion, Content: r.text(), FinishReason: r.finish(),
		Usage: u, ProviderRequestID: r.ResponseID}, nil
}

// Stream implements llm.Provider.
func (a *Adapter) Stream(ctx context.Context, req *llm.Request) (llm.Stream, error) {
	resp, err := a.post(ctx, req, true)
	if err != nil {
		return nil, err
	}
	return &stream{a: a, body: resp.Body, events: sse.NewReader(resp.Body)}, nil
}

// stream reads chunks until one carries a finishReason; the stream then
// ends at EOF (Gemini sends no terminal marker). EOF before a finishReason
// is a cut stream.
type stream struct {
	a      *Adapter
	body   io.ReadCloser
	events *sse.Reader
	reqID  string

	usage    llm.Usage
	finished string
	done     bool
}

func (s *stream) Next() (llm.Chunk, error) {
	if s.done {
		return llm.Chunk{}, io.EOF
	}
	for {
		if s.finished != "" {
			// The finish chunk came; the stream must now end.
			if _, err := s.events.Next(); !errors.Is(err, io.EOF) {
				if err == nil {
					err = errors.New("data after the finishing chunk")
				}
				return llm.Chunk{}, llm.Malformed(s.a.cfg.Name, http.StatusOK, s.reqID, err)
			}
			s.done = true
			return llm.Chunk{Final: true, FinishReason: s.finished, Usage: s.usage}, nil
		}
		ev, err := s.events.Next()
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = errors.New("stream ended before a finishReason")
			}
			return llm.Chunk{}, llm.Transport(s.a.cfg.Name, fmt.Errorf("stream cut: %w", err))
		}
		r, err := decodeResponse(ev.Data)
		if err != nil {
			return llm.Chunk{}, llm.Malformed(s.a.cfg.Name, http.StatusOK, s.reqID, err)
		}
		if r.Error != nil {
			return llm.Chunk{}, s.a.apiError(http.StatusOK, nil, r.Error)
		}
		if r.ResponseID != "" {
			s.reqID = r.ResponseID
		}
		if r.UsageMetadata != nil {
			u, err := r.UsageMetadata.normalise()
			if err != nil {
				return llm.Chunk{}, llm.Malformed(s.a.cfg.Name, http.StatusOK, s.reqID, err)
			}
			s.usage = u // cumulative: the latest chunk's counts replace the earlier ones
		}
		s.finished = r.finish()
		if text := r.text(); text != "" {
			return llm.Chunk{Content: text}, nil
		}
	}
}

// Usage returns the latest cumulative usage the stream carried.
func (s *stream) Usage() llm.Usage          { return s.usage }
func (s *stream) ProviderRequestID() string { return s.reqID }
func (s *stream) Close() error              { return s.body.Close() }
