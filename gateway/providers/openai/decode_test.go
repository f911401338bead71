package openai

import (
	"encoding/json"
	"math"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brownout-dev/brownout/gateway/llm"
	"github.com/brownout-dev/brownout/gateway/providers/internal/wire"
	"github.com/brownout-dev/brownout/gateway/providers/internal/wiretest"
	"github.com/brownout-dev/brownout/internal/testmain"
)

// TestMain shuffles the tests' order (internal/testmain).
func TestMain(m *testing.M) { os.Exit(testmain.Run(m)) }

// answer is a chat completion as OpenAI sends it, every field it sends today.
const answer = `{"id":"chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT","object":"chat.completion","created":1764331200,"model":"gpt-4o-mini-2024-07-18",` +
	`"choices":[{"index":0,"message":{"role":"assistant","content":"Paris","refusal":null,"annotations":[]},"logprobs":null,"finish_reason":"stop"}],` +
	`"usage":{"prompt_tokens":25,"completion_tokens":41,"total_tokens":66,"prompt_tokens_details":{"cached_tokens":3,"audio_tokens":0},` +
	`"completion_tokens_details":{"reasoning_tokens":32,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}},` +
	`"service_tier":"default","system_fingerprint":"fp_560af6e559"}`

// decodeByReflection is the reference: Decode, encoding/json's semantics.
func decodeByReflection(body []byte) (completion, error) {
	var c completion
	err := wire.Decode(body, &c)
	return c, err
}

// TestScannerTakesTheCommonAnswer: the answers the vendor sends are read
// by the scanner, not sent on to Decode (else the scanner would be dead
// code that every test still passes through), into the fields a reader of
// the body above finds there.
func TestScannerTakesTheCommonAnswer(t *testing.T) {
	for _, body := range []string{
		answer,
		`{"id":"a","model":"m","choices":[{"message":{"content":null,"tool_calls":[{"id":"t"}]},"finish_reason":"tool_calls"}],"usage":null}`,
		`{"choices":[{"message":{"content":"x"},"finish_reason":"stop"},{"message":{"content":"y"},"finish_reason":"length"}],"usage":{"prompt_tokens":1,"completion_tokens":2,"prompt_tokens_details":null}}`,
	} {
		_, ok := scanCompletion([]byte(body))
		require.True(t, ok, body)
	}
	c, err := decodeCompletion([]byte(answer))
	require.NoError(t, err)
	require.Len(t, c.Choices, 1)
	require.NotNil(t, c.Choices[0].Message.Content)
	require.NotNil(t, c.Usage)
	assert.Equal(t, "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT", c.ID)
	assert.Equal(t, "gpt-4o-mini-2024-07-18", c.Model)
	assert.Equal(t, "Paris", *c.Choices[0].Message.Content)
	assert.Equal(t, "stop", c.Choices[0].FinishReason)
	assert.Equal(t, usage{PromptTokens: 25, CompletionTokens: 41,
		PromptTokensDetails: &promptDetails{CachedTokens: 3}, CompletionTokensDetails: &completionDetails{ReasoningTokens: 32}}, *c.Usage)
}

// FuzzDecodeCompletion holds the scanner to Decode: a body either
// decodes to the same completion by both, or fails by both.
func FuzzDecodeCompletion(f *testing.F) {
	for _, s := range []string{
		answer,
		`{"choices":[{"message":{"content":"x"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":1}}`,
		`{"choices":null,"usage":{"prompt_tokens":1,"completion_tokens":1,"completion_tokens_details":null}}`,
		`{"Usage":{"prompt_tokens":1},"usage":{"prompt_tokens":2}}`,
		`{"usage":{"Prompt_Tokens":7,"prompt-tokens":8,"prompttokens":9}}`,
		`{"usage":{"prompt_tokens":1.0}}`,
		`{"usage":{"prompt_tokens":1e2}}`,
		`{"usage":{"prompt_tokens":-3}}`,
		`{"usage":{"prompt_tokens":99999999999999999999}}`,
		`{"id":"a","id":"b"}`,
		`{"id":null,"model":"m"}`,
		`{"id":"\u0069\ud83d\ude00","\u006dodel":"m"}`,
		"{\"id\":\"\xff\"}",
		`{"choices":[{"message":null}]}`,
		`{"choices":[{"message":{"role":"assistant","content":null,"tool_calls":[{"id":"t","type":"function"}]},"finish_reason":"tool_calls"}]}`,
		`{"choices":[{"message":{"content":"a","content":"b"}}]}`,
		`{"choices":[{"message":{"CONTENT":"a"},"Finish_Reason":"stop"}]}`,
		`{"choices":[{"message":{"content":"x"}}]} {}`,
		`{"choices":[{"message":{"content":"x"}}]}  `,
		`{"choices":{}}`,
		`{"usage":{"prompt_tokens":1,"prompt_tokens_details":{"cached_tokens":1,"cached_tokens":2}}}`,
		`{"usage":{"prompt_tokens":1},"usage":{"completion_tokens":2}}`,
		`{"choices":[{"message":{"content":"a"}}],"choices":[{"finish_reason":"stop"}]}`,
		`{"ſtatus":1,"K":2}`,
		`[]`, `null`, ``, `{`, `{"id":"x"`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) { wiretest.AgreesWithDecode(t, body, decodeCompletion) })
}

// FuzzDecodeChunk holds the scanner to Decode for a stream's events, as
// FuzzDecodeCompletion does for answers.
func FuzzDecodeChunk(f *testing.F) {
	for _, s := range []string{
		`{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}]}`,
		`{"choices":[{"index":0,"delta":{"content":"Par"},"finish_reason":null}],"usage":null}`,
		`{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}`,
		`{"choices":[],"usage":{"prompt_tokens":25,"completion_tokens":41,"prompt_tokens_details":{"cached_tokens":3},"completion_tokens_details":{"reasoning_tokens":32}}}`,
		`{"choices":[{"delta":{"content":null,"tool_calls":[{"index":0,"function":{"arguments":"{\"a\":1.5}"}}]}}]}`,
		`{"error":{"message":"overloaded","type":"server_error","code":null}}`,
		`{"error":null,"choices":null}`,
		`{"error":{"message":null}}`,
		`{"choices":[null,{"delta":null,"finish_reason":"length"}]}`,
		`{"choices":[{"delta":{"content":"a","content":null}}]}`,
		`{"choices":[{"Delta":{"content":"a"}}]}`,
		`{"choices":[{"delta":{"Content":"a"}}]}`,
		`{"ERROR":{"message":"x"}}`,
		`{"choices":[{"delta":{"content":"a"}}],"choices":[]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) { wiretest.AgreesWithDecode(t, data, decodeChunk) })
}

// TestScannerTakesTheCommonChunks: the events OpenAI streams are read by
// the scanner, not sent on to Decode.
func TestScannerTakesTheCommonChunks(t *testing.T) {
	for _, data := range []string{
		`{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m","system_fingerprint":"fp","choices":[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}],"usage":null}`,
		`{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"Paris"},"logprobs":null,"finish_reason":null}]}`,
		`{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}]}`,
		`{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m","choices":[],"usage":{"prompt_tokens":25,"completion_tokens":1,"total_tokens":26,"prompt_tokens_details":{"cached_tokens":0},"completion_tokens_details":{"reasoning_tokens":0}}}`,
	} {
		_, ok := scanChunk([]byte(data))
		assert.True(t, ok, data)
	}
}

// BenchmarkDecodeCompletion decodes the answer above with the scanner and with
// Decode, side by side in one run.
//
//	go test -run '^$' -bench 'DecodeCompletion$' -benchmem ./gateway/providers/openai/
func BenchmarkDecodeCompletion(b *testing.B) {
	wiretest.BenchDecode(b, []byte(answer), decodeCompletion, hasUsage)
}

// BenchmarkDecodeCompletionCold is BenchmarkDecodeCompletion with the
// caches emptied before each decode, as the gateway finds them when a
// request comes a millisecond after the last. Its ns/op is the median of
// the cold decodes alone.
//
//	go test -run '^$' -bench DecodeCompletionCold -benchtime 400x ./gateway/providers/openai/
func BenchmarkDecodeCompletionCold(b *testing.B) {
	wiretest.BenchDecodeCold(b, []byte(answer), decodeCompletion, hasUsage)
}

func hasUsage(c completion) bool { return c.Usage != nil }

// chatRequest is the request body as the adapter sent it by reflection:
// what appendRequest is held to.
type chatRequest struct {
	Model               string        `json:"model"`
	Messages            []llm.Message `json:"messages"`
	MaxCompletionTokens int           `json:"max_completion_tokens,omitempty"`
	Temperature         *float64      `json:"temperature,omitempty"`
	Stop                []string      `json:"stop,omitempty"`
	Stream              bool          `json:"stream,omitempty"`
	StreamOptions       *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options,omitempty"`
}

func reflectedRequest(req *llm.Request, stream bool) chatRequest {
	b := chatRequest{Model: req.Model, Messages: req.Messages, MaxCompletionTokens: req.MaxTokens,
		Temperature: req.Temperature, Stop: req.Stop, Stream: stream}
	if stream {
		// Always ask for the usage chunk: the gateway meters every stream.
		b.StreamOptions = &struct {
			IncludeUsage bool `json:"include_usage"`
		}{true}
	}
	return b
}

// FuzzAppendRequest holds appendRequest to json.Marshal of chatRequest:
// for any request, the two encode the same JSON object. The seeds run in
// every `go test`.
func FuzzAppendRequest(f *testing.F) {
	f.Add("gpt-4o-mini", "user", "What is the capital of France?", "", 0, 0.0, false, false)
	f.Add("m", "system", "a \"quoted\" <tag> & \\ \n\t\u2028 é 😀 \x00 \xff", "\n\n", 64, 0.2, true, true)
	f.Add("", "", "", "STOP", 1, 1e-7, true, false)
	f.Add("m", "assistant", "", "", -1, 2.0, false, true)
	f.Fuzz(func(t *testing.T, model, role, content, stop string, maxTokens int, temperature float64, setTemperature, stream bool) {
		req := &llm.Request{Model: model, Messages: []llm.Message{{Role: role, Content: content}, {Role: "user", Content: stop}}, MaxTokens: maxTokens}
		if setTemperature && !math.IsNaN(temperature) && !math.IsInf(temperature, 0) {
			req.Temperature = &temperature
		}
		if stop != "" {
			req.Stop = []string{stop, content}
		}
		want, err := json.Marshal(reflectedRequest(req, stream))
		require.NoError(t, err)
		got := appendRequest(nil, req, stream)
		var w, g any
		require.NoError(t, json.Unmarshal(want, &w))
		require.NoError(t, json.Unmarshal(got, &g), "%s", got)
		assert.Equal(t, w, g)
	})
}
