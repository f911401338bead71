package gemini

import (
	"encoding/json"
	"math"
	"os"
	"testing"

	"github.com/brownout-dev/brownout/gateway/llm"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brownout-dev/brownout/gateway/providers/internal/wiretest"
	"github.com/brownout-dev/brownout/internal/testmain"
)

// TestMain shuffles the tests' order (internal/testmain).
func TestMain(m *testing.M) { os.Exit(testmain.Run(m)) }

// answer is a generateContent answer as Gemini sends it, every field it
// sends today, with a thought summary before the text.
const answer = `{"candidates":[{"content":{"parts":[{"text":"**Recalling the capital**\n\nFrance's capital is Paris.","thought":true},` +
	`{"text":"Paris","thoughtSignature":"CiQB0e2Kb7Yz"}],"role":"model"},"finishReason":"STOP","index":0,` +
	`"safetyRatings":[{"category":"HARM_CATEGORY_HARASSMENT","probability":"NEGLIGIBLE"}],"avgLogprobs":-0.25}],` +
	`"usageMetadata":{"promptTokenCount":9,"candidatesTokenCount":1,"totalTokenCount":35,"cachedContentTokenCount":4,` +
	`"promptTokensDetails":[{"modality":"TEXT","tokenCount":9}],"cacheTokensDetails":[{"modality":"TEXT","tokenCount":4}],"thoughtsTokenCount":25},` +
	`"modelVersion":"gemini-2.5-flash","responseId":"mSYhaOzVNeKqz7IPkqHA4QQ"}`

// chunks are a streamed answer's chunks as Gemini sends them.
var chunks = []string{
	`{"candidates":[{"content":{"parts":[{"text":"Par"}],"role":"model"},"index":0}],"usageMetadata":{"promptTokenCount":9,"totalTokenCount":9,"promptTokensDetails":[{"modality":"TEXT","tokenCount":9}]},"modelVersion":"gemini-2.5-flash","responseId":"r1"}`,
	`{"candidates":[{"content":{"parts":[{"text":"is"}],"role":"model"},"finishReason":"STOP","index":0}],"usageMetadata":{"promptTokenCount":9,"candidatesTokenCount":2,"totalTokenCount":36,"thoughtsTokenCount":25},"modelVersion":"gemini-2.5-flash","responseId":"r1"}`,
}

// TestScannerTakesTheCommonAnswer: the answers and chunks the vendor sends
// are read by the scanner, not sent on to Decode (else the scanner would
// be dead code that every test still passes through), into the fields a
// reader of the body above finds there; an error goes to Decode.
func TestScannerTakesTheCommonAnswer(t *testing.T) {
	for _, body := range append([]string{answer}, chunks...) {
		_, ok := scanResponse([]byte(body))
		require.True(t, ok, body)
	}
	_, ok := scanResponse([]byte(`{"error":{"code":429,"message":"Resource exhausted","status":"RESOURCE_EXHAUSTED"}}`))
	assert.False(t, ok, "an error is Decode's")
	r, err := decodeResponse([]byte(answer))
	require.NoError(t, err)
	require.NotNil(t, r.UsageMetadata)
	assert.Equal(t, []candidate{{Content: &content{Role: "model", Parts: []part{
		{Text: "**Recalling the capital**\n\nFrance's capital is Paris.", Thought: true}, {Text: "Paris"}}}, FinishReason: "STOP"}}, r.Candidates)
	prompt := int64(9)
	assert.Equal(t, usageMetadata{PromptTokenCount: &prompt, CandidatesTokenCount: 1, ThoughtsTokenCount: 25, CachedContentTokenCount: 4}, *r.UsageMetadata)
	assert.Equal(t, "gemini-2.5-flash", r.ModelVersion)
	assert.Equal(t, "mSYhaOzVNeKqz7IPkqHA4QQ", r.ResponseID)
}

// FuzzDecodeResponse holds the scanner to Decode: a body either decodes
// to the same response by both, or fails by both.
func FuzzDecodeResponse(f *testing.F) {
	for _, s := range append([]string{answer}, chunks...) {
		f.Add([]byte(s))
	}
	for _, s := range []string{
		`{"candidates":null,"usageMetadata":null}`,
		`{"candidates":[null,{"content":null,"finishReason":null}]}`,
		`{"candidates":[{"content":{"parts":null,"role":null}}]}`,
		`{"candidates":[{"content":{"parts":[null,{"text":null,"thought":null}]}}]}`,
		`{"candidates":[{"content":{"parts":[{"text":"a","thought":false,"thought":true}]}}]}`,
		`{"candidates":[{"content":{"parts":[{"Text":"a","THOUGHT":true}]}}]}`,
		`{"candidates":[{"content":{"parts":[{"text":"a"}]}}],"candidates":[{"finishReason":"STOP"}]}`,
		`{"candidates":{}}`,
		`{"usageMetadata":{"promptTokenCount":null,"candidatesTokenCount":null}}`,
		`{"usageMetadata":{"promptTokenCount":1.0}}`,
		`{"usageMetadata":{"thoughtsTokenCount":1e2}}`,
		`{"usageMetadata":{"cachedContentTokenCount":-4}}`,
		`{"usageMetadata":{"promptTokenCount":99999999999999999999}}`,
		`{"usageMetadata":{"PromptTokenCount":3,"prompttokencount":4}}`,
		`{"UsageMetadata":{"promptTokenCount":1},"usageMetadata":{"promptTokenCount":2}}`,
		`{"responseId":"a","responseId":"b"}`,
		`{"responseId":null,"modelVersion":"m"}`,
		`{"\u0072esponseId":"r","modelVersion":"\u006d\ud83d\ude00"}`,
		"{\"modelVersion\":\"\xff\"}",
		`{"error":{"code":429,"message":"m","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"7s"}]}}`,
		`{"error":null}`,
		`{"Error":{"code":500}}`,
		`{"candidates":[]} {}`,
		`[]`, `null`, ``, `{`, `{"responseId":"x"`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) { wiretest.AgreesWithDecode(t, body, decodeResponse) })
}

// BenchmarkDecodeResponse decodes the answer above with the scanner and
// with Decode, side by side in one run.
//
//	go test -run '^$' -bench 'DecodeResponse$' -benchmem ./gateway/providers/gemini/
func BenchmarkDecodeResponse(b *testing.B) {
	wiretest.BenchDecode(b, []byte(answer), decodeResponse, hasUsage)
}

// BenchmarkDecodeResponseCold is BenchmarkDecodeResponse with the caches
// emptied before each decode (coldbench).
//
//	go test -run '^$' -bench DecodeResponseCold -benchtime 400x ./gateway/providers/gemini/
func BenchmarkDecodeResponseCold(b *testing.B) {
	wiretest.BenchDecodeCold(b, []byte(answer), decodeResponse, hasUsage)
}

func hasUsage(r generateResponse) bool { return r.UsageMetadata != nil }

// FuzzAppendRequest holds appendRequest to json.Marshal of the request
// body builds: for any request, the two encode the same JSON object. The
// seeds run in every `go test`.
func FuzzAppendRequest(f *testing.F) {
	f.Add("user", "What is the capital of France?", "", "", 0, 0.0, false, false)
	f.Add("assistant", "a \"quoted\" <tag> & \\ \n\t\u2028 é 😀 \x00 \xff", "Be brief.", "\n\n", 64, 0.2, true, true)
	f.Add("system", "", "", "STOP", 1, 1e-7, true, false)
	f.Add("developer", "x", "", "", -1, 2.0, false, true)
	f.Add("user", "", "", "", 0, 0.0, false, true)
	f.Fuzz(func(t *testing.T, role, text, system, stop string, maxTokens int, temperature float64, setTemperature, thought bool) {
		req := &llm.Request{Messages: []llm.Message{{Role: role, Content: text}}, MaxTokens: maxTokens}
		if system != "" {
			req.Messages = append(req.Messages, llm.Message{Role: "system", Content: system})
		}
		if setTemperature && !math.IsNaN(temperature) && !math.IsInf(temperature, 0) {
			req.Temperature = &temperature
		}
		if stop != "" {
			req.Stop = []string{stop, text}
		}
		r := body(req)
		if thought && len(r.Contents) > 0 {
			// body sends no thought parts; appendContent writes them as
			// Marshal does all the same.
			r.Contents[0].Parts = append(r.Contents[0].Parts, part{Text: stop, Thought: true})
		}
		want, err := json.Marshal(r)
		require.NoError(t, err)
		got := appendRequest(nil, &r)
		var w, g any
		require.NoError(t, json.Unmarshal(want, &w))
		require.NoError(t, json.Unmarshal(got, &g), "%s", got)
		assert.Equal(t, w, g)
	})
}

// BenchmarkAppendRequest encodes a request's body with appendRequest and
// with json.Marshal, side by side in one run.
//
//	go test -run '^$' -bench AppendRequest -benchmem ./gateway/providers/gemini/
func BenchmarkAppendRequest(b *testing.B) {
	temperature := 0.2
	r := body(&llm.Request{Model: "gemini-2.5-flash", MaxTokens: 64, Temperature: &temperature, Messages: []llm.Message{
		{Role: "system", Content: "Answer in one word."}, {Role: "user", Content: "What is the capital of France?"}}})
	b.Run("appender", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			_ = appendRequest(make([]byte, 0, 512), &r) // as post sizes it
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			if _, err := json.Marshal(r); err != nil {
				b.Fatal(err)
			}
		}
	})
}
