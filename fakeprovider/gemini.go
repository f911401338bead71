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

// geminiAPI speaks the Gemini API: POST /v1beta/models/{model}:generateContent
// and :streamGenerateContent?alt=sse.
type geminiAPI struct{}

type geminiRequest struct {
	Contents []struct {
		Role  string `json:"role"`
		Parts []struct {
			Text string `json:"text"`
		} `json:"parts"`
	} `json:"contents"`
	SystemInstruction *struct {
		Parts []struct {
			Text string `json:"text"`
		} `json:"parts"`
	} `json:"systemInstruction"`
	GenerationConfig *struct {
		MaxOutputTokens *int `json:"maxOutputTokens"`
		ThinkingConfig  *struct {
			IncludeThoughts bool `json:"includeThoughts"`
			ThinkingBudget  *int `json:"thinkingBudget"`
		} `json:"thinkingConfig"`
	} `json:"generationConfig"`
}

func (geminiAPI) parse(r *http.Request, body []byte, apiKey string) (*request, *apiError) {
	rest, ok := strings.CutPrefix(r.URL.Path, "/v1beta/models/")
	model, method, ok2 := strings.Cut(rest, ":")
	if !ok || !ok2 || r.Method != http.MethodPost || (method != "generateContent" && method != "streamGenerateContent") {
		return nil, &apiError{status: 404, kind: errNotFound, msg: "The requested URL " + r.URL.Path + " was not found on this server."}
	}
	key := r.Header.Get("x-goog-api-key")
	if key == "" {
		key = r.URL.Query().Get("key")
	}
	switch {
	case key == "":
		return nil, &apiError{status: 403, kind: errPermission,
			msg: "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API."}
	case apiKey != "" && key != apiKey:
		return nil, badRequest("", "API key not valid. Please pass a valid API key.")
	}
	req := &request{model: model, stream: method == "streamGenerateContent", reasoning: true}
	if req.stream && r.URL.Query().Get("alt") != "sse" {
		return nil, badRequest("alt", "this fake streams only with alt=sse (server-sent events)")
	}
	var in geminiRequest
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, badRequest("", "Invalid JSON payload received. "+err.Error())
	}
	if len(in.Contents) == 0 {
		return nil, badRequest("contents", "* GenerateContentRequest.contents: contents is not specified")
	}
	for i, c := range in.Contents {
		if c.Role != "" && c.Role != "user" && c.Role != "model" {
			return nil, badRequest("contents", "Please use a valid role: user, model. (contents["+strconv.Itoa(i)+"])")
		}
		for _, p := range c.Parts {
			req.add(p.Text)
		}
	}
	if si := in.SystemInstruction; si != nil {
		for _, p := range si.Parts {
			req.add(p.Text)
		}
	}
	if gc := in.GenerationConfig; gc != nil {
		if gc.MaxOutputTokens != nil {
			if *gc.MaxOutputTokens < 1 {
				return nil, badRequest("generationConfig.maxOutputTokens", "* GenerateContentRequest.generation_config.max_output_tokens: must be positive")
			}
			req.maxTokens = *gc.MaxOutputTokens
		}
		if tc := gc.ThinkingConfig; tc != nil {
			req.showThinking = tc.IncludeThoughts
			if tc.ThinkingBudget != nil {
				switch b := *tc.ThinkingBudget; {
				case b == 0:
					req.reasoning = false
				case b > 0:
					req.thinkingBudget = b
				}
			}
		}
	}
	return req, nil
}

func (geminiAPI) ids(r *rand.Rand) (string, string) {
	id := randID(r, "", 22)
	return id, id
}

// billingID: Gemini's response id is the one the client sees (in the body).
func (geminiAPI) billingID(g *generation) string { return g.messageID }

func (geminiAPI) headers(h http.Header, _ string) {}

// quotaHeaders: the Gemini API sends no rate-limit headers; a quota shows
// only as 429 RESOURCE_EXHAUSTED with a RetryInfo.
func (geminiAPI) quotaHeaders(http.Header, quotaView, time.Time) {}

func geminiStatus(e *apiError) string {
	switch e.kind {
	case errAuthentication:
		return "UNAUTHENTICATED"
	case errPermission:
		return "PERMISSION_DENIED"
	case errNotFound:
		return "NOT_FOUND"
	case errRateLimit:
		return "RESOURCE_EXHAUSTED"
	case errUnavailable, errOverloaded:
		return "UNAVAILABLE"
	case errServer:
		if e.status == 504 {
			return "DEADLINE_EXCEEDED"
		}
		return "INTERNAL"
	}
	return "INVALID_ARGUMENT"
}

// geminiDuration renders a google.protobuf.Duration in its JSON form ("3s", "0.250s").
func geminiDuration(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', -1, 64) + "s"
}

func (geminiAPI) errorObject(e *apiError) map[string]any {
	obj := map[string]any{"code": e.status, "message": e.msg, "status": geminiStatus(e)}
	if e.kind == errRateLimit {
		obj["message"] = "You exceeded your current quota, please check your plan and billing details."
		obj["details"] = []any{
			map[string]any{"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": []any{
				map[string]any{"quotaMetric": "generativelanguage.googleapis.com/generate_content_requests", "quotaId": "GenerateRequestsPerMinutePerProjectPerModel"},
			}},
			map[string]any{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": geminiDuration(e.retryAfter)},
		}
	}
	return obj
}

func (a geminiAPI) errorBody(e *apiError, _ string) []byte {
	return mustJSON(map[string]any{"error": a.errorObject(e)})
}

func (a geminiAPI) errorEvent(e *apiError, _ string) []byte {
	return sse.AppendEvent(nil, "", mustJSON(map[string]any{"error": a.errorObject(e)}))
}

func (geminiAPI) defaultStreamErrorStatus() int { return 503 }

type geminiPart struct {
	Text    string `json:"text"`
	Thought bool   `json:"thought,omitempty"`
}

type geminiUsage struct {
	PromptTokenCount        int `json:"promptTokenCount"`
	CandidatesTokenCount    int `json:"candidatesTokenCount,omitempty"`
	TotalTokenCount         int `json:"totalTokenCount"`
	CachedContentTokenCount int `json:"cachedContentTokenCount,omitempty"`
	// ThoughtsTokenCount is NOT part of candidatesTokenCount.
	ThoughtsTokenCount  int              `json:"thoughtsTokenCount,omitempty"`
	PromptTokensDetails []map[string]any `json:"promptTokensDetails"`
}

func geminiUsageOf(g *generation, reasoning, output int) geminiUsage {
	return geminiUsage{
		PromptTokenCount:        g.input,
		CandidatesTokenCount:    output,
		ThoughtsTokenCount:      reasoning,
		CachedContentTokenCount: g.cacheRead,
		TotalTokenCount:         g.input + output + reasoning,
		PromptTokensDetails:     []map[string]any{{"modality": "TEXT", "tokenCount": g.input}},
	}
}

// bill is what Google charges for a usageMetadata: promptTokenCount less
// cachedContentTokenCount at the input rate, the cached tokens at the
// caching rate, candidatesTokenCount and thoughtsTokenCount (which is not
// part of the candidates) at the output rate.
func (geminiAPI) bill(p ListPrice, g *generation, reasoning, output int) charge {
	u := geminiUsageOf(g, reasoning, output)
	r := p.at(u.PromptTokenCount)
	return charge{
		input:     perMillion(u.PromptTokenCount-u.CachedContentTokenCount, r.Input),
		cacheRead: perMillion(u.CachedContentTokenCount, r.CacheRead),
		output:    perMillion(u.CandidatesTokenCount+u.ThoughtsTokenCount, r.Output),
	}
}

func geminiChunk(g *generation, parts []geminiPart, finish string, usage geminiUsage) map[string]any {
	cand := map[string]any{"content": map[string]any{"parts": parts, "role": "model"}, "index": 0}
	if finish != "" {
		cand["finishReason"] = finish
	}
	return map[string]any{
		"candidates":    []any{cand},
		"usageMetadata": usage,
		"modelVersion":  g.model,
		"responseId":    g.messageID,
	}
}

func geminiFinish(g *generation) string {
	if g.maxedOut {
		return "MAX_TOKENS"
	}
	return "STOP"
}

func (geminiAPI) body(g *generation, _ *request) []byte {
	var parts []geminiPart
	if len(g.thinking) > 0 {
		parts = append(parts, geminiPart{Text: joinPieces(g.thinking), Thought: true})
	}
	parts = append(parts, geminiPart{Text: g.text()})
	return mustJSON(geminiChunk(g, parts, geminiFinish(g), geminiUsageOf(g, g.reasoning, g.output)))
}

// events: one chunk per thought piece (when shown), then one per output
// token; each carries the usage so far, the last one the final usage and
// the finish reason. The stream ends at EOF, with no terminal marker.
func (geminiAPI) events(g *generation, _ *request) []sseEvent {
	p := newPacer(g)
	var evs []sseEvent
	add := func(parts []geminiPart, finish string, reasoning, output int) {
		usage := geminiUsageOf(g, p.reasoning+reasoning, p.output+output)
		evs = append(evs, p.event(sse.AppendEvent(nil, "", mustJSON(geminiChunk(g, parts, finish, usage))), reasoning, output))
	}
	if len(g.thinking) > 0 {
		for i, piece := range g.thinking {
			add([]geminiPart{{Text: piece, Thought: true}}, "", spread(g.reasoning, len(g.thinking), i), 0)
		}
	} else if g.reasoning > 0 {
		p.pending += g.ttft + time.Duration(g.reasoning)*g.perToken
		p.first = false
		p.reasoning = g.reasoning
	}
	for i, piece := range g.pieces {
		finish := ""
		if i == len(g.pieces)-1 {
			finish = geminiFinish(g)
		}
		add([]geminiPart{{Text: piece}}, finish, 0, 1)
	}
	if len(g.pieces) == 0 {
		add([]geminiPart{{Text: ""}}, geminiFinish(g), 0, 0)
	}
	return evs
}
