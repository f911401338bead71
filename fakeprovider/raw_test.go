package fakeprovider_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"

	"github.com/brownout-dev/brownout/fakeprovider"
)

// rawRequest builds a minimal request in the vendor's wire format.
func rawRequest(t testing.TB, s *fakeprovider.Server, model string, stream bool) *http.Request {
	t.Helper()
	var path string
	var body any
	prompt := "What is the capital of France? One word."
	switch s.Vendor() {
	case fakeprovider.Anthropic:
		path = "/v1/messages"
		body = map[string]any{"model": model, "max_tokens": 4096, "stream": stream,
			"messages": []any{map[string]any{"role": "user", "content": prompt}}}
	case fakeprovider.Gemini:
		path = "/v1beta/models/" + model + ":generateContent"
		if stream {
			path = "/v1beta/models/" + model + ":streamGenerateContent?alt=sse"
		}
		body = map[string]any{"contents": []any{map[string]any{"role": "user", "parts": []any{map[string]any{"text": prompt}}}}}
	case fakeprovider.OpenAI:
		path = "/v1/chat/completions"
		body = map[string]any{"model": model, "stream": stream, "stream_options": map[string]any{"include_usage": stream},
			"messages": []any{map[string]any{"role": "user", "content": prompt}}}
		if !stream {
			delete(body.(map[string]any), "stream_options")
		}
	}
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, s.URL+path, bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	authorize(req, s.Vendor(), testKey)
	return req
}

func authorize(req *http.Request, v fakeprovider.Vendor, key string) {
	switch v {
	case fakeprovider.Anthropic:
		req.Header.Set("x-api-key", key)
		req.Header.Set("anthropic-version", "2023-06-01")
	case fakeprovider.Gemini:
		req.Header.Set("x-goog-api-key", key)
	case fakeprovider.OpenAI:
		req.Header.Set("Authorization", "Bearer "+key)
	}
	req.Header.Set("Content-Type", "application/json")
}

// do sends req and reads the whole body; err is the transport's or the body's.
func do(c *http.Client, req *http.Request) (*http.Response, []byte, error) {
	resp, err := c.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp, body, err
}

// models is one plain and one thinking model per vendor.
var models = map[fakeprovider.Vendor][2]string{
	fakeprovider.Anthropic: {"claude-haiku-4-5", "claude-sonnet-4-5"},
	fakeprovider.Gemini:    {"gemini-2.5-flash-lite", "gemini-2.5-flash"},
	fakeprovider.OpenAI:    {"gpt-4o-mini", "o4-mini"},
}

var vendors = []fakeprovider.Vendor{fakeprovider.Anthropic, fakeprovider.Gemini, fakeprovider.OpenAI}

// sseEvents counts the data lines of a stream and reports whether the
// stream's terminal event was there.
func sseEvents(v fakeprovider.Vendor, body []byte) (events int, terminal bool) {
	for _, line := range bytes.Split(body, []byte("\n")) {
		if bytes.HasPrefix(line, []byte("data: ")) {
			events++
		}
	}
	switch v {
	case fakeprovider.Anthropic:
		terminal = bytes.Contains(body, []byte(`"type":"message_stop"`))
	case fakeprovider.OpenAI:
		terminal = bytes.Contains(body, []byte("data: [DONE]"))
	case fakeprovider.Gemini:
		terminal = bytes.Contains(body, []byte(`"finishReason"`))
	}
	return events, terminal
}

func name(v fakeprovider.Vendor, extra ...any) string {
	return fmt.Sprint(append([]any{string(v)}, extra...)...)
}
