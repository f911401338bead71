package fakeprovider_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brownout-dev/brownout/fakeprovider"
)

// Bad input is answered as the vendor answers it, in its envelope.
func TestBadInput(t *testing.T) {
	tests := []struct {
		vendor fakeprovider.Vendor
		name   string
		path   string
		body   string
		auth   bool
		status int
		want   string
	}{
		{fakeprovider.Anthropic, "missing key", "/v1/messages", `{}`, false, 401, `"type":"authentication_error"`},
		{fakeprovider.Anthropic, "malformed JSON", "/v1/messages", `{"model":`, true, 400, `"type":"invalid_request_error"`},
		{fakeprovider.Anthropic, "missing max_tokens", "/v1/messages", `{"model":"claude-haiku-4-5","messages":[{"role":"user","content":"hi"}]}`, true, 400, `max_tokens: Field required`},
		{fakeprovider.Anthropic, "unknown model", "/v1/messages", `{"model":"claude-x","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}`, true, 404, `"type":"not_found_error"`},
		{fakeprovider.Anthropic, "bad role", "/v1/messages", `{"model":"claude-haiku-4-5","max_tokens":5,"messages":[{"role":"robot","content":"hi"}]}`, true, 400, `messages.0.role`},
		{fakeprovider.Gemini, "missing key", "/v1beta/models/gemini-2.5-flash:generateContent", `{}`, false, 403, `"status":"PERMISSION_DENIED"`},
		{fakeprovider.Gemini, "malformed JSON", "/v1beta/models/gemini-2.5-flash:generateContent", `{"contents":[`, true, 400, `"status":"INVALID_ARGUMENT"`},
		{fakeprovider.Gemini, "missing contents", "/v1beta/models/gemini-2.5-flash:generateContent", `{}`, true, 400, `contents is not specified`},
		{fakeprovider.Gemini, "unknown model", "/v1beta/models/gemini-x:generateContent", `{"contents":[{"parts":[{"text":"hi"}]}]}`, true, 404, `"status":"NOT_FOUND"`},
		{fakeprovider.Gemini, "unknown method", "/v1beta/models/gemini-2.5-flash:explode", `{}`, true, 404, `"status":"NOT_FOUND"`},
		{fakeprovider.OpenAI, "missing key", "/v1/chat/completions", `{}`, false, 401, `You didn't provide an API key`},
		{fakeprovider.OpenAI, "malformed JSON", "/v1/chat/completions", `{"model"`, true, 400, `We could not parse the JSON body`},
		{fakeprovider.OpenAI, "missing messages", "/v1/chat/completions", `{"model":"gpt-4o-mini"}`, true, 400, `"param":"messages"`},
		{fakeprovider.OpenAI, "wrong type", "/v1/chat/completions", `{"model":"gpt-4o-mini","messages":"hi"}`, true, 400, `"type":"invalid_request_error"`},
		{fakeprovider.OpenAI, "unknown model", "/v1/chat/completions", `{"model":"gpt-x","messages":[{"role":"user","content":"hi"}]}`, true, 404, `"code":"model_not_found"`},
		{fakeprovider.OpenAI, "unknown path", "/v1/embeddings", `{}`, true, 404, `Unknown request URL`},
	}
	for _, tt := range tests {
		t.Run(name(tt.vendor, " ", tt.name), func(t *testing.T) {
			s, c := memFake(t, vendorConfig(tt.vendor))
			req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, s.URL+tt.path, bytes.NewReader([]byte(tt.body)))
			require.NoError(t, err)
			if tt.auth {
				authorize(req, tt.vendor, testKey)
			} else if tt.vendor == fakeprovider.Anthropic {
				req.Header.Set("anthropic-version", "2023-06-01")
			}
			resp, body, err := do(c, req)
			require.NoError(t, err)
			assert.Equal(t, tt.status, resp.StatusCode, "%s", body)
			assert.Contains(t, string(body), tt.want)
			assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
		})
	}
}

func TestHugeBodyIs413(t *testing.T) {
	s, err := fakeprovider.NewUnstartedServer(vendorConfig(fakeprovider.OpenAI))
	require.NoError(t, err)
	defer s.Close()
	req := httptest.NewRequest(http.MethodPost, "/v1/chat/completions", bytes.NewReader(make([]byte, 9<<20)))
	authorize(req, fakeprovider.OpenAI, testKey)
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, req)
	assert.Equal(t, 413, rec.Code)
}

// FuzzRequestDecoders: whatever body a client sends to any vendor endpoint,
// the fake answers (never a panic, never a hang) and never with a 5xx.
func FuzzRequestDecoders(f *testing.F) {
	f.Add(0, []byte(`{"model":"claude-haiku-4-5","max_tokens":5,"messages":[{"role":"user","content":[{"type":"text","text":"hi"}]}],"thinking":{"type":"enabled","budget_tokens":1024}}`))
	f.Add(1, []byte(`{"contents":[{"role":"user","parts":[{"text":"hi"}]}],"generationConfig":{"maxOutputTokens":3,"thinkingConfig":{"thinkingBudget":-1}}}`))
	f.Add(2, []byte(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"max_completion_tokens":0}`))
	f.Add(2, []byte(`{"model":"o4-mini","messages":[{"role":"user","content":null}],"stream":true}`))
	f.Add(1, []byte(`null`))
	servers := map[int]*fakeprovider.Server{}
	paths := map[int]string{0: "/v1/messages", 1: "/v1beta/models/gemini-2.5-flash:generateContent", 2: "/v1/chat/completions"}
	for i, v := range vendors {
		s, err := fakeprovider.NewUnstartedServer(vendorConfig(v))
		if err != nil {
			f.Fatal(err)
		}
		defer s.Close()
		servers[i] = s
	}
	f.Fuzz(func(t *testing.T, which int, body []byte) {
		i := ((which % 3) + 3) % 3
		req := httptest.NewRequest(http.MethodPost, paths[i], bytes.NewReader(body))
		authorize(req, vendors[i], testKey)
		rec := httptest.NewRecorder()
		servers[i].ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("status %d for body %q: %s", rec.Code, body, rec.Body)
		}
	})
}
