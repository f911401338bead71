package providers_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brownout-dev/brownout/fakeprovider"
	"github.com/brownout-dev/brownout/gateway/llm"
	"github.com/brownout-dev/brownout/gateway/providers/anthropic"
	"github.com/brownout-dev/brownout/gateway/providers/gemini"
	"github.com/brownout-dev/brownout/gateway/providers/openai"
)

var thinker = fakeprovider.Model{
	Answers:         []fakeprovider.Answer{{Text: "The capital of France is Paris.", Tokens: 8}},
	ReasoningTokens: fakeprovider.Fixed(24),
}

// onFake returns an adapter of vendor in front of a fake with faults; the
// model "thinker" answers in 8 tokens after 24 reasoning tokens.
func onFake(t *testing.T, vendor fakeprovider.Vendor, faults ...fakeprovider.Fault) (llm.Provider, *fakeprovider.Server) {
	t.Helper()
	s, err := fakeprovider.NewUnstartedServer(fakeprovider.Config{Vendor: vendor, Seed: 1, Faults: faults,
		Models: map[string]fakeprovider.Model{"thinker": thinker}})
	require.NoError(t, err)
	t.Cleanup(s.Close)
	c := s.Client()
	switch vendor {
	case fakeprovider.Anthropic:
		return anthropic.New(anthropic.Config{BaseURL: s.URL, APIKey: "k", Client: c, ThinkingBudget: map[string]int{"thinker": 2048}}), s
	case fakeprovider.Gemini:
		return gemini.New(gemini.Config{BaseURL: s.URL, APIKey: "k", Client: c}), s
	}
	return openai.New(openai.Config{BaseURL: s.URL, APIKey: "k", Client: c}), s
}

var vendors = []fakeprovider.Vendor{fakeprovider.Anthropic, fakeprovider.Gemini, fakeprovider.OpenAI}

var ask = &llm.Request{Model: "thinker", Messages: []llm.Message{{Role: "system", Content: "Be brief."}, {Role: "user", Content: "What is the capital of France?"}}}

// drain reads a stream to its end, returning the text, the final chunk and the error.
func drain(s llm.Stream) (string, llm.Chunk, error) {
	var text strings.Builder
	for {
		c, err := s.Next()
		if errors.Is(err, io.EOF) {
			return text.String(), llm.Chunk{}, errors.New("EOF before the final chunk")
		}
		if err != nil {
			return text.String(), llm.Chunk{}, err
		}
		text.WriteString(c.Content)
		if c.Final {
			if _, err := s.Next(); !errors.Is(err, io.EOF) {
				return text.String(), c, errors.New("Next after the final chunk did not return io.EOF")
			}
			return text.String(), c, nil
		}
	}
}

func TestAdaptersAgainstFakes(t *testing.T) {
	// "Be brief." + "What is the capital of France?" = 39 characters: 10 tokens.
	want := llm.Usage{Input: 10, Output: 8, Reasoning: 24}
	for _, v := range vendors {
		t.Run(string(v), func(t *testing.T) {
			p, s := onFake(t, v)
			resp, err := p.Complete(context.Background(), ask)
			require.NoError(t, err)
			assert.Equal(t, "The capital of France is Paris.", resp.Content)
			assert.Equal(t, "stop", resp.FinishReason)
			assert.Equal(t, want, resp.Usage)

			st, err := p.Stream(context.Background(), ask)
			require.NoError(t, err)
			defer st.Close()
			text, final, err := drain(st)
			require.NoError(t, err)
			assert.Equal(t, "The capital of France is Paris.", text)
			assert.Equal(t, want, final.Usage, "streamed usage is the final cumulative count")
			assert.Equal(t, want, st.Usage())

			inv := s.Invoice()
			require.Len(t, inv.Lines, 2)
			assert.Equal(t, resp.ProviderRequestID, inv.Lines[0].RequestID, "the invoice is keyed by the id the adapter reports")
			assert.Equal(t, st.ProviderRequestID(), inv.Lines[1].RequestID)
		})
	}
}

func TestAdaptersStreamFaults(t *testing.T) {
	tests := []struct {
		name  string
		fault fakeprovider.Fault
		class llm.Class
	}{
		{"truncated", fakeprovider.Fault{Kind: fakeprovider.FaultTruncate, AfterEvents: 4}, llm.ClassTransport},
		{"reset", fakeprovider.Fault{Kind: fakeprovider.FaultReset}, llm.ClassTransport},
		{"malformed event", fakeprovider.Fault{Kind: fakeprovider.FaultMalformed, AfterEvents: 3}, llm.ClassTransport},
		{"error event", fakeprovider.Fault{Kind: fakeprovider.FaultStreamError, AfterEvents: 3}, llm.ClassServer},
	}
	for _, v := range vendors {
		for _, tt := range tests {
			t.Run(string(v)+" "+tt.name, func(t *testing.T) {
				p, s := onFake(t, v, tt.fault)
				st, err := p.Stream(context.Background(), ask)
				require.NoError(t, err, "the stream starts with a 200")
				defer st.Close()
				_, _, err = drain(st)
				require.Error(t, err)
				assert.Equal(t, tt.class, llm.Classify(context.Background(), err), "%v", err)
				partial := st.Usage()
				st.Close()
				// The fake bills when its side of the stream ends, which may
				// be after the adapter has stopped reading.
				require.Eventually(t, func() bool { return len(s.Invoice().Lines) == 1 }, 5*time.Second, time.Millisecond)
				line := s.Invoice().Lines[0]
				assert.LessOrEqual(t, partial.Output, line.OutputTokens+1, "metered output never exceeds what was billed by more than the cut event")
			})
		}
	}
}

func TestAdaptersNonStreamFaults(t *testing.T) {
	tests := []struct {
		name  string
		fault fakeprovider.Fault
		class llm.Class
	}{
		{"429", fakeprovider.Fault{Kind: fakeprovider.FaultRateLimit}, llm.ClassThrottled},
		{"503", fakeprovider.Fault{Kind: fakeprovider.FaultServerError, Status: 503}, llm.ClassServer},
		{"truncated body", fakeprovider.Fault{Kind: fakeprovider.FaultTruncate}, llm.ClassTransport},
		{"malformed body", fakeprovider.Fault{Kind: fakeprovider.FaultMalformed}, llm.ClassTransport},
		{"reset", fakeprovider.Fault{Kind: fakeprovider.FaultReset}, llm.ClassTransport},
		{"outage", fakeprovider.Fault{Kind: fakeprovider.FaultOutage}, llm.ClassTransport},
	}
	for _, v := range vendors {
		for _, tt := range tests {
			t.Run(string(v)+" "+tt.name, func(t *testing.T) {
				p, _ := onFake(t, v, tt.fault)
				_, err := p.Complete(context.Background(), ask)
				require.Error(t, err)
				assert.Equal(t, tt.class, llm.Classify(context.Background(), err), "%v", err)
				if tt.name == "429" {
					var pe *llm.ProviderError
					require.True(t, errors.As(err, &pe))
					assert.Positive(t, pe.RetryAfter, "the wait the vendor asked for")
				}
			})
		}
	}
}

func TestCancelledCallIsCancelled(t *testing.T) {
	p, _ := onFake(t, fakeprovider.OpenAI, fakeprovider.Fault{Kind: fakeprovider.FaultHang})
	ctx, cancel := context.WithCancel(context.Background())
	go cancel()
	_, err := p.Complete(ctx, ask)
	require.Error(t, err)
	assert.Equal(t, llm.ClassCancelled, llm.Classify(ctx, err))
}

// roundTrip answers every request with one fixed body, for fuzzing.
type roundTrip struct {
	body   []byte
	status int
}

func (r roundTrip) RoundTrip(*http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: r.status, Header: http.Header{}, Body: io.NopCloser(strings.NewReader(string(r.body)))}, nil
}

// FuzzAdapterParsers: whatever body or stream a vendor sends, an adapter
// returns a response or an error (never panics), and every error it returns
// for a 200 is a typed provider fault.
func FuzzAdapterParsers(f *testing.F) {
	f.Add(0, false, []byte(`{"type":"message","content":[{"type":"text","text":"x"}],"usage":{"input_tokens":1,"output_tokens":1}}`))
	f.Add(0, true, []byte("event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":1,\"output_tokens\":1}}}\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"))
	f.Add(1, false, []byte(`{"candidates":[{"content":{"parts":[{"text":"x"}]},"finishReason":"STOP"}],"usageMetadata":{"promptTokenCount":1}}`))
	f.Add(1, true, []byte("data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"x\"}]},\"finishReason\":\"STOP\"}],\"usageMetadata\":{\"promptTokenCount\":1}}\n\n"))
	f.Add(2, false, []byte(`{"choices":[{"message":{"content":"x"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":1}}`))
	f.Add(2, true, []byte("data: {\"choices\":[{\"delta\":{\"content\":\"x\"}}]}\n\ndata: {\"choices\":[],\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":1}}\n\ndata: [DONE]\n\n"))
	f.Fuzz(func(t *testing.T, which int, stream bool, body []byte) {
		c := &http.Client{Transport: roundTrip{body: body, status: 200}}
		var p llm.Provider
		switch ((which % 3) + 3) % 3 {
		case 0:
			p = anthropic.New(anthropic.Config{BaseURL: "http://x", APIKey: "k", Client: c})
		case 1:
			p = gemini.New(gemini.Config{BaseURL: "http://x", APIKey: "k", Client: c})
		default:
			p = openai.New(openai.Config{BaseURL: "http://x", APIKey: "k", Client: c})
		}
		var err error
		if stream {
			var st llm.Stream
			st, err = p.Stream(context.Background(), ask)
			if err == nil {
				for range len(body) + 2 {
					var ch llm.Chunk
					ch, err = st.Next()
					if err != nil || ch.Final {
						break
					}
				}
				_ = st.Usage()
				st.Close()
			}
		} else {
			_, err = p.Complete(context.Background(), ask)
		}
		if err != nil {
			var pe *llm.ProviderError
			if !errors.As(err, &pe) {
				t.Fatalf("untyped error %v", err)
			}
		}
	})
}
