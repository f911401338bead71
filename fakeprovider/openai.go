package fakeprovider

import (
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/brownout-dev/brownout/internal/sse"
)

// openaiAPI speaks Chat Completions: POST /v1/chat/completions.
type openaiAPI struct{}

type openaiRequest struct {
	Model    *string `json:"model"`
	Messages *[]struct {
		Role    string          `json:"role"`
		Content json.RawMessage `json:"content"`
	} `json:"messages"`
	Stream        bool `json:"stream"`
	StreamOptions *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
	MaxTokens           *int `json:"max_tokens"`
	MaxCompletionTokens *int `json:"max_completion_tokens"`
}

func (openaiAPI) parse(r *http.Request, body []byte, apiKey string) (*request, *apiError) {
	if r.Method != http.MethodPost || r.URL.Path != "/v1/chat/completions" {
		return nil, &apiError{status: 404, kind: errNotFound, code: "unknown_url", msg: "Unknown request URL: " + r.Method + " " + r.URL.Path + "."}
	}
	auth := r.Header.Get("Authorization")
	key, ok := strings.CutPrefix(auth, "Bearer ")
	switch {
	case !ok || key == "":
		return nil, &apiError{status: 401, kind: errAuthentication,
			msg: "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."}
	case apiKey != "" && key != apiKey:
		return nil, &apiError{status: 401, kind: errAuthentication, code: "invalid_api_key",
			msg: "Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys."}
	}
	var in openaiRequest
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, &apiError{status: 400, kind: errInvalidRequest,
			msg: "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly.)"}
	}
	switch {
	case in.Model == nil || *in.Model == "":
		return nil, &apiError{status: 400, kind: errInvalidRequest, param: "model", code: "missing_required_parameter", msg: "Missing required parameter: 'model'."}
	case in.Messages == nil:
		return nil, &apiError{status: 400, kind: errInvalidRequest, param: "messages", code: "missing_required_parameter", msg: "Missing required parameter: 'messages'."}
	case len(*in.Messages) == 0:
		return nil, &apiError{status: 400, kind: errInvalidRequest, param: "messages", code: "empty_array", msg: "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead."}
	}
	req := &request{model: *in.Model, stream: in.Stream, reasoning: true}
	for i, m := range *in.Messages {
		switch m.Role {
		case "system", "developer", "user", "assistant", "tool":
		default:
			return nil, &apiError{status: 400, kind: errInvalidRequest, param: "messages[" + strconv.Itoa(i) + "].role",
				msg: "Invalid value: '" + m.Role + "'. Supported values are: 'system', 'assistant', 'user', 'function', 'tool', and 'developer'."}
		}
		text, err := contentText(m.Content)
		if err != nil {
			return nil, &apiError{status: 400, kind: errInvalidRequest, param: "messages[" + strconv.Itoa(i) + "].content", msg: "Invalid type for 'messages[" + strconv.Itoa(i) + "].content'."}
		}
		req.add(text)
	}
	for _, mt := range []*int{in.MaxCompletionTokens, in.MaxTokens} {
		if mt != nil {
			if *mt < 1 {
				return nil, &apiError{status: 400, kind: errInvalidRequest, param: "max_tokens", code: "integer_below_min_value", msg: "Invalid 'max_tokens': integer below minimum value."}
			}
			req.maxTokens = *mt
			break
		}
	}
	req.includeUsage = in.StreamOptions != nil && in.StreamOptions.IncludeUsage
	return req, nil
}

func (openaiAPI) ids(r *rand.Rand) (string, string) {
	return randID(r, "req_", 32), randID(r, "chatcmpl-", 29)
}

func (openaiAPI) billingID(*generation) string { return "" }

func (openaiAPI) headers(h http.Header, requestID string) {
	h.Set("x-request-id", requestID)
	h.Set("openai-processing-ms", "1")
}

// openaiReset renders a reset duration as OpenAI does: "1s", "6m0s", "120ms".
func openaiReset(d time.Duration) string {
	if d < time.Second {
		return strconv.FormatInt(d.Milliseconds(), 10) + "ms"
	}
	return d.Truncate(time.Millisecond).String()
}

func (openaiAPI) quotaHeaders(h http.Header, v quotaView, _ time.Time) {
	if v.hasRequests {
		h.Set("x-ratelimit-limit-requests", strconv.Itoa(v.rpm))
		h.Set("x-ratelimit-remaining-requests", strconv.Itoa(v.reqsLeft))
		h.Set("x-ratelimit-reset-requests", openaiReset(v.reqsReset))
	}
	if v.hasTokens {
		h.Set("x-ratelimit-limit-tokens", strconv.Itoa(v.tpm))
		h.Set("x-ratelimit-remaining-tokens", strconv.Itoa(v.toksLeft))
		h.Set("x-ratelimit-reset-tokens", openaiReset(v.toksReset))
	}
}

type openaiErr struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    *string `json:"code"`
}

func openaiErrorOf(e *apiError) openaiErr {
	out := openaiErr{Message: e.msg, Type: "invalid_request_error"}
	switch e.kind {
	case errRateLimit:
		out.Type = "requests"
	case errServer, errUnavailable, errOverloaded:
		out.Type = "server_error"
	}
	if e.param != "" {
		out.Param = &e.param
	}
	if e.code != "" {
		out.Code = &e.code
	}
	return out
}

func (openaiAPI) errorBody(e *apiError, _ string) []byte {
	return mustJSON(map[string]any{"error": openaiErrorOf(e)})
}

func (openaiAPI) errorEvent(e *apiError, _ string) []byte {
	return sse.AppendEvent(nil, "", mustJSON(map[string]any{"error": openaiErrorOf(e)}))
}

func (openaiAPI) defaultStreamErrorStatus() int { return 503 }

type openaiUsage struct {
	PromptTokens int `json:"prompt_tokens"`
	// CompletionTokens INCLUDES the reasoning tokens.
	CompletionTokens    int `json:"completion_tokens"`
	TotalTokens         int `json:"total_tokens"`
	PromptTokensDetails struct {
		CachedTokens int `json:"cached_tokens"`
		AudioTokens  int `json:"audio_tokens"`
	} `json:"prompt_tokens_details"`
	CompletionTokensDetails struct {
		ReasoningTokens          int `json:"reasoning_tokens"`
		AudioTokens              int `json:"audio_tokens"`
		AcceptedPredictionTokens int `json:"accepted_prediction_tokens"`
		RejectedPredictionTokens int `json:"rejected_prediction_tokens"`
	} `json:"completion_tokens_details"`
}

func openaiUsageOf(g *generation) openaiUsage {
	u := openaiUsage{PromptTokens: g.input, CompletionTokens: g.output + g.reasoning, TotalTokens: g.input + g.output + g.reasoning}
	u.PromptTokensDetails.CachedTokens = g.cacheRead
	u.CompletionTokensDetails.ReasoningTokens = g.reasoning
	return u
}

// bill is what OpenAI charges for a usage object: prompt_tokens less the
// cached ones at the input rate, cached_tokens at the cached-input rate,
// completion_tokens (which include the reasoning tokens) at the output rate.
func (openaiAPI) bill(p ListPrice, g *generation, reasoning, output int) charge {
	u := openaiUsage{PromptTokens: g.input, CompletionTokens: reasoning + output}
	u.PromptTokensDetails.CachedTokens = g.cacheRead
	r := p.at(u.PromptTokens)
	return charge{
		input:     perMillion(u.PromptTokens-u.PromptTokensDetails.CachedTokens, r.Input),
		cacheRead: perMillion(u.PromptTokensDetails.CachedTokens, r.CacheRead),
		output:    perMillion(u.CompletionTokens, r.Output),
	}
}

func openaiFinish(g *generation) string {
	if g.maxedOut {
		return "length"
	}
	return "stop"
}

func fingerprint(g *generation) string {
	return "fp_" + strings.ToLower(g.messageID[len(g.messageID)-10:])
}

func (openaiAPI) body(g *generation, _ *request) []byte {
	return mustJSON(map[string]any{
		"id":      g.messageID,
		"object":  "chat.completion",
		"created": g.created.Unix(),
		"model":   g.model,
		"choices": []any{map[string]any{
			"index":         0,
			"message":       map[string]any{"role": "assistant", "content": g.text(), "refusal": nil, "annotations": []any{}},
			"logprobs":      nil,
			"finish_reason": openaiFinish(g),
		}},
		"usage":              openaiUsageOf(g),
		"service_tier":       "default",
		"system_fingerprint": fingerprint(g),
	})
}

// events: a role chunk, one chunk per output token, a chunk with the finish
// reason, the usage chunk (empty choices) when include_usage was asked for,
// and [DONE]. Reasoning is not shown, but takes its time before the answer.
func (openaiAPI) events(g *generation, req *request) []sseEvent {
	p := newPacer(g)
	var evs []sseEvent
	chunk := func(choices []any, usage any) []byte {
		c := map[string]any{
			"id": g.messageID, "object": "chat.completion.chunk", "created": g.created.Unix(), "model": g.model,
			"service_tier": "default", "system_fingerprint": fingerprint(g), "choices": choices,
		}
		if req.includeUsage {
			c["usage"] = usage
		}
		return sse.AppendEvent(nil, "", mustJSON(c))
	}
	choice := func(delta map[string]any, finish any) []any {
		return []any{map[string]any{"index": 0, "delta": delta, "logprobs": nil, "finish_reason": finish}}
	}
	evs = append(evs, p.event(chunk(choice(map[string]any{"role": "assistant", "content": "", "refusal": nil}, nil), nil), g.reasoning, 0))
	for _, piece := range g.pieces {
		evs = append(evs, p.event(chunk(choice(map[string]any{"content": piece}, nil), nil), 0, 1))
	}
	evs = append(evs, p.event(chunk(choice(map[string]any{}, openaiFinish(g)), nil), 0, 0))
	if req.includeUsage {
		evs = append(evs, p.event(chunk([]any{}, openaiUsageOf(g)), 0, 0))
	}
	evs = append(evs, p.event(sse.AppendEvent(nil, "", []byte(sse.Done)), 0, 0))
	return evs
}
