package providers_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brownout-dev/brownout/gateway/llm"
	"github.com/brownout-dev/brownout/gateway/providers/anthropic"
	"github.com/brownout-dev/brownout/gateway/providers/gemini"
	"github.com/brownout-dev/brownout/gateway/providers/openai"
)

// canned serves one fixed body with a status, as a vendor would.
func canned(t *testing.T, status int, body string, header ...string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i+1 < len(header); i += 2 {
			w.Header().Set(header[i], header[i+1])
		}
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func adapter(vendor, url string) llm.Provider {
	switch vendor {
	case "anthropic":
		return anthropic.New(anthropic.Config{BaseURL: url, APIKey: "k"})
	case "gemini":
		return gemini.New(gemini.Config{BaseURL: url, APIKey: "k"})
	}
	return openai.New(openai.Config{BaseURL: url, APIKey: "k"})
}

var question = &llm.Request{Model: "m", Messages: []llm.Message{{Role: "user", Content: "What is the capital of France? One word."}}}

// TestUsageNormalisation feeds each adapter real response bodies (the
// vendors' documented shapes) and checks the normalised usage, including the
// two classic traps: reasoning counted twice (OpenAI's completion_tokens
// already includes it) and thinking left out (Gemini's candidatesTokenCount
// does not include it).
func TestUsageNormalisation(t *testing.T) {
	tests := []struct {
		name, vendor, body string
		want               llm.Usage
	}{
		{"openai reasoning is inside completion_tokens (trap: counted twice)", "openai",
			`{"id":"chatcmpl-1","object":"chat.completion","model":"o4-mini","choices":[{"index":0,"message":{"role":"assistant","content":"Paris"},"finish_reason":"stop"}],
			  "usage":{"prompt_tokens":10,"completion_tokens":25,"total_tokens":35,"prompt_tokens_details":{"cached_tokens":0},"completion_tokens_details":{"reasoning_tokens":24}}}`,
			llm.Usage{Input: 10, Output: 1, Reasoning: 24}},
		{"openai cached tokens are inside prompt_tokens", "openai",
			`{"id":"c","choices":[{"message":{"content":"Paris"},"finish_reason":"stop"}],
			  "usage":{"prompt_tokens":1200,"completion_tokens":3,"prompt_tokens_details":{"cached_tokens":1024},"completion_tokens_details":{"reasoning_tokens":0}}}`,
			llm.Usage{Input: 176, Output: 3, CacheRead: 1024}},
		{"openai without details", "openai",
			`{"id":"c","choices":[{"message":{"content":"Paris"},"finish_reason":"length"}],"usage":{"prompt_tokens":5,"completion_tokens":7}}`,
			llm.Usage{Input: 5, Output: 7}},
		{"gemini thoughts are outside candidates (trap: left out)", "gemini",
			`{"candidates":[{"content":{"parts":[{"text":"Paris"}],"role":"model"},"finishReason":"STOP","index":0}],
			  "usageMetadata":{"promptTokenCount":10,"candidatesTokenCount":1,"totalTokenCount":35,"thoughtsTokenCount":24},"modelVersion":"gemini-2.5-flash","responseId":"r1"}`,
			llm.Usage{Input: 10, Output: 1, Reasoning: 24}},
		{"gemini cached content is inside the prompt", "gemini",
			`{"candidates":[{"content":{"parts":[{"text":"Paris"}]},"finishReason":"STOP"}],
			  "usageMetadata":{"promptTokenCount":2000,"candidatesTokenCount":2,"cachedContentTokenCount":1500,"totalTokenCount":2002},"responseId":"r2"}`,
			llm.Usage{Input: 500, Output: 2, CacheRead: 1500}},
		{"anthropic thinking is inside output_tokens, split by the details", "anthropic",
			`{"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[{"type":"thinking","thinking":"...","signature":"s"},{"type":"text","text":"Paris"}],
			  "stop_reason":"end_turn","usage":{"input_tokens":10,"output_tokens":25,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens_details":{"thinking_tokens":24}}}`,
			llm.Usage{Input: 10, Output: 1, Reasoning: 24}},
		{"anthropic without details keeps thinking in output (billed at the output rate)", "anthropic",
			`{"id":"msg_2","type":"message","content":[{"type":"text","text":"Paris"}],"stop_reason":"end_turn","usage":{"input_tokens":10,"output_tokens":25}}`,
			llm.Usage{Input: 10, Output: 25}},
		{"anthropic cache counts are separate from input_tokens", "anthropic",
			`{"id":"msg_3","type":"message","content":[{"type":"text","text":"Paris"}],"stop_reason":"max_tokens","usage":{"input_tokens":3,"output_tokens":4,"cache_creation_input_tokens":100,"cache_read_input_tokens":2000}}`,
			llm.Usage{Input: 3, Output: 4, CacheRead: 2000, CacheWrite: 100}},
		{"anthropic 1-hour cache writes are apart from 5-minute ones (trap: priced at the 5-minute rate)", "anthropic",
			`{"id":"msg_4","type":"message","content":[{"type":"text","text":"Paris"}],"stop_reason":"end_turn","usage":{"input_tokens":3,"output_tokens":4,
			  "cache_creation_input_tokens":3000,"cache_read_input_tokens":0,"cache_creation":{"ephemeral_5m_input_tokens":1000,"ephemeral_1h_input_tokens":2000}}}`,
			llm.Usage{Input: 3, Output: 4, CacheWrite: 1000, CacheWrite1h: 2000}},
		{"anthropic redacted thinking still bills (trap: thinking counted from the content)", "anthropic",
			`{"id":"msg_5","type":"message","content":[{"type":"redacted_thinking","data":"EmwKAhgBEgy3va3pzix"},{"type":"text","text":"Paris"}],"stop_reason":"end_turn",
			  "usage":{"input_tokens":10,"output_tokens":301}}`,
			llm.Usage{Input: 10, Output: 301}},
		{"anthropic empty thinking block (signature only) still bills", "anthropic",
			`{"id":"msg_6","type":"message","content":[{"type":"thinking","thinking":"","signature":"sig"},{"type":"text","text":"Paris"}],"stop_reason":"end_turn",
			  "usage":{"input_tokens":10,"output_tokens":301,"output_tokens_details":{"thinking_tokens":300}}}`,
			llm.Usage{Input: 10, Output: 1, Reasoning: 300}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := adapter(tt.vendor, canned(t, 200, tt.body, "x-request-id", "req_1", "request-id", "req_1")).Complete(context.Background(), question)
			require.NoError(t, err)
			assert.Equal(t, tt.want, resp.Usage)
			assert.Contains(t, resp.Content, "Paris")
			assert.NotEmpty(t, resp.ProviderRequestID)
		})
	}
}

func TestMalformedResponsesAreProviderFaults(t *testing.T) {
	bodies := map[string][]string{
		"openai":    {`{"choices":[`, `{"choices":[]}`, `{"choices":[{"message":{"content":"x"}}]}`, `{"choices":[{"message":{"content":"x"}}],"usage":{"prompt_tokens":1,"completion_tokens":2,"completion_tokens_details":{"reasoning_tokens":5}}}`},
		"gemini":    {`not json`, `{"candidates":[]}`, `{"candidates":[{"content":{"parts":[]}}]}`},
		"anthropic": {`{"type":"message"`, `{"type":"error"}`, `{"type":"message","usage":{"input_tokens":1,"output_tokens":2,"output_tokens_details":{"thinking_tokens":3}}}`},
	}
	for vendor, list := range bodies {
		for _, body := range list {
			t.Run(vendor+" "+body, func(t *testing.T) {
				_, err := adapter(vendor, canned(t, 200, body)).Complete(context.Background(), question)
				require.Error(t, err)
				var pe *llm.ProviderError
				require.True(t, errors.As(err, &pe), "%v is not a *llm.ProviderError", err)
				assert.Equal(t, llm.ClassTransport, pe.Class, "a malformed answer is the provider's fault")
			})
		}
	}
}

func TestErrorStatusesAreClassified(t *testing.T) {
	tests := []struct {
		vendor, body string
		status       int
		header       []string
		class        llm.Class
		typ          string
		retryAfter   string
	}{
		{"openai", `{"error":{"message":"slow down","type":"requests","param":null,"code":"rate_limit_exceeded"}}`, 429, []string{"retry-after-ms", "1500"}, llm.ClassThrottled, "rate_limit_exceeded", "1.5s"},
		{"openai", `{"error":{"message":"bad","type":"invalid_request_error","param":"messages","code":null}}`, 400, nil, llm.ClassClient, "invalid_request_error", "0s"},
		{"anthropic", `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"},"request_id":"req_9"}`, 529, nil, llm.ClassServer, "overloaded_error", "0s"},
		{"anthropic", `{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}`, 401, nil, llm.ClassClient, "authentication_error", "0s"},
		{"gemini", `{"error":{"code":429,"message":"quota","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"3s"}]}}`, 429, nil, llm.ClassThrottled, "RESOURCE_EXHAUSTED", "3s"},
		{"gemini", `{"error":{"code":503,"message":"The model is overloaded.","status":"UNAVAILABLE"}}`, 503, nil, llm.ClassServer, "UNAVAILABLE", "0s"},
		{"gemini", `<html>bad gateway</html>`, 502, nil, llm.ClassServer, "", "0s"},
	}
	for _, tt := range tests {
		t.Run(tt.vendor+" "+tt.typ, func(t *testing.T) {
			_, err := adapter(tt.vendor, canned(t, tt.status, tt.body, tt.header...)).Complete(context.Background(), question)
			var pe *llm.ProviderError
			require.True(t, errors.As(err, &pe), "%v", err)
			assert.Equal(t, tt.class, pe.Class)
			assert.Equal(t, tt.status, pe.Status)
			assert.Equal(t, tt.typ, pe.Type)
			assert.Equal(t, tt.retryAfter, pe.RetryAfter.String())
			assert.NotContains(t, err.Error(), "k\"", "the key never appears in an error")
		})
	}
}

// TestOpenAIStreamWithoutDone: a stream whose body ends cleanly after the
// finish reason and the usage chunk, with no [DONE] (some OpenAI-compatible
// servers never send it), is a success with its usage; one that ends
// before its usage chunk is still a cut.
func TestOpenAIStreamWithoutDone(t *testing.T) {
	const head = "data: {\"choices\":[{\"delta\":{\"content\":\"Par\"}}]}\n\n" +
		"data: {\"choices\":[{\"delta\":{\"content\":\"is\"},\"finish_reason\":\"stop\"}]}\n\n"
	const usage = "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":2}}\n\n"
	read := func(body string) (string, llm.Chunk, error) {
		s, err := adapter("openai", canned(t, 200, body, "Content-Type", "text/event-stream", "x-request-id", "req_1")).Stream(context.Background(), question)
		require.NoError(t, err)
		defer s.Close()
		var text string
		for {
			c, err := s.Next()
			if err != nil {
				return text, llm.Chunk{}, err
			}
			text += c.Content
			if c.Final {
				_, eof := s.Next()
				require.ErrorIs(t, eof, io.EOF)
				return text, c, nil
			}
		}
	}
	text, final, err := read(head + usage)
	require.NoError(t, err)
	assert.Equal(t, "Paris", text)
	assert.Equal(t, "stop", final.FinishReason)
	assert.Equal(t, llm.Usage{Input: 10, Output: 2}, final.Usage)

	_, _, err = read(head)
	require.Error(t, err, "no usage chunk: cut")
	assert.Equal(t, llm.ClassTransport, llm.Classify(context.Background(), err))
}
