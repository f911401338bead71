package fakeprovider

import (
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/brownout-dev/brownout/internal/sse"
)

// anthropicAPI speaks the Messages API: POST /v1/messages.
type anthropicAPI struct{}

type anthropicRequest struct {
	Model     *string `json:"model"`
	MaxTokens *int    `json:"max_tokens"`
	Messages  []struct {
		Role    string          `json:"role"`
		Content json.RawMessage `json:"content"`
	} `json:"messages"`
	System   json.RawMessage `json:"system"`
	Stream   bool            `json:"stream"`
	Thinking *struct {
		Type         string `json:"type"`
		BudgetTokens int    `json:"budget_tokens"`
	} `json:"thinking"`
}

func (anthropicAPI) parse(r *http.Request, body []byte, apiKey string) (*request, *apiError) {
	if r.Method != http.MethodPost || r.URL.Path != "/v1/messages" {
		return nil, &apiError{status: 404, kind: errNotFound, msg: "Not Found: " + r.Method + " " + r.URL.Path}
	}
	// The API takes the key in x-api-key, or as a bearer token (the SDK's
	// WithAPIKey sends the latter).
	key := r.Header.Get("x-api-key")
	if key == "" {
		key, _ = strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	}
	switch {
	case key == "":
		return nil, &apiError{status: 401, kind: errAuthentication, msg: "x-api-key header is required"}
	case apiKey != "" && key != apiKey:
		return nil, &apiError{status: 401, kind: errAuthentication, msg: "invalid x-api-key"}
	case r.Header.Get("anthropic-version") == "":
		return nil, badRequest("", "anthropic-version: header is required")
	}
	var in anthropicRequest
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, badRequest("", "There was an error parsing the body of your request: "+err.Error())
	}
	switch {
	case in.Model == nil || *in.Model == "":
		return nil, badRequest("model", "model: Field required")
	case in.MaxTokens == nil:
		return nil, badRequest("max_tokens", "max_tokens: Field required")
	case *in.MaxTokens < 1:
		return nil, badRequest("max_tokens", "max_tokens: Input should be greater than or equal to 1")
	case len(in.Messages) == 0:
		return nil, badRequest("messages", "messages: at least one message is required")
	}
	req := &request{model: *in.Model, maxTokens: *in.MaxTokens, stream: in.Stream}
	system, err := contentText(in.System)
	if err != nil {
		return nil, badRequest("system", "system: "+err.Error())
	}
	req.add(system)
	for i, m := range in.Messages {
		if m.Role != "user" && m.Role != "assistant" {
			return nil, badRequest("messages", "messages."+strconv.Itoa(i)+".role: Input should be 'user' or 'assistant'")
		}
		text, err := contentText(m.Content)
		if err != nil || len(m.Content) == 0 {
			return nil, badRequest("messages", "messages."+strconv.Itoa(i)+".content: Field required")
		}
		req.add(text)
		if i == len(in.Messages)-1 && m.Role == "assistant" {
			req.prefill = text // the answer continues it
		}
	}
	if t := in.Thinking; t != nil && t.Type == "enabled" {
		if t.BudgetTokens < 1024 || t.BudgetTokens >= req.maxTokens {
			return nil, badRequest("thinking.budget_tokens", "thinking.enabled.budget_tokens: must be at least 1024 and less than max_tokens")
		}
		req.reasoning, req.showThinking, req.thinkingBudget = true, true, t.BudgetTokens
	}
	return req, nil
}

// contentText returns the text of content: a string, or a list of blocks
// whose text fields count.
func contentText(raw json.RawMessage) (string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s, nil
	}
	var blocks []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	if err := json.Unmarshal(raw, &blocks); err != nil {
		return "", err
	}
	var b strings.Builder
	for _, bl := range blocks {
		b.WriteString(bl.Text)
	}
	return b.String(), nil
}

// add counts text into the request's prompt.
func (r *request) add(text string) {
	r.inputChars += utf8.RuneCountInString(text)
	r.text += text + "\n"
}

func (anthropicAPI) ids(r *rand.Rand) (string, string) {
	return randID(r, "req_", 24), randID(r, "msg_", 24)
}

func (anthropicAPI) billingID(*generation) string { return "" }

func (anthropicAPI) headers(h http.Header, requestID string) {
	h.Set("request-id", requestID)
}

func (anthropicAPI) quotaHeaders(h http.Header, v quotaView, now time.Time) {
	if v.hasRequests {
		h.Set("anthropic-ratelimit-requests-limit", strconv.Itoa(v.rpm))
		h.Set("anthropic-ratelimit-requests-remaining", strconv.Itoa(v.reqsLeft))
		h.Set("anthropic-ratelimit-requests-reset", now.Add(v.reqsReset).UTC().Format(time.RFC3339))
	}
	if v.hasTokens {
		h.Set("anthropic-ratelimit-tokens-limit", strconv.Itoa(v.tpm))
		h.Set("anthropic-ratelimit-tokens-remaining", strconv.Itoa(v.toksLeft))
		h.Set("anthropic-ratelimit-tokens-reset", now.Add(v.toksReset).UTC().Format(time.RFC3339))
	}
}

func anthropicErrorType(e *apiError) string {
	switch e.kind {
	case errAuthentication:
		return "authentication_error"
	case errPermission:
		return "permission_error"
	case errNotFound:
		return "not_found_error"
	case errRateLimit:
		return "rate_limit_error"
	case errOverloaded, errUnavailable:
		return "overloaded_error"
	case errServer:
		return "api_error"
	}
	if e.status == 413 {
		return "request_too_large"
	}
	return "invalid_request_error"
}

type anthropicErr struct {
	Type    string `json:"type"`
	Message string `json:"message"`
}

func (anthropicAPI) errorBody(e *apiError, requestID string) []byte {
	return mustJSON(struct {
		Type      string       `json:"type"`
		Error     anthropicErr `json:"error"`
		RequestID string       `json:"request_id"`
	}{"error", anthropicErr{anthropicErrorType(e), e.msg}, requestID})
}

func (anthropicAPI) errorEvent(e *apiError, _ string) []byte {
	return sse.AppendEvent(nil, "error", mustJSON(struct {
		Type  string       `json:"type"`
		Error anthropicErr `json:"error"`
	}{"error", anthropicErr{anthropicErrorType(e), e.msg}}))
}

func (anthropicAPI) defaultStreamErrorStatus() int { return 529 }

type anthropicUsage struct {
	InputTokens              int `json:"input_tokens"`
	CacheCreationInputTokens int `json:"cache_creation_input_tokens"`
	CacheReadInputTokens     int `json:"cache_read_input_tokens"`
	// OutputTokens includes the thinking tokens, as the API bills them.
	OutputTokens        int `json:"output_tokens"`
	OutputTokensDetails struct {
		ThinkingTokens int `json:"thinking_tokens"`
	} `json:"output_tokens_details"`
	ServiceTier string `json:"service_tier"`
}

func anthropicUsageOf(g *generation, reasoning, output int) anthropicUsage {
	u := anthropicUsage{
		// input_tokens excludes the tokens read from the cache.
		InputTokens:          g.input - g.cacheRead,
		CacheReadInputTokens: g.cacheRead,
		OutputTokens:         reasoning + output,
		ServiceTier:          "standard",
	}
	u.OutputTokensDetails.ThinkingTokens = reasoning
	return u
}

// bill is what Anthropic charges for a usage object: input_tokens (which
// exclude the cache) at the input rate, cache_read_input_tokens and
// cache_creation_input_tokens at theirs, output_tokens (which include the
// thinking) at the output rate.
func (anthropicAPI) bill(p ListPrice, g *generation, reasoning, output int) charge {
	u := anthropicUsageOf(g, reasoning, output)
	r := p.at(u.InputTokens + u.CacheReadInputTokens + u.CacheCreationInputTokens)
	return charge{
		input:      perMillion(u.InputTokens, r.Input),
		cacheRead:  perMillion(u.CacheReadInputTokens, r.CacheRead),
		cacheWrite: perMillion(u.CacheCreationInputTokens, r.CacheWrite),
		output:     perMillion(u.OutputTokens, r.Output),
	}
}

type anthropicBlock struct {
	Type      string  `json:"type"`
	Text      *string `json:"text,omitempty"`
	Thinking  *string `json:"thinking,omitempty"`
	Signature *string `json:"signature,omitempty"`
}

func (anthropicAPI) stopReason(g *generation) string {
	if g.maxedOut {
		return "max_tokens"
	}
	return "end_turn"
}

func signature(g *generation) string {
	return "EqQBCkYIBxgCKkD" + g.messageID[4:] + "=="
}

func (a anthropicAPI) body(g *generation, _ *request) []byte {
	var content []anthropicBlock
	if len(g.thinking) > 0 {
		th, sig := joinPieces(g.thinking), signature(g)
		content = append(content, anthropicBlock{Type: "thinking", Thinking: &th, Signature: &sig})
	}
	text := g.text()
	content = append(content, anthropicBlock{Type: "text", Text: &text})
	return mustJSON(map[string]any{
		"id":            g.messageID,
		"type":          "message",
		"role":          "assistant",
		"model":         g.model,
		"content":       content,
		"stop_reason":   a.stopReason(g),
		"stop_sequence": nil,
		"usage":         anthropicUsageOf(g, g.reasoning, g.output),
	})
}

func (a anthropicAPI) events(g *generation, _ *request) []sseEvent {
	p := newPacer(g)
	var evs []sseEvent
	add := func(name string, v any, reasoning, output int) {
		evs = append(evs, p.event(sse.AppendEvent(nil, name, mustJSON(v)), reasoning, output))
	}
	type m = map[string]any
	start := anthropicUsageOf(g, 0, 0)
	start.OutputTokens = 1 // the API reports a running count starting at 1
	add("message_start", m{"type": "message_start", "message": m{
		"id": g.messageID, "type": "message", "role": "assistant", "model": g.model,
		"content": []any{}, "stop_reason": nil, "stop_sequence": nil, "usage": start,
	}}, 0, 0)
	index := 0
	if len(g.thinking) > 0 {
		add("content_block_start", m{"type": "content_block_start", "index": index,
			"content_block": m{"type": "thinking", "thinking": "", "signature": ""}}, 0, 0)
		for i, piece := range g.thinking {
			add("content_block_delta", m{"type": "content_block_delta", "index": index,
				"delta": m{"type": "thinking_delta", "thinking": piece}}, spread(g.reasoning, len(g.thinking), i), 0)
		}
		add("content_block_delta", m{"type": "content_block_delta", "index": index,
			"delta": m{"type": "signature_delta", "signature": signature(g)}}, 0, 0)
		add("content_block_stop", m{"type": "content_block_stop", "index": index}, 0, 0)
		index++
	} else if g.reasoning > 0 {
		// Thinking the client did not ask to see still takes its time.
		p.pending += time.Duration(g.reasoning) * g.perToken
		p.reasoning += g.reasoning
	}
	add("content_block_start", m{"type": "content_block_start", "index": index,
		"content_block": m{"type": "text", "text": ""}}, 0, 0)
	add("ping", m{"type": "ping"}, 0, 0)
	for _, piece := range g.pieces {
		add("content_block_delta", m{"type": "content_block_delta", "index": index,
			"delta": m{"type": "text_delta", "text": piece}}, 0, 1)
	}
	add("content_block_stop", m{"type": "content_block_stop", "index": index}, 0, 0)
	add("message_delta", m{"type": "message_delta",
		"delta": m{"stop_reason": a.stopReason(g), "stop_sequence": nil},
		"usage": anthropicUsageOf(g, g.reasoning, g.output)}, 0, 0)
	add("message_stop", m{"type": "message_stop"}, 0, 0)
	return evs
}

func joinPieces(p []string) string {
	n := 0
	for _, s := range p {
		n += len(s)
	}
	b := make([]byte, 0, n)
	for _, s := range p {
		b = append(b, s...)
	}
	return string(b)
}
