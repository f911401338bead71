package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/brownout-dev/brownout/gateway/llm"
)

// chatRequest is the part of an OpenAI Chat Completions request the
// gateway understands. Other fields are accepted and ignored, as the SDKs
// send many optional ones.
type chatRequest struct {
	Model               string            `json:"model"`
	Messages            []json.RawMessage `json:"messages"`
	MaxTokens           *int              `json:"max_tokens"`
	MaxCompletionTokens *int              `json:"max_completion_tokens"`
	Temperature         *float64          `json:"temperature"`
	Stop                json.RawMessage   `json:"stop"`
	Stream              bool              `json:"stream"`
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

// decodeChat parses and validates a request body into the canonical form.
func decodeChat(body []byte) (*chatRequest, llm.Request, error) {
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
	return &in, out, nil
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
	c.PromptTokens = u.Input + u.CacheRead + u.CacheWrite
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
