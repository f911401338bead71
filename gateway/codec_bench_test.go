package gateway

import (
	"crypto/sha256"
	"encoding/json"
	"testing"

	jsonexp "github.com/go-json-experiment/json/v1"

	"github.com/brownout-dev/brownout/gateway/llm"
	"github.com/brownout-dev/brownout/internal/coldbench"
)

// plainChat is the common request as a reflection decoder reads it, every
// message's content a string: what plain reads with a scanner.
type plainChat struct {
	Model    string `json:"model"`
	Messages []struct {
		Role    string  `json:"role"`
		Content *string `json:"content"`
	} `json:"messages"`
	chatParams
}

// decodeSamples are what the gateway decodes on every request: a client's
// chat request (into the one-pass path's type) and a vendor's answer (an
// OpenAI chat completion, into the gateway's own type of that shape), each
// with the check that it decoded, and scan, the same decode by the
// scanner the gateway reads it with (nil when that is in another package:
// the answer's is providers/openai's BenchmarkDecodeCompletion).
var decodeSamples = []struct {
	name   string
	data   []byte
	decode func(unmarshal func([]byte, any) error, data []byte) bool
	scan   func(data []byte) bool
}{
	{"request", []byte(`{"model":"chat","messages":[{"role":"system","content":"You are terse."},{"role":"user","content":"What is the capital of France? One word."}],"max_tokens":64,"temperature":0.2}`),
		func(unmarshal func([]byte, any) error, data []byte) bool {
			var p plainChat
			return unmarshal(data, &p) == nil && len(p.Messages) == 2
		},
		func(data []byte) bool {
			_, msgs, ok := plain(data)
			return ok && len(msgs) == 2
		}},
	{"answer", []byte(`{"id":"chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT","object":"chat.completion","created":1764331200,"model":"gpt-4o-mini-2024-07-18",` +
		`"choices":[{"index":0,"message":{"role":"assistant","content":"Paris","refusal":null,"annotations":[]},"logprobs":null,"finish_reason":"stop"}],` +
		`"usage":{"prompt_tokens":25,"completion_tokens":1,"total_tokens":26,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},` +
		`"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}},` +
		`"service_tier":"default","system_fingerprint":"fp_560af6e559"}`),
		func(unmarshal func([]byte, any) error, data []byte) bool {
			var a chatCompletion
			return unmarshal(data, &a) == nil && a.Usage != nil && a.Usage.PromptTokens == 25
		}, nil},
}

// decodeCodecs are the decoders compared: encoding/json, and
// go-json-experiment/json/v1 (the same semantics on encoding/json/v2's
// engine).
var decodeCodecs = []struct {
	name      string
	unmarshal func([]byte, any) error
}{{"encoding-json", json.Unmarshal}, {"json-experiment-v1", func(b []byte, v any) error { return jsonexp.Unmarshal(b, v) }}}

// decoder is one way of decoding a sample, by name.
type decoder struct {
	name   string
	decode func([]byte) bool
}

// decoders returns the decoders of sample compared: the scanner, if it has
// one, then each of decodeCodecs.
func decoders(sample int) []decoder {
	s := decodeSamples[sample]
	var out []decoder
	if s.scan != nil {
		out = append(out, decoder{"scanner", s.scan})
	}
	for _, c := range decodeCodecs {
		out = append(out, decoder{c.name, func(data []byte) bool { return s.decode(c.unmarshal, data) }})
	}
	return out
}

// BenchmarkDecodeCodecs decodes decodeSamples with each of their
// decoders, side by side in one run.
//
//	go test -run '^$' -bench DecodeCodecs -benchmem ./gateway/
func BenchmarkDecodeCodecs(b *testing.B) {
	for i, s := range decodeSamples {
		for _, c := range decoders(i) {
			b.Run(s.name+"/"+c.name, func(b *testing.B) {
				b.ReportAllocs()
				for range b.N {
					if !c.decode(s.data) {
						b.Fatalf("%s did not decode", s.name)
					}
				}
			})
		}
	}
}

// BenchmarkDecodeCodecsCold is BenchmarkDecodeCodecs with the caches
// emptied before each decode (32 MiB written), as the gateway's code finds
// them when a request comes a millisecond after the last (see
// BenchmarkSpacedInMemory): a codec faster warm need not be faster cold.
// Its ns/op is the median of the cold decodes alone.
//
//	go test -run '^$' -bench DecodeCodecsCold -benchtime 400x ./gateway/
func BenchmarkDecodeCodecsCold(b *testing.B) {
	for i, s := range decodeSamples {
		for _, c := range decoders(i) {
			b.Run(s.name+"/"+c.name, func(b *testing.B) {
				coldbench.Run(b, func() bool { return c.decode(s.data) })
			})
		}
	}
}

// encodeSamples are what the gateway encodes on every request: its answer
// to the client (a chat completion), and one stream chunk.
func encodeSamples() []struct {
	name string
	v    *chatCompletion
} {
	content, finish := "Paris", "stop"
	answer := &chatCompletion{ID: "chatcmpl-0193b6a8-8c3e-7cc1-9f0a-1f1e5d2a3b4c", Object: "chat.completion", Created: 1764331200, Model: "gpt-4o-mini",
		Choices: []chatChoice{{Message: &chatMessage{Role: "assistant", Content: &content}, FinishReason: &finish}},
		Usage:   &chatUsage{PromptTokens: 25, CompletionTokens: 1, TotalTokens: 26}}
	chunk := &chatCompletion{ID: answer.ID, Object: "chat.completion.chunk", Created: answer.Created, Model: answer.Model,
		Choices: []chatChoice{{Delta: &chatMessage{Content: &content}}}}
	return []struct {
		name string
		v    *chatCompletion
	}{{"answer", answer}, {"chunk", chunk}}
}

// encodeCodecs are the encoders compared: appendCompletion (the gateway's),
// encoding/json, and go-json-experiment/json/v1.
var encodeCodecs = []struct {
	name    string
	marshal func(*chatCompletion) ([]byte, error)
}{
	{"appender", func(c *chatCompletion) ([]byte, error) { return appendCompletion(make([]byte, 0, 512), c), nil }},
	{"encoding-json", func(c *chatCompletion) ([]byte, error) { return json.Marshal(c) }},
	{"json-experiment-v1", func(c *chatCompletion) ([]byte, error) { return jsonexp.Marshal(c) }},
}

// BenchmarkEncodeCodecs encodes encodeSamples with each of encodeCodecs,
// side by side in one run.
//
//	go test -run '^$' -bench 'EncodeCodecs$' -benchmem ./gateway/
func BenchmarkEncodeCodecs(b *testing.B) {
	for _, v := range encodeSamples() {
		want, err := json.Marshal(v.v)
		if err != nil {
			b.Fatal(err)
		}
		for _, c := range encodeCodecs {
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

// BenchmarkEncodeCodecsCold is BenchmarkEncodeCodecs with the caches
// emptied before each encode, as BenchmarkDecodeCodecsCold does. Its
// ns/op is the median of the cold encodes alone.
//
//	go test -run '^$' -bench EncodeCodecsCold -benchtime 400x ./gateway/
func BenchmarkEncodeCodecsCold(b *testing.B) {
	for _, v := range encodeSamples() {
		for _, c := range encodeCodecs {
			b.Run(v.name+"/"+c.name, func(b *testing.B) {
				coldbench.Run(b, func() bool {
					got, err := c.marshal(v.v)
					return err == nil && len(got) > 0
				})
			})
		}
	}
}

// BenchmarkRequestHashCold hashes a request for its Idempotency-Key as
// requestHash does (hashedRequest) and as it did before (json.Marshal of
// the same value: the same bytes, FuzzHashedRequest), the caches emptied
// before each as in BenchmarkDecodeCodecsCold.
//
//	go test -run '^$' -bench RequestHashCold -benchtime 400x ./gateway/
func BenchmarkRequestHashCold(b *testing.B) {
	temperature := 0.2
	req := &Request{Route: "chat", LLM: llm.Request{Model: "gpt-4o-mini", MaxTokens: 64, Temperature: &temperature,
		Messages: []llm.Message{{Role: "system", Content: "You are terse."}, {Role: "user", Content: "What is the capital of France? One word."}}}}
	for _, h := range []struct {
		name string
		hash func() []byte
	}{
		{"appender", func() []byte { return requestHash(req, false, false) }},
		{"encoding-json", func() []byte {
			data, _ := marshaledHashInput(req, false, false)
			sum := sha256.Sum256(data)
			return sum[:]
		}},
	} {
		b.Run(h.name, func(b *testing.B) {
			coldbench.Run(b, func() bool { return len(h.hash()) == sha256.Size })
		})
	}
}
