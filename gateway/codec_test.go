package gateway

import (
	"encoding/json"
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brownout-dev/brownout/gateway/llm"
)

// FuzzPlainPathAgreesWithFullPath: whatever body decodeChat's one-pass
// path takes, the full path decodes to the same request, parameters and
// error; the bodies it does not take go to the full path. The seeds run
// in every `go test`.
func FuzzPlainPathAgreesWithFullPath(f *testing.F) {
	for _, body := range []string{
		`{"model":"chat","messages":[{"role":"user","content":"What is the capital of France?"}]}`,
		`{"model":"chat","messages":[{"role":"system","content":""},{"role":"user","content":"hi"}],"max_tokens":5,"temperature":0.5,"stop":"x"}`,
		`{"model":"chat","messages":[{"role":"user","content":"hi"}],"max_completion_tokens":0}`,
		`{"model":"chat","messages":[{"role":"user","content":"hi"}],"temperature":3}`,
		`{"model":"chat","messages":[{"role":"user","content":"hi"}],"stop":["a","b","c","d","e"]}`,
		`{"model":"chat","messages":[{"role":"user","content":"hi"}],"stream":true,"stream_options":{"include_usage":true}}`,
		`{"model":"chat","messages":[{"role":"user","content":[{"type":"text","text":"hi"}]}]}`,
		`{"model":"chat","messages":[{"role":"user","content":null}]}`,
		`{"model":"chat","messages":[{"role":"tool","content":"x"}]}`,
		`{"model":"chat","messages":[{"role":"user","content":"hi"}]} trailing`,
		`{"model":"","messages":[]}`,
		`{"MODEL":"chat","Messages":[{"ROLE":"user","Content":"case"}]}`,
		`{"model":"chat","messages":[{"role":"user","content":"a"}],"messages":[{"role":"user","content":"b"}]}`,
		`{"model":"chat","messages":[{"role":"user","content":"a"}],"stream_options":{"include_usage":true},"stream_options":{}}`,
		// Found by fuzzing a one-pass path that matched names by case alone.
		`{"model":"0","messages":[{"role":"user","content":""}],"streAm":true,"000000000":{}}`,
	} {
		f.Add([]byte(body))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if _, _, ok := plain(body); !ok {
			return
		}
		in, req, err := decodeChat(body)
		fin, freq, ferr := decodeChatFully(body)
		require.Equal(t, ferr == nil, err == nil, "errors: %v; full path: %v", err, ferr)
		if err != nil {
			assert.Equal(t, ferr.Error(), err.Error())
			return
		}
		assert.Equal(t, freq, req)
		assert.Equal(t, fin.Model, in.Model)
		assert.Equal(t, fin.Stream, in.Stream)
		assert.Equal(t, fin.StreamOptions, in.StreamOptions)
	})
}

// TestPlainPathTakesTheCommonRequest: the requests SDKs send, every
// message's content a string, are read by the scanner (plain), not sent on
// to the full path (else the scanner would be dead code every test still
// passes through), into the parameters a reader of each body finds there.
func TestPlainPathTakesTheCommonRequest(t *testing.T) {
	two, half := 2, 0.5
	for _, c := range []struct {
		body string
		want chatRequest
		msgs int
	}{
		{`{"model":"chat","messages":[{"role":"user","content":"What is the capital of France?"}]}`,
			chatRequest{Model: "chat"}, 1},
		{` {"messages":[{"role":"system","content":"Be terse.","name":"s"},{"content":"Hi \"there\"\n\u00e9\ud83d\ude00","role":"user"}],` +
			`"model":"chat","max_tokens":2,"temperature":0.5,"stop":["a", "b"],"stream":true,"stream_options":{"include_usage":false},` +
			`"n":1,"top_p":0.9,"presence_penalty":-1.5e-1,"user":"u-1","logit_bias":null,"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object","properties":{}}}}]} `,
			chatRequest{Model: "chat", chatParams: chatParams{MaxTokens: &two, Temperature: &half, Stop: json.RawMessage(`["a", "b"]`), Stream: true,
				StreamOptions: &struct {
					IncludeUsage bool `json:"include_usage"`
				}{false}}}, 2},
		{`{"model":"chat","messages":[{"role":"developer","content":""}],"max_completion_tokens":null,"temperature":null,"stop":null}`,
			chatRequest{Model: "chat", chatParams: chatParams{Stop: json.RawMessage(`null`)}}, 1},
	} {
		in, msgs, ok := plain([]byte(c.body))
		require.True(t, ok, c.body)
		assert.Equal(t, c.want, *in, c.body)
		assert.Len(t, msgs, c.msgs, c.body)
	}
	_, msgs, _ := plain([]byte(`{"model":"chat","messages":[{"role":"system","content":"Be terse."},{"content":"Hi \"there\"\n\u00e9\ud83d\ude00","role":"user"}]}`))
	assert.Equal(t, []llm.Message{{Role: "system", Content: "Be terse."}, {Role: "user", Content: "Hi \"there\"\né😀"}}, msgs)
}

// FuzzAppendCompletion holds appendCompletion to json.Marshal: for any
// answer or stream chunk, the two encode the same JSON object. The seeds
// run in every `go test`.
func FuzzAppendCompletion(f *testing.F) {
	f.Add("0193b6a8-8c3e-7cc1-9f0a-1f1e5d2a3b4c", "gpt-4o-mini", "Paris", "stop", int64(25), int64(41), int64(3), int64(32), uint8(0))
	f.Add("x", "m", "a \"quoted\" <tag> & \\ \n\t\u2028 é 😀 \x00 \xff", "", int64(-1), int64(1<<62), int64(0), int64(0), uint8(1))
	f.Add("", "", "", "length", int64(0), int64(0), int64(0), int64(0), uint8(2))
	f.Add("id", "model", "", "", int64(0), int64(0), int64(0), int64(0), uint8(3))
	f.Fuzz(func(t *testing.T, id, model, content, finish string, prompt, completion, cached, reasoning int64, shape uint8) {
		c := &chatCompletion{ID: id, Object: "chat.completion", Created: prompt ^ completion, Model: model}
		switch shape % 4 {
		case 0: // the answer
			c.Choices = []chatChoice{{Message: &chatMessage{Role: "assistant", Content: &content}, FinishReason: &finish}}
			c.Usage = &chatUsage{PromptTokens: prompt, CompletionTokens: completion, TotalTokens: prompt + completion}
			c.Usage.PromptTokensDetails.CachedTokens = cached
			c.Usage.CompletionTokensDetails.ReasoningTokens = reasoning
		case 1: // a chunk's delta
			c.Object = "chat.completion.chunk"
			c.Choices = []chatChoice{{Index: int(cached), Delta: &chatMessage{Content: &content}}, {Delta: &chatMessage{Role: finish}, Logprobs: &struct{}{}}}
		case 2: // the usage chunk
			c.Choices = []chatChoice{}
			c.Usage = openaiUsage(llm.Usage{Input: prompt, Output: completion, Reasoning: reasoning, CacheRead: cached})
		case 3: // no choices
		}
		want, err := json.Marshal(c)
		require.NoError(t, err)
		got := appendCompletion(nil, c)
		var w, g any
		require.NoError(t, json.Unmarshal(want, &w))
		require.NoError(t, json.Unmarshal(got, &g), "%s", got)
		assert.Equal(t, w, g)
	})
}

// FuzzHashedRequest holds hashedRequest to json.Marshal of what
// requestHash hashed before it (and what the hashes in a shared store were
// made from): the same bytes, so a stored hash still matches its request.
// The seeds run in every `go test`.
func FuzzHashedRequest(f *testing.F) {
	f.Add("chat", "gpt-4o-mini", "user", "What is the capital of France?", "", 0, 0.0, uint8(0))
	f.Add("r<&>", "m\u2028", "system", "a \"quoted\" <tag> & \\ \n\t\r\b\f\x01\x1f\x7f \u2029 é 😀 \xff\xc3", "\n\n", 64, 0.2, uint8(7))
	f.Add("", "", "", "", "STOP", -1, 1e-7, uint8(3))
	f.Add("c", "m", "assistant", "x", "", 1<<40, 1e21, uint8(5))
	f.Add("c", "m", "assistant", "x", "", 1, 123456789.125, uint8(1))
	f.Fuzz(func(t *testing.T, route, model, role, content, stop string, maxTokens int, temperature float64, shape uint8) {
		if math.IsNaN(temperature) || math.IsInf(temperature, 0) {
			return // no JSON body decodes to them
		}
		req := &Request{Route: route, LLM: llm.Request{Model: model, MaxTokens: maxTokens}}
		if shape&1 != 0 {
			req.LLM.Messages = []llm.Message{{Role: role, Content: content}, {Role: "user", Content: stop}}
		}
		if shape&2 != 0 {
			req.LLM.Temperature = &temperature
		}
		if shape&4 != 0 {
			req.LLM.Stop = []string{stop, content}
		}
		stream, includeUsage := shape&8 != 0, shape&16 != 0
		want, err := marshaledHashInput(req, stream, includeUsage)
		require.NoError(t, err)
		assert.Equal(t, string(want), string(hashedRequest(nil, req, stream, includeUsage)))
	})
}

// marshaledHashInput is what requestHash hashed before hashedRequest, and
// what the hashes kept in a shared store were made from.
func marshaledHashInput(req *Request, stream, includeUsage bool) ([]byte, error) {
	return json.Marshal(struct {
		Route        string
		LLM          any
		Stream       bool
		IncludeUsage bool
	}{req.Route, req.LLM, stream, includeUsage})
}
