package gateway

import (
	"encoding/json"
	"testing"

	jsonexp "github.com/go-json-experiment/json/v1"
)

// BenchmarkDecodeCodecs decodes what the gateway decodes on every request,
// a client's chat request (into the one-pass path's type) and a vendor's
// answer (an OpenAI chat completion, into the gateway's own type of that
// shape), with encoding/json and with go-json-experiment/json/v1 (the same
// semantics on encoding/json/v2's engine), side by side in one run.
//
//	go test -run '^$' -bench DecodeCodecs -benchmem ./gateway/
func BenchmarkDecodeCodecs(b *testing.B) {
	request := []byte(`{"model":"chat","messages":[{"role":"system","content":"You are terse."},{"role":"user","content":"What is the capital of France? One word."}],"max_tokens":64,"temperature":0.2}`)
	answer := []byte(`{"id":"chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT","object":"chat.completion","created":1764331200,"model":"gpt-4o-mini-2024-07-18",` +
		`"choices":[{"index":0,"message":{"role":"assistant","content":"Paris","refusal":null,"annotations":[]},"logprobs":null,"finish_reason":"stop"}],` +
		`"usage":{"prompt_tokens":25,"completion_tokens":1,"total_tokens":26,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},` +
		`"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}},` +
		`"service_tier":"default","system_fingerprint":"fp_560af6e559"}`)
	codecs := []struct {
		name      string
		unmarshal func([]byte, any) error
	}{{"encoding-json", json.Unmarshal}, {"json-experiment-v1", func(b []byte, v any) error { return jsonexp.Unmarshal(b, v) }}}
	for _, c := range codecs {
		b.Run("request/"+c.name, func(b *testing.B) {
			b.ReportAllocs()
			for range b.N {
				var p plainChat
				if err := c.unmarshal(request, &p); err != nil || len(p.Messages) != 2 {
					b.Fatal(err, p)
				}
			}
		})
	}
	for _, c := range codecs {
		b.Run("answer/"+c.name, func(b *testing.B) {
			b.ReportAllocs()
			for range b.N {
				var a chatCompletion
				if err := c.unmarshal(answer, &a); err != nil || a.Usage == nil || a.Usage.PromptTokens != 25 {
					b.Fatal(err, a)
				}
			}
		})
	}
}

// BenchmarkEncodeCodecs encodes what the gateway encodes on every request,
// its answer to the client (a chat completion) and one stream chunk, with
// encoding/json and with go-json-experiment/json/v1, side by side in one
// run.
//
//	go test -run '^$' -bench EncodeCodecs -benchmem ./gateway/
func BenchmarkEncodeCodecs(b *testing.B) {
	content, finish := "Paris", "stop"
	answer := &chatCompletion{ID: "chatcmpl-0193b6a8-8c3e-7cc1-9f0a-1f1e5d2a3b4c", Object: "chat.completion", Created: 1764331200, Model: "gpt-4o-mini",
		Choices: []chatChoice{{Message: &chatMessage{Role: "assistant", Content: &content}, FinishReason: &finish}},
		Usage:   &chatUsage{PromptTokens: 25, CompletionTokens: 1, TotalTokens: 26}}
	chunk := &chatCompletion{ID: answer.ID, Object: "chat.completion.chunk", Created: answer.Created, Model: answer.Model,
		Choices: []chatChoice{{Delta: &chatMessage{Content: &content}}}}
	codecs := []struct {
		name    string
		marshal func(any) ([]byte, error)
	}{{"encoding-json", json.Marshal}, {"json-experiment-v1", func(v any) ([]byte, error) { return jsonexp.Marshal(v) }}}
	for _, v := range []struct {
		name string
		v    any
	}{{"answer", answer}, {"chunk", chunk}} {
		want, err := json.Marshal(v.v)
		if err != nil {
			b.Fatal(err)
		}
		for _, c := range codecs {
			b.Run(v.name+"/"+c.name, func(b *testing.B) {
				b.ReportAllocs()
				for range b.N {
					got, err := c.marshal(v.v)
					if err != nil || len(got) != len(want) {
						b.Fatalf("%s: %v", got, err)
					}
				}
			})
		}
	}
}
