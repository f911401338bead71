package anthropic

import (
	"encoding/json"
	"math"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brownout-dev/brownout/gateway/llm"
	"github.com/brownout-dev/brownout/gateway/providers/internal/wiretest"
	"github.com/brownout-dev/brownout/internal/testmain"
)

// TestMain shuffles the tests' order (internal/testmain).
func TestMain(m *testing.M) { os.Exit(testmain.Run(m)) }

// answer is a message as Anthropic sends it, every field it sends today,
// with a thinking block before the text and cache writes of both lifetimes.
const answer = `{"id":"msg_01XFDUDYJgAACzvnptvVoYEL","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929",` +
	`"content":[{"type":"thinking","thinking":"The capital of France is Paris.","signature":"EqQBCkYIBxgCKkDm6bWJ=="},` +
	`{"type":"text","text":"Paris","citations":null}],"stop_reason":"end_turn","stop_sequence":null,` +
	`"usage":{"input_tokens":25,"cache_creation_input_tokens":10,"cache_read_input_tokens":5,` +
	`"cache_creation":{"ephemeral_5m_input_tokens":4,"ephemeral_1h_input_tokens":6},"output_tokens":41,` +
	`"output_tokens_details":{"thinking_tokens":32},"service_tier":"standard","server_tool_use":null}}`

// events is a streamed message's events as Anthropic sends them.
var events = []string{
	`{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":25,"cache_creation_input_tokens":0,"cache_read_input_tokens":5,"cache_creation":{"ephemeral_5m_input_tokens":0,"ephemeral_1h_input_tokens":0},"output_tokens":1,"service_tier":"standard"}}}`,
	`{"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":"","signature":""}}`,
	`{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"The capital"}}`,
	`{"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"EqQBCkYIBxgCKkDm6bWJ=="}}`,
	`{"type":"content_block_stop","index":0}`,
	`{"type":"content_block_start","index":1,"content_block":{"type":"text","text":""}}`,
	`{"type":"ping"}`,
	`{"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"Paris"}}`,
	`{"type":"content_block_stop","index":1}`,
	`{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":41,"output_tokens_details":{"thinking_tokens":32}}}`,
	`{"type":"message_stop"}`,
	`{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`,
}

// TestScannerTakesTheCommonMessage: the messages the vendor sends are read
// by the scanner, not sent on to Decode (else the scanner would be dead
// code that every test still passes through), into the fields a reader of
// the body above finds there.
func TestScannerTakesTheCommonMessage(t *testing.T) {
	for _, body := range []string{
		answer,
		`{"id":"msg_2","type":"message","role":"assistant","model":"m","content":[{"type":"text","text":"x"},{"type":"tool_use","id":"toolu_1","name":"get","input":{"a":[1,2.5,{"b":null}]}}],"stop_reason":"tool_use","stop_sequence":null,"usage":{"input_tokens":1,"cache_creation_input_tokens":null,"output_tokens":2}}`,
	} {
		_, ok := scanMessage([]byte(body))
		require.True(t, ok, body)
	}
	m, err := decodeMessage([]byte(answer))
	require.NoError(t, err)
	require.NotNil(t, m.Usage)
	assert.Equal(t, "msg_01XFDUDYJgAACzvnptvVoYEL", m.ID)
	assert.Equal(t, "message", m.Type)
	assert.Equal(t, "claude-sonnet-4-5-20250929", m.Model)
	assert.Equal(t, "end_turn", m.StopReason)
	assert.Equal(t, []block{{Type: "thinking"}, {Type: "text", Text: "Paris"}}, m.Content)
	input, output := int64(25), int64(41)
	assert.Equal(t, usage{InputTokens: &input, OutputTokens: &output, CacheCreationInputTokens: 10, CacheReadInputTokens: 5,
		CacheCreation: &cacheCreation{Ephemeral5m: 4, Ephemeral1h: 6}, OutputTokensDetails: &outputDetails{ThinkingTokens: 32}}, *m.Usage)
}

// TestScannerTakesTheCommonEvents: the events Anthropic streams are read
// by the scanner, not sent on to Decode.
func TestScannerTakesTheCommonEvents(t *testing.T) {
	for _, data := range events {
		_, ok := scanEvent([]byte(data))
		assert.True(t, ok, data)
	}
}

// FuzzDecodeMessage holds the scanner to Decode: a body either decodes to
// the same message by both, or fails by both.
func FuzzDecodeMessage(f *testing.F) {
	for _, s := range []string{
		answer,
		`{"type":"message","content":[{"type":"text","text":"x"}],"usage":{"input_tokens":1,"output_tokens":1}}`,
		`{"content":null,"usage":{"input_tokens":null,"output_tokens":1,"cache_creation":null,"output_tokens_details":null}}`,
		`{"Usage":{"input_tokens":1},"usage":{"input_tokens":2}}`,
		`{"usage":{"Input_Tokens":7,"input-tokens":8,"inputtokens":9}}`,
		`{"usage":{"input_tokens":1.0}}`,
		`{"usage":{"output_tokens":1e2}}`,
		`{"usage":{"cache_read_input_tokens":-3}}`,
		`{"usage":{"input_tokens":99999999999999999999}}`,
		`{"usage":{"cache_creation_input_tokens":null}}`,
		`{"usage":{"cache_creation":{"ephemeral_1h_input_tokens":1,"ephemeral_1h_input_tokens":2}}}`,
		`{"usage":{"cache_creation":{"Ephemeral_1h_Input_Tokens":6}}}`,
		`{"usage":{"output_tokens_details":{"thinking_tokens":null}}}`,
		`{"id":"a","id":"b"}`,
		`{"id":null,"stop_reason":null}`,
		`{"id":"\u0069\ud83d\ude00","\u006dodel":"m"}`,
		"{\"id\":\"\xff\"}",
		`{"content":[null,{"type":"text","text":null}]}`,
		`{"content":[{"type":"text","text":"a","text":"b"}]}`,
		`{"content":[{"TYPE":"text","Text":"a"}]}`,
		`{"content":[{"type":"text","text":"x"}]} {}`,
		`{"content":{}}`,
		`{"content":[{"type":"text"}],"content":[{"text":"y"}]}`,
		`{"ſtop_reason":1,"K":2}`,
		`[]`, `null`, ``, `{`, `{"id":"x"`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) { wiretest.AgreesWithDecode(t, body, decodeMessage) })
}

// FuzzDecodeEvent holds the scanner to Decode for a stream's events, as
// FuzzDecodeMessage does for messages.
func FuzzDecodeEvent(f *testing.F) {
	for _, s := range events {
		f.Add([]byte(s))
	}
	for _, s := range []string{
		`{"type":"message_start","message":null}`,
		`{"type":"message_start","message":{"usage":null}}`,
		`{"type":"message_start","message":{"usage":{"input_tokens":1},"usage":{"output_tokens":1}}}`,
		`{"type":"message_start","message":{"Usage":{"input_tokens":1}}}`,
		`{"type":"content_block_delta","delta":null}`,
		`{"type":"content_block_delta","delta":{"type":"text_delta","text":null}}`,
		`{"type":"content_block_delta","delta":{"type":"text_delta","TEXT":"a"}}`,
		`{"type":"message_delta","delta":{"stop_reason":null},"usage":{"output_tokens":null}}`,
		`{"type":"error","error":null}`,
		`{"type":"error","error":{"message":null,"type":"api_error","details":{"a":[true,false]}}}`,
		`{"type":"ping","type":"message_stop"}`,
		`{"Type":"message_stop"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) { wiretest.AgreesWithDecode(t, data, decodeEvent) })
}

// BenchmarkDecodeMessage decodes the message above with the scanner and
// with Decode, side by side in one run.
//
//	go test -run '^$' -bench 'DecodeMessage$' -benchmem ./gateway/providers/anthropic/
func BenchmarkDecodeMessage(b *testing.B) {
	wiretest.BenchDecode(b, []byte(answer), decodeMessage, hasUsage)
}

// BenchmarkDecodeMessageCold is BenchmarkDecodeMessage with the caches
// emptied before each decode (coldbench).
//
//	go test -run '^$' -bench DecodeMessageCold -benchtime 400x ./gateway/providers/anthropic/
func BenchmarkDecodeMessageCold(b *testing.B) {
	wiretest.BenchDecodeCold(b, []byte(answer), decodeMessage, hasUsage)
}

func hasUsage(m messageResponse) bool { return m.Usage != nil }

// BenchmarkDecodeEvent decodes the event a stream sends most, a text
// delta, with the scanner and with Decode, side by side in one run.
//
//	go test -run '^$' -bench DecodeEvent -benchmem ./gateway/providers/anthropic/
func BenchmarkDecodeEvent(b *testing.B) {
	wiretest.BenchDecode(b, []byte(events[7]), decodeEvent, func(e event) bool { return e.Delta != nil && e.Delta.Text == "Paris" })
}

// FuzzAppendRequest holds appendRequest to json.Marshal of the same
// messagesRequest: for any request, the two encode the same JSON object.
// The seeds run in every `go test`.
func FuzzAppendRequest(f *testing.F) {
	f.Add("claude-sonnet-4-5", "user", "What is the capital of France?", "", "", 0, 0.0, false, false, 0, true)
	f.Add("m", "assistant", "a \"quoted\" <tag> & \\ \n\t\u2028 é 😀 \x00 \xff", "Be brief.\n\nAnswer in French.", "\n\n", 64, 0.2, true, true, 1024, true)
	f.Add("", "", "", "", "STOP", 1, 1e-7, true, false, -1, false)
	f.Add("m", "user", "", "s", "", -1, 2.0, false, true, 0, false)
	f.Fuzz(func(t *testing.T, model, role, content, system, stop string, maxTokens int, temperature float64, setTemperature, stream bool, budget int, messages bool) {
		r := messagesRequest{Model: model, MaxTokens: maxTokens, System: system, Stream: stream}
		if messages {
			r.Messages = []llm.Message{{Role: role, Content: content}, {Role: "user", Content: stop}}
		}
		if setTemperature && !math.IsNaN(temperature) && !math.IsInf(temperature, 0) {
			r.Temperature = &temperature
		}
		if stop != "" {
			r.StopSequences = []string{stop, content}
		}
		if budget != 0 {
			r.Thinking = &thinking{Type: "enabled", BudgetTokens: budget}
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
//	go test -run '^$' -bench AppendRequest -benchmem ./gateway/providers/anthropic/
func BenchmarkAppendRequest(b *testing.B) {
	temperature := 0.2
	a := New(Config{ThinkingBudget: map[string]int{"claude-sonnet-4-5": 1024}})
	r := a.body(&llm.Request{Model: "claude-sonnet-4-5", MaxTokens: 64, Temperature: &temperature, Messages: []llm.Message{
		{Role: "system", Content: "Answer in one word."}, {Role: "user", Content: "What is the capital of France?"}}}, false)
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
