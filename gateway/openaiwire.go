package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/brownout-dev/brownout/gateway/llm"
	"github.com/brownout-dev/brownout/internal/jsonscan"
	"github.com/brownout-dev/brownout/internal/sse"
)

// The OpenAI Chat Completions wire format of the gateway's front, in one
// file: the request it decodes, the answers and stream chunks it encodes,
// and the error envelope.

// chatRequest is the part of an OpenAI Chat Completions request the
// gateway understands. Other fields are accepted and ignored, as the SDKs
// send many optional ones.
type chatRequest struct {
	Model    string            `json:"model"`
	Messages []json.RawMessage `json:"messages"`
	chatParams
}

// chatParams are a chat request's fields besides its model and messages.
type chatParams struct {
	MaxTokens           *int            `json:"max_tokens"`
	MaxCompletionTokens *int            `json:"max_completion_tokens"`
	Temperature         *float64        `json:"temperature"`
	Stop                json.RawMessage `json:"stop"`
	Stream              bool            `json:"stream"`
	StreamOptions       *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
}

// clientError is a bad request from the client: a 4xx in the OpenAI envelope.
type clientError struct {
	status int
	param  string
	code   string
	msg    string
}

func (e *clientError) Error() string { return e.msg }

func badParam(param, format string, args ...any) *clientError {
	return &clientError{status: 400, param: param, code: "invalid_request_error", msg: fmt.Sprintf(format, args...)}
}

// plain reads the common request, every message's content a string, with
// a jsonscan.Scanner: no reflection, which on a request that finds the
// caches cold costs a fraction of a reflection decoder's time
// (BenchmarkDecodeCodecsCold). ok is false for any body it does not take
// whole; the full path then gives the error, or the parts.
// FuzzPlainPathAgreesWithFullPath holds the two to one meaning.
func plain(body []byte) (in *chatRequest, msgs []llm.Message, ok bool) {
	in = new(chatRequest)
	s := jsonscan.NewScanner(body)
	for s.Field() {
		switch s.Name() {
		case "model":
			s.Once(0)
			in.Model = s.String()
		case "messages":
			s.Once(1)
			if !s.Array() {
				return nil, nil, false
			}
			for s.Elem() {
				m, ok := plainMessage(&s)
				if !ok {
					return nil, nil, false
				}
				msgs = append(msgs, m)
			}
		case "max_tokens":
			s.Once(2)
			in.MaxTokens = scanInt(&s)
		case "max_completion_tokens":
			s.Once(3)
			in.MaxCompletionTokens = scanInt(&s)
		case "temperature":
			s.Once(4)
			if !s.Null() {
				t := s.Float()
				in.Temperature = &t
			}
		case "stop":
			s.Once(5)
			in.Stop = s.Raw()
		case "stream":
			s.Once(6)
			in.Stream = s.Bool()
		case "stream_options":
			s.Once(7)
			if s.Object() {
				in.StreamOptions = &struct {
					IncludeUsage bool `json:"include_usage"`
				}{}
				for s.Field() {
					if s.Name() != "include_usage" {
						s.Skip("include_usage")
						continue
					}
					s.Once(0)
					in.StreamOptions.IncludeUsage = s.Bool()
				}
			}
		default:
			s.Skip("model", "messages", "max_tokens", "max_completion_tokens", "temperature", "stop", "stream", "stream_options")
		}
	}
	if s.End() != nil || in.Model == "" || len(msgs) == 0 {
		return nil, nil, false
	}
	return in, msgs, true
}

// plainMessage reads one message of the common request, its role one
// the gateway takes and its content a string.
func plainMessage(s *jsonscan.Scanner) (m llm.Message, ok bool) {
	if !s.Object() {
		return m, false
	}
	content := false
	for s.Field() {
		switch s.Name() {
		case "role":
			s.Once(0)
			m.Role = s.String()
		case "content":
			s.Once(1)
			if s.Null() {
				return m, false
			}
			m.Content, content = s.String(), true
		default:
			s.Skip("role", "content")
		}
	}
	switch m.Role {
	case "system", "developer", "user", "assistant":
		return m, content
	}
	return m, false
}

// scanInt reads an integer or null for a *int field.
func scanInt(s *jsonscan.Scanner) *int {
	if s.Null() {
		return nil
	}
	n := s.Int()
	if int64(int(n)) != n {
		s.Decline()
	}
	i := int(n)
	return &i
}

// decodeChat parses and validates a request body into the canonical form.
func decodeChat(body []byte) (*chatRequest, llm.Request, error) {
	if in, msgs, ok := plain(body); ok {
		return checkChat(in, llm.Request{Temperature: in.Temperature, Messages: msgs})
	}
	return decodeChatFully(body)
}

// decodeChatFully is decodeChat's full path: every form of message, and
// the error that says what is wrong.
func decodeChatFully(body []byte) (*chatRequest, llm.Request, error) {
	var in chatRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&in); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return nil, llm.Request{}, badParam(te.Field, "Invalid type for '%s': expected %s, got %s.", te.Field, te.Type, te.Value)
		}
		return nil, llm.Request{}, badParam("", "We could not parse the JSON body of your request: %v", err)
	}
	if dec.More() {
		return nil, llm.Request{}, badParam("", "The request body has data after its JSON object.")
	}
	if in.Model == "" {
		return nil, llm.Request{}, badParam("model", "Missing required parameter: 'model'.")
	}
	if len(in.Messages) == 0 {
		return nil, llm.Request{}, badParam("messages", "Missing required parameter: 'messages' (at least one message).")
	}
	out := llm.Request{Temperature: in.Temperature}
	for i, raw := range in.Messages {
		m, err := decodeMessage(raw)
		if err != nil {
			return nil, llm.Request{}, badParam(fmt.Sprintf("messages[%d]", i), "Invalid 'messages[%d]': %v", i, err)
		}
		out.Messages = append(out.Messages, m)
	}
	return checkChat(&in, out)
}

// checkChat checks and copies the request's parameters after its messages.
func checkChat(in *chatRequest, out llm.Request) (*chatRequest, llm.Request, error) {
	for _, mt := range []struct {
		name string
		v    *int
	}{{"max_completion_tokens", in.MaxCompletionTokens}, {"max_tokens", in.MaxTokens}} {
		if mt.v == nil {
			continue
		}
		if *mt.v < 1 {
			return nil, llm.Request{}, badParam(mt.name, "Invalid '%s': must be at least 1, got %d.", mt.name, *mt.v)
		}
		out.MaxTokens = *mt.v
		break
	}
	if t := in.Temperature; t != nil && (*t < 0 || *t > 2) {
		return nil, llm.Request{}, badParam("temperature", "Invalid 'temperature': must be between 0 and 2, got %v.", *t)
	}
	if len(in.Stop) > 0 && string(in.Stop) != "null" {
		var one string
		if json.Unmarshal(in.Stop, &one) == nil {
			out.Stop = []string{one}
		} else if err := json.Unmarshal(in.Stop, &out.Stop); err != nil || len(out.Stop) > 4 {
			return nil, llm.Request{}, badParam("stop", "Invalid 'stop': a string or an array of up to 4 strings.")
		}
	}
	return in, out, nil
}

// decodeMessage accepts content as a string or as an array of text parts.
func decodeMessage(raw json.RawMessage) (llm.Message, error) {
	var m struct {
		Role    string          `json:"role"`
		Content json.RawMessage `json:"content"`
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		return llm.Message{}, fmt.Errorf("not a message object")
	}
	switch m.Role {
	case "system", "developer", "user", "assistant":
	case "":
		return llm.Message{}, fmt.Errorf("missing 'role'")
	default:
		return llm.Message{}, fmt.Errorf("unsupported role %q (want system, developer, user or assistant)", clipStr(m.Role, 32))
	}
	if len(m.Content) == 0 || string(m.Content) == "null" {
		return llm.Message{}, fmt.Errorf("missing 'content'")
	}
	var s string
	if json.Unmarshal(m.Content, &s) == nil {
		return llm.Message{Role: m.Role, Content: s}, nil
	}
	var parts []struct {
		Type string  `json:"type"`
		Text *string `json:"text"`
	}
	if err := json.Unmarshal(m.Content, &parts); err != nil {
		return llm.Message{}, fmt.Errorf("'content' must be a string or an array of text parts")
	}
	var b strings.Builder
	for j, p := range parts {
		if p.Type != "text" || p.Text == nil {
			return llm.Message{}, fmt.Errorf("content part %d: only text parts are supported", j)
		}
		b.WriteString(*p.Text)
	}
	return llm.Message{Role: m.Role, Content: b.String()}, nil
}

func clipStr(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// chatUsage is OpenAI's usage object: prompt_tokens includes cached
// tokens, completion_tokens includes reasoning.
type chatUsage struct {
	PromptTokens        int64 `json:"prompt_tokens"`
	CompletionTokens    int64 `json:"completion_tokens"`
	TotalTokens         int64 `json:"total_tokens"`
	PromptTokensDetails struct {
		CachedTokens int64 `json:"cached_tokens"`
	} `json:"prompt_tokens_details"`
	CompletionTokensDetails struct {
		ReasoningTokens int64 `json:"reasoning_tokens"`
	} `json:"completion_tokens_details"`
}

func openaiUsage(u llm.Usage) *chatUsage {
	var c chatUsage
	c.PromptTokens = u.Prompt()
	c.CompletionTokens = u.Output + u.Reasoning
	c.TotalTokens = c.PromptTokens + c.CompletionTokens
	c.PromptTokensDetails.CachedTokens = u.CacheRead
	c.CompletionTokensDetails.ReasoningTokens = u.Reasoning
	return &c
}

// chatCompletion is the non-streamed answer; structs, not maps, because
// this is the hot path.
type chatCompletion struct {
	ID      string       `json:"id"`
	Object  string       `json:"object"`
	Created int64        `json:"created"`
	Model   string       `json:"model"`
	Choices []chatChoice `json:"choices"`
	Usage   *chatUsage   `json:"usage"`
}

type chatChoice struct {
	Index        int          `json:"index"`
	Message      *chatMessage `json:"message,omitempty"`
	Delta        *chatMessage `json:"delta,omitempty"`
	FinishReason *string      `json:"finish_reason"`
	Logprobs     *struct{}    `json:"logprobs"`
}

type chatMessage struct {
	Role    string  `json:"role,omitempty"`
	Content *string `json:"content,omitempty"`
}

// appendCompletion appends c as JSON, the same object as json.Marshal's
// (FuzzAppendCompletion) without reflection: a request that finds the
// caches cold encodes it in a fraction of json.Marshal's time
// (BenchmarkEncodeCodecsCold).
func appendCompletion(b []byte, c *chatCompletion) []byte {
	b = append(b, `{"id":`...)
	b = jsonscan.AppendQuoted(b, c.ID)
	b = append(b, `,"object":`...)
	b = jsonscan.AppendQuoted(b, c.Object)
	b = append(b, `,"created":`...)
	b = strconv.AppendInt(b, c.Created, 10)
	b = append(b, `,"model":`...)
	b = jsonscan.AppendQuoted(b, c.Model)
	b = append(b, `,"choices":`...)
	if c.Choices == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i, ch := range c.Choices {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"index":`...)
			b = strconv.AppendInt(b, int64(ch.Index), 10)
			if ch.Message != nil {
				b = append(b, `,"message":`...)
				b = appendMessage(b, ch.Message)
			}
			if ch.Delta != nil {
				b = append(b, `,"delta":`...)
				b = appendMessage(b, ch.Delta)
			}
			b = append(b, `,"finish_reason":`...)
			if ch.FinishReason == nil {
				b = append(b, "null"...)
			} else {
				b = jsonscan.AppendQuoted(b, *ch.FinishReason)
			}
			b = append(b, `,"logprobs":`...)
			if ch.Logprobs == nil {
				b = append(b, "null"...)
			} else {
				b = append(b, "{}"...)
			}
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	b = append(b, `,"usage":`...)
	if u := c.Usage; u == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, `{"prompt_tokens":`...)
		b = strconv.AppendInt(b, u.PromptTokens, 10)
		b = append(b, `,"completion_tokens":`...)
		b = strconv.AppendInt(b, u.CompletionTokens, 10)
		b = append(b, `,"total_tokens":`...)
		b = strconv.AppendInt(b, u.TotalTokens, 10)
		b = append(b, `,"prompt_tokens_details":{"cached_tokens":`...)
		b = strconv.AppendInt(b, u.PromptTokensDetails.CachedTokens, 10)
		b = append(b, `},"completion_tokens_details":{"reasoning_tokens":`...)
		b = strconv.AppendInt(b, u.CompletionTokensDetails.ReasoningTokens, 10)
		b = append(b, "}}"...)
	}
	return append(b, '}')
}

// appendMessage appends m as json.Marshal does: role and content left out
// when empty.
func appendMessage(b []byte, m *chatMessage) []byte {
	b = append(b, '{')
	if m.Role != "" {
		b = append(b, `"role":`...)
		b = jsonscan.AppendQuoted(b, m.Role)
	}
	if m.Content != nil {
		if m.Role != "" {
			b = append(b, ',')
		}
		b = append(b, `"content":`...)
		b = jsonscan.AppendQuoted(b, *m.Content)
	}
	return append(b, '}')
}

// chunkWriter writes a streamed answer's chat.completion.chunk events.
type chunkWriter struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	id      string
	created int64
	model   string
	data    []byte // a chunk's JSON
	buf     []byte // a chunk's event
}

// delta writes a chunk with one choice's delta and finish reason.
func (c *chunkWriter) delta(d chatMessage, finish *string) error {
	return c.chunk([]chatChoice{{Delta: &d, FinishReason: finish}}, nil)
}

// chunk writes one chunk; a chunk with no choices carries the usage.
func (c *chunkWriter) chunk(choices []chatChoice, usage *chatUsage) error {
	c.data = appendCompletion(c.data[:0], &chatCompletion{ID: c.id, Object: "chat.completion.chunk", Created: c.created, Model: c.model,
		Choices: choices, Usage: usage})
	return c.event(c.data)
}

// event writes one SSE event and flushes it to the client.
func (c *chunkWriter) event(data []byte) error {
	c.buf = sse.AppendEvent(c.buf[:0], "", data)
	if _, err := c.w.Write(c.buf); err != nil {
		return err
	}
	return c.rc.Flush()
}

// apiError is an error as the client sees it, in OpenAI's envelope
// {"error":{"message","type","param","code"}}, with the outcome the request
// metrics count it under. apiErrorOf computes it once per error.
type apiError struct {
	status     int
	typ        string
	param      string
	code       string
	msg        string
	retryAfter time.Duration // sent as Retry-After when positive
	outcome    string
	// spent is what the failed request's attempts cost (a SpentError),
	// sent as X-Brownout-Cost-USD; "" when nothing was spent.
	spent string
}

// apiErrorOf maps an error of the request path to what the client sees,
// with what the request spent before it failed.
func apiErrorOf(err error) apiError {
	e := apiErrorClass(err)
	var se *SpentError
	if errors.As(err, &se) {
		e.spent = se.Cost.String()
	}
	return e
}

// apiErrorClass is the status, type and code of err. Upstream client
// errors keep their 4xx (but a provider's 401/403 is the gateway's
// misconfiguration: 502); provider faults are 502, 503 (overloaded,
// breaker open) or 504 (timed out); throttling is 429.
func apiErrorClass(err error) apiError {
	var ce *clientError
	switch {
	case errors.As(err, &ce):
		typ := "invalid_request_error"
		if ce.status == 401 {
			typ = "authentication_error"
		}
		return apiError{status: ce.status, typ: typ, param: ce.param, code: ce.code, msg: ce.msg, outcome: "client_error"}
	case errors.Is(err, ErrUnknownRoute):
		return apiError{status: 404, typ: "invalid_request_error", code: "model_not_found", msg: err.Error(), outcome: "client_error"}
	case errors.Is(err, ErrBudgetExceeded):
		return apiError{status: 429, typ: "insufficient_quota", code: "budget_exceeded", msg: err.Error(), outcome: "budget_exceeded"}
	case errors.Is(err, ErrIdempotencyMismatch):
		return apiError{status: 422, typ: "invalid_request_error", code: "idempotency_key_mismatch", outcome: "client_error",
			msg: "This Idempotency-Key was used with a different request; use a new key for a new request."}
	case errors.As(err, new(responseNotKept)):
		return apiError{status: 409, typ: "invalid_request_error", code: "idempotency_response_not_kept", msg: err.Error(), outcome: "client_error"}
	case errors.Is(err, errClientGone):
		return apiError{status: 499, typ: "request_cancelled", code: "client_closed_request", msg: "The client closed the request.", outcome: "cancelled"}
	case errors.Is(err, errIdempotencyUnavailable):
		return apiError{status: 503, typ: "server_error", code: "idempotency_unavailable", outcome: "error", retryAfter: storeRetryAfter,
			msg: "The gateway's idempotency store is unavailable; nothing was sent upstream. Try again."}
	case errors.Is(err, errBudgetUnavailable):
		return apiError{status: 503, typ: "server_error", code: "budget_unavailable", outcome: "error", retryAfter: storeRetryAfter,
			msg: "The gateway's budget store is unavailable; nothing was sent upstream. Try again."}
	}
	var pe *llm.ProviderError
	if !errors.As(err, &pe) {
		return apiError{status: 502, typ: "upstream_error", code: "upstream_error", msg: "upstream error", outcome: "error"}
	}
	// The tenant gets the gateway's own words and the vendor's status and
	// type; the vendor's text goes to the gateway's log (meter).
	e := apiError{typ: "upstream_error", msg: pe.Summary(), retryAfter: pe.RetryAfter, outcome: "upstream_" + string(pe.Class)}
	switch pe.Class {
	case llm.ClassClient:
		if pe.Status == 401 || pe.Status == 403 {
			e.status, e.code = 502, "upstream_auth_failed"
			return e
		}
		e.status, e.typ, e.code = pe.Status, "invalid_request_error", "upstream_rejected"
		if e.status < 400 || e.status > 499 {
			e.status = 400
		}
	case llm.ClassThrottled:
		e.status, e.typ, e.code = 429, "rate_limit_error", "rate_limit_exceeded"
	case llm.ClassServer:
		switch {
		case pe.Type == "circuit_open":
			e.status, e.code = 503, "circuit_open"
		case pe.Status == 503 || pe.Status == 529:
			e.status, e.code = 503, "upstream_overloaded"
		default:
			e.status, e.code = 502, "upstream_server_error"
		}
	case llm.ClassCancelled:
		e.status, e.typ, e.code = 499, "request_cancelled", "client_closed_request"
	default:
		var ne net.Error
		if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
			e.status, e.code = 504, "upstream_timeout"
		} else {
			e.status, e.code = 502, "upstream_unreachable"
		}
	}
	return e
}

// envelope is e in OpenAI's error object; param and code are null when empty.
func (e apiError) envelope() map[string]any {
	obj := map[string]any{"message": e.msg, "type": e.typ, "param": nil, "code": nil}
	if e.param != "" {
		obj["param"] = e.param
	}
	if e.code != "" {
		obj["code"] = e.code
	}
	return map[string]any{"error": obj}
}

// write sends e as the response, with Retry-After when the vendor asked
// for a wait.
func (e apiError) write(w http.ResponseWriter) {
	if e.spent != "" {
		w.Header().Set(headerCost, e.spent)
	}
	if e.retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.FormatInt(int64((e.retryAfter+time.Second-1)/time.Second), 10))
	}
	writeJSON(w, e.status, e.envelope())
}

// event is e as the data of an in-band SSE error event, for a stream whose
// 200 is already out: OpenAI's shape, with the status as the code.
func (e apiError) event() []byte {
	b, _ := json.Marshal(map[string]any{"error": map[string]any{"message": e.msg, "type": e.typ, "param": nil, "code": strconv.Itoa(e.status)}})
	return b
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		slog.Debug("gateway: write response", "error", err)
	}
	writeBody(w, status, append(body, '\n'))
}

// writeBody writes a JSON body, which ends in a newline.
func writeBody(w http.ResponseWriter, status int, body []byte) {
	// A length, not chunks: the answer is whole when its last byte is
	// flushed, before the handler's bookkeeping after it.
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
