package fakeprovider_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brownout-dev/brownout/fakeprovider"
)

// memFake creates a fake on the in-memory transport, for use inside a
// synctest bubble; it is closed when the bubble's test ends.
func memFake(t *testing.T, cfg fakeprovider.Config) (*fakeprovider.Server, *http.Client) {
	t.Helper()
	s, err := fakeprovider.NewUnstartedServer(cfg)
	require.NoError(t, err)
	c := s.Client()
	t.Cleanup(func() {
		c.CloseIdleConnections()
		s.Close()
	})
	return s, c
}

func TestTenMinutesOfLatencyInVirtualTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := vendorConfig(fakeprovider.OpenAI)
		m := cfg.Models["gpt-4o-mini"]
		m.TTFTms = fakeprovider.Fixed(10 * 60 * 1000)
		cfg.Models["gpt-4o-mini"] = m
		s, c := memFake(t, cfg)
		// The bubble's clock starts at midnight UTC, 2000-01-01: the fake's
		// ten minutes passed on it, not on the wall clock (no wall-time bound,
		// which a loaded machine breaks).
		start := time.Now()
		require.Equal(t, time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC), start.UTC(), "the bubble's clock")
		resp, body, err := do(c, rawRequest(t, s, "gpt-4o-mini", false))
		require.NoError(t, err)
		assert.Equal(t, 200, resp.StatusCode, "%s", body)
		assert.GreaterOrEqual(t, time.Since(start), 10*time.Minute, "virtual time the request took")
	})
}

func TestLatencyFaultAddsToFirstToken(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, c := memFake(t, vendorConfig(fakeprovider.Anthropic, fakeprovider.Fault{Kind: fakeprovider.FaultLatency, Delay: 7 * time.Second, Count: 1}))
		for i, want := range []time.Duration{7 * time.Second, 0} {
			start := time.Now()
			resp, _, err := do(c, rawRequest(t, s, "claude-haiku-4-5", true))
			require.NoError(t, err)
			assert.Equal(t, 200, resp.StatusCode)
			assert.Equal(t, want, time.Since(start), "request %d", i)
		}
	})
}

func TestRateLimitFaultPerVendor(t *testing.T) {
	for _, v := range vendors {
		t.Run(string(v), func(t *testing.T) {
			s, c := memFake(t, vendorConfig(v, fakeprovider.Fault{Kind: fakeprovider.FaultRateLimit, RetryAfter: 2500 * time.Millisecond}))
			resp, body, err := do(c, rawRequest(t, s, models[v][0], false))
			require.NoError(t, err)
			assert.Equal(t, 429, resp.StatusCode)
			switch v {
			case fakeprovider.Gemini:
				assert.Contains(t, string(body), `"retryDelay":"2.5s"`)
				assert.Contains(t, string(body), `"status":"RESOURCE_EXHAUSTED"`)
			default:
				assert.Equal(t, "3", resp.Header.Get("retry-after"), "whole seconds, rounded up")
				assert.Equal(t, "2500", resp.Header.Get("retry-after-ms"))
			}
		})
	}
}

func TestQuotaTokenBucket(t *testing.T) {
	for _, v := range []fakeprovider.Vendor{fakeprovider.OpenAI, fakeprovider.Anthropic} {
		t.Run(string(v), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s, c := memFake(t, vendorConfig(v, fakeprovider.Fault{Kind: fakeprovider.FaultQuota, RPM: 3}))
				remaining := []string{}
				for range 3 {
					resp, _, err := do(c, rawRequest(t, s, models[v][0], false))
					require.NoError(t, err)
					require.Equal(t, 200, resp.StatusCode)
					remaining = append(remaining, resp.Header.Get(map[fakeprovider.Vendor]string{
						fakeprovider.OpenAI: "x-ratelimit-remaining-requests", fakeprovider.Anthropic: "anthropic-ratelimit-requests-remaining"}[v]))
				}
				assert.Equal(t, []string{"2", "1", "0"}, remaining, "the rate-limit headers count down")

				resp, _, err := do(c, rawRequest(t, s, models[v][0], false))
				require.NoError(t, err)
				require.Equal(t, 429, resp.StatusCode)
				assert.Equal(t, "20000", resp.Header.Get("retry-after-ms"), "one request refills in 60s/3")

				time.Sleep(20 * time.Second)
				resp, _, err = do(c, rawRequest(t, s, models[v][0], false))
				require.NoError(t, err)
				assert.Equal(t, 200, resp.StatusCode, "after the refill")
			})
		})
	}
}

func TestQuotaTokensPerMinute(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// Each request costs 10 input + 4096 max_tokens at admission, settled
		// to 11 after; a TPM of 5000 admits one, then the estimate waits.
		s, c := memFake(t, vendorConfig(fakeprovider.Anthropic, fakeprovider.Fault{Kind: fakeprovider.FaultQuota, TPM: 5000}))
		resp, _, err := do(c, rawRequest(t, s, "claude-haiku-4-5", false))
		require.NoError(t, err)
		require.Equal(t, 200, resp.StatusCode)
		assert.Equal(t, "5000", resp.Header.Get("anthropic-ratelimit-tokens-limit"))
		assert.Equal(t, "894", resp.Header.Get("anthropic-ratelimit-tokens-remaining"), "5000 - 4106 at admission")
		resp, _, err = do(c, rawRequest(t, s, "claude-haiku-4-5", false))
		require.NoError(t, err)
		assert.Equal(t, 200, resp.StatusCode, "the first request was settled to its 11 real tokens")
	})
}

func TestServerErrorEnvelopes(t *testing.T) {
	tests := []struct {
		vendor fakeprovider.Vendor
		status int
		want   string
	}{
		{fakeprovider.Anthropic, 529, `"type":"overloaded_error"`},
		{fakeprovider.Anthropic, 500, `"type":"api_error"`},
		{fakeprovider.Gemini, 503, `"status":"UNAVAILABLE"`},
		{fakeprovider.Gemini, 500, `"status":"INTERNAL"`},
		{fakeprovider.OpenAI, 502, `"type":"server_error"`},
	}
	for _, tt := range tests {
		t.Run(name(tt.vendor, tt.status), func(t *testing.T) {
			s, c := memFake(t, vendorConfig(tt.vendor, fakeprovider.Fault{Kind: fakeprovider.FaultServerError, Status: tt.status}))
			resp, body, err := do(c, rawRequest(t, s, models[tt.vendor][0], false))
			require.NoError(t, err)
			assert.Equal(t, tt.status, resp.StatusCode)
			assert.Contains(t, string(body), tt.want)
			assert.Empty(t, s.Invoice().Lines, "a 5xx bills nothing")
		})
	}
}

func TestOutageWindow(t *testing.T) {
	t.Run("in-memory", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			s, c := memFake(t, vendorConfig(fakeprovider.Gemini, fakeprovider.Fault{Kind: fakeprovider.FaultOutage, From: time.Minute, Until: 2 * time.Minute}))
			resp, _, err := do(c, rawRequest(t, s, "gemini-2.5-flash", false))
			require.NoError(t, err)
			assert.Equal(t, 200, resp.StatusCode, "before the window")
			time.Sleep(time.Minute)
			c.CloseIdleConnections()
			_, _, err = do(c, rawRequest(t, s, "gemini-2.5-flash", false))
			require.Error(t, err)
			assert.Contains(t, err.Error(), "connection refused")
			time.Sleep(time.Minute)
			resp, _, err = do(c, rawRequest(t, s, "gemini-2.5-flash", false))
			require.NoError(t, err)
			assert.Equal(t, 200, resp.StatusCode, "after the window")
		})
	})
	t.Run("tcp", func(t *testing.T) {
		s := startFake(t, vendorConfig(fakeprovider.OpenAI, fakeprovider.Fault{Kind: fakeprovider.FaultOutage}))
		_, _, err := do(s.Client(), rawRequest(t, s, "gpt-4o-mini", false))
		require.Error(t, err, "a request during an outage reached an answer")
		assert.Empty(t, s.Journal(), "connections are closed before any request is read")
	})
	t.Run("open connection", func(t *testing.T) {
		s := startFake(t, vendorConfig(fakeprovider.OpenAI))
		c := s.Client()
		resp, _, err := do(c, rawRequest(t, s, "gpt-4o-mini", false))
		require.NoError(t, err)
		require.Equal(t, 200, resp.StatusCode)
		require.NoError(t, s.SetFaults([]fakeprovider.Fault{{Kind: fakeprovider.FaultOutage}}))
		_, _, err = do(c, rawRequest(t, s, "gpt-4o-mini", false))
		require.Error(t, err, "a kept-alive connection is cut too")
	})
}

func TestHangUntilClientGivesUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, c := memFake(t, vendorConfig(fakeprovider.OpenAI, fakeprovider.Fault{Kind: fakeprovider.FaultHang}))
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		start := time.Now()
		_, _, err := do(c, rawRequest(t, s, "gpt-4o-mini", false).WithContext(ctx))
		require.ErrorIs(t, err, context.DeadlineExceeded)
		assert.Equal(t, 30*time.Second, time.Since(start))
		synctest.Wait()
		j := s.Journal()
		require.Len(t, j, 1)
		assert.Equal(t, fakeprovider.OutcomeHang, j[0].Outcome)
	})
}

func TestResetMidBody(t *testing.T) {
	for _, stream := range []bool{false, true} {
		for _, v := range vendors {
			t.Run(name(v, " stream=", stream), func(t *testing.T) {
				s, c := memFake(t, vendorConfig(v, fakeprovider.Fault{Kind: fakeprovider.FaultReset}))
				resp, body, err := do(c, rawRequest(t, s, "long-answer", stream))
				require.Error(t, err, "reading a reset body succeeded: %s", body)
				assert.Equal(t, 200, resp.StatusCode)
				assert.NotEmpty(t, body, "part of the body arrived first")
			})
		}
	}
}

func TestMalformedBody(t *testing.T) {
	for _, v := range vendors {
		t.Run(string(v), func(t *testing.T) {
			s, c := memFake(t, vendorConfig(v, fakeprovider.Fault{Kind: fakeprovider.FaultMalformed}))
			resp, body, err := do(c, rawRequest(t, s, models[v][0], false))
			require.NoError(t, err)
			assert.Equal(t, 200, resp.StatusCode)
			assert.False(t, json.Valid(body), "body is valid JSON: %s", body)
			require.Len(t, s.Invoice().Lines, 1, "the generation happened and is billed")
		})
	}
}

func TestTruncatedStream(t *testing.T) {
	for _, v := range vendors {
		t.Run(string(v), func(t *testing.T) {
			full, c := memFake(t, vendorConfig(v))
			_, fullBody, err := do(c, rawRequest(t, full, "long-answer", true))
			require.NoError(t, err)
			fullEvents, terminal := sseEvents(v, fullBody)
			require.True(t, terminal)

			s, c := memFake(t, vendorConfig(v, fakeprovider.Fault{Kind: fakeprovider.FaultTruncate, AfterEvents: 1}))
			resp, body, err := do(c, rawRequest(t, s, "long-answer", true))
			require.NoError(t, err, "a truncated stream ends cleanly at the HTTP level")
			assert.Equal(t, 200, resp.StatusCode)
			events, terminal := sseEvents(v, body)
			assert.Equal(t, 1, events)
			assert.Less(t, events, fullEvents)
			assert.False(t, terminal, "the terminal event was sent: %s", body)
			lines := s.Invoice().Lines
			require.Len(t, lines, 1)
			assert.False(t, lines[0].Complete)
			// The first event is message_start (Anthropic), the role chunk
			// (OpenAI), or the first answer token (Gemini, thoughts hidden).
			wantOutput := map[fakeprovider.Vendor]int64{fakeprovider.Anthropic: 0, fakeprovider.OpenAI: 0, fakeprovider.Gemini: 1}[v]
			assert.Equal(t, wantOutput, lines[0].OutputTokens, "output tokens billed for what was sent before the cut")
		})
	}
}

func TestStreamErrorEvent(t *testing.T) {
	want := map[fakeprovider.Vendor]string{
		fakeprovider.Anthropic: "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\"",
		fakeprovider.Gemini:    `data: {"error":{"code":503`,
		fakeprovider.OpenAI:    `data: {"error":{"message":`,
	}
	for _, v := range vendors {
		t.Run(string(v), func(t *testing.T) {
			s, c := memFake(t, vendorConfig(v, fakeprovider.Fault{Kind: fakeprovider.FaultStreamError, AfterEvents: 2}))
			resp, body, err := do(c, rawRequest(t, s, "long-answer", true))
			require.NoError(t, err)
			assert.Equal(t, 200, resp.StatusCode)
			assert.Contains(t, string(body), want[v])
			events, terminal := sseEvents(v, body)
			assert.Equal(t, 3, events, "two events, then the error")
			assert.False(t, terminal)
			// Non-streamed requests are not affected.
			resp, _, err = do(c, rawRequest(t, s, "long-answer", false))
			require.NoError(t, err)
			assert.Equal(t, 200, resp.StatusCode)
		})
	}
}

func TestReasoningInflation(t *testing.T) {
	s, c := memFake(t, vendorConfig(fakeprovider.OpenAI, fakeprovider.Fault{Kind: fakeprovider.FaultReasoningInflation, Factor: 2.5, Models: []string{"o4-mini"}}))
	_, body, err := do(c, rawRequest(t, s, "o4-mini", false))
	require.NoError(t, err)
	assert.Contains(t, string(body), `"reasoning_tokens":60`)
	assert.Equal(t, int64(60), s.Invoice().Lines[0].ReasoningTokens)
}

func TestFaultMatching(t *testing.T) {
	t.Run("probability is seeded", func(t *testing.T) {
		s, c := memFake(t, vendorConfig(fakeprovider.OpenAI, fakeprovider.Fault{Kind: fakeprovider.FaultServerError, Probability: 0.3}))
		failed := 0
		for range 1000 {
			resp, _, err := do(c, rawRequest(t, s, "gpt-4o-mini", false))
			require.NoError(t, err)
			if resp.StatusCode == 500 {
				failed++
			}
		}
		assert.InDelta(t, 300, failed, 45, "about 30%% of 1000 requests fail")
	})
	t.Run("count", func(t *testing.T) {
		s, c := memFake(t, vendorConfig(fakeprovider.OpenAI, fakeprovider.Fault{Kind: fakeprovider.FaultServerError, Count: 3}))
		var statuses []int
		for range 5 {
			resp, _, err := do(c, rawRequest(t, s, "gpt-4o-mini", false))
			require.NoError(t, err)
			statuses = append(statuses, resp.StatusCode)
		}
		assert.Equal(t, []int{500, 500, 500, 200, 200}, statuses)
	})
	t.Run("models", func(t *testing.T) {
		s, c := memFake(t, vendorConfig(fakeprovider.OpenAI, fakeprovider.Fault{Kind: fakeprovider.FaultServerError, Models: []string{"o4-mini"}}))
		resp, _, err := do(c, rawRequest(t, s, "gpt-4o-mini", false))
		require.NoError(t, err)
		assert.Equal(t, 200, resp.StatusCode)
		resp, _, err = do(c, rawRequest(t, s, "o4-mini", false))
		require.NoError(t, err)
		assert.Equal(t, 500, resp.StatusCode)
	})
}

func TestClientDisconnectBillsWhatWasGenerated(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := vendorConfig(fakeprovider.OpenAI)
		cfg.Models["long"] = fakeprovider.Model{Answers: []fakeprovider.Answer{{Text: strings.Repeat("word ", 100), Tokens: 100}}, PerTokenMs: fakeprovider.Fixed(1000)}
		s, c := memFake(t, cfg)
		ctx, cancel := context.WithTimeout(context.Background(), 10500*time.Millisecond)
		defer cancel()
		_, _, err := do(c, rawRequest(t, s, "long", true).WithContext(ctx))
		require.True(t, errors.Is(err, context.DeadlineExceeded), "err = %v", err)
		synctest.Wait()
		lines := s.Invoice().Lines
		require.Len(t, lines, 1)
		assert.False(t, lines[0].Complete)
		assert.Equal(t, int64(10), lines[0].OutputTokens, "tokens sent in the 10.5s before the client left")
	})
}

func TestSetFaultsValidates(t *testing.T) {
	s, _ := memFake(t, vendorConfig(fakeprovider.OpenAI))
	err := s.SetFaults([]fakeprovider.Fault{{Kind: "meteor"}})
	require.Error(t, err)
	assert.Contains(t, err.Error(), `unknown fault kind "meteor"`)
	err = s.SetFaults([]fakeprovider.Fault{{Kind: fakeprovider.FaultRateLimit, Probability: 2}})
	assert.ErrorContains(t, err, "faults[0].probability: must be in [0, 1]")
}

func TestRulesAnswerByPrompt(t *testing.T) {
	cfg := vendorConfig(fakeprovider.OpenAI)
	cfg.Models["quiz"] = fakeprovider.Model{
		Answers: []fakeprovider.Answer{{Text: "I don't know"}},
		Rules: []fakeprovider.Rule{
			{Match: "capital of france", Answers: []fakeprovider.Answer{{Text: "Paris"}}},
			{Match: "capital of japan", Answers: []fakeprovider.Answer{{Text: "Tokyo"}}},
		},
	}
	s, c := memFake(t, cfg)
	_, body, err := do(c, rawRequest(t, s, "quiz", false)) // asks about France
	require.NoError(t, err)
	assert.Contains(t, string(body), `"content":"Paris"`)
}

// TestStallMidStream: a stalled stream sends its first event, then nothing,
// the connection open, until the client gives up; it bills what was sent.
func TestStallMidStream(t *testing.T) {
	for _, v := range vendors {
		t.Run(string(v), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s, c := memFake(t, vendorConfig(v, fakeprovider.Fault{Kind: fakeprovider.FaultStall, AfterEvents: 1}))
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				start := time.Now()
				resp, err := c.Do(rawRequest(t, s, "long-answer", true).WithContext(ctx))
				require.NoError(t, err)
				assert.Equal(t, 200, resp.StatusCode)
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				require.ErrorIs(t, err, context.DeadlineExceeded, "the body never ends: %s", body)
				assert.Equal(t, 30*time.Second, time.Since(start), "held until the client gave up")
				events, terminal := sseEvents(v, body)
				assert.Equal(t, 1, events)
				assert.False(t, terminal)
				synctest.Wait()
				j := s.Journal()
				require.Len(t, j, 1)
				assert.Equal(t, fakeprovider.OutcomeStalled, j[0].Outcome)
				lines := s.Invoice().Lines
				require.Len(t, lines, 1)
				assert.False(t, lines[0].Complete)
			})
		})
	}
}

// TestContextLengthErrorPerVendor: a prompt over the window is a 400 in
// each vendor's own words, which clients match on.
func TestContextLengthErrorPerVendor(t *testing.T) {
	want := map[fakeprovider.Vendor][]string{
		fakeprovider.OpenAI:    {`"code":"context_length_exceeded"`, `"param":"messages"`, `"type":"invalid_request_error"`, "maximum context length is"},
		fakeprovider.Anthropic: {`"type":"invalid_request_error"`, `"message":"prompt is too long: `},
		fakeprovider.Gemini:    {`"status":"INVALID_ARGUMENT"`, "The input token count (", "exceeds the maximum number of tokens allowed"},
	}
	for _, v := range vendors {
		t.Run(string(v), func(t *testing.T) {
			s, c := memFake(t, vendorConfig(v, fakeprovider.Fault{Kind: fakeprovider.FaultContextLength}))
			resp, body, err := do(c, rawRequest(t, s, models[v][0], false))
			require.NoError(t, err)
			assert.Equal(t, 400, resp.StatusCode)
			for _, w := range want[v] {
				assert.Contains(t, string(body), w)
			}
			assert.Empty(t, s.Invoice().Lines, "a refused prompt bills nothing")
		})
	}
}

// TestNoTerminalMarker: the stream carries every answer token, the finish
// reason and the usage, but no [DONE] (OpenAI) or message_stop
// (Anthropic); Gemini's last chunk is its own terminal and is kept. Billed
// as complete.
func TestNoTerminalMarker(t *testing.T) {
	usage := map[fakeprovider.Vendor]string{fakeprovider.OpenAI: `"completion_tokens"`, fakeprovider.Anthropic: `"output_tokens"`, fakeprovider.Gemini: `"usageMetadata"`}
	for _, v := range vendors {
		t.Run(string(v), func(t *testing.T) {
			full, c := memFake(t, vendorConfig(v))
			_, fullBody, err := do(c, rawRequest(t, full, "long-answer", true))
			require.NoError(t, err)
			fullEvents, _ := sseEvents(v, fullBody)

			s, c := memFake(t, vendorConfig(v, fakeprovider.Fault{Kind: fakeprovider.FaultNoTerminal}))
			resp, body, err := do(c, rawRequest(t, s, "long-answer", true))
			require.NoError(t, err)
			assert.Equal(t, 200, resp.StatusCode)
			events, terminal := sseEvents(v, body)
			assert.Contains(t, string(body), usage[v], "the usage is sent")
			if v == fakeprovider.Gemini {
				assert.Equal(t, fullEvents, events)
				assert.True(t, terminal)
			} else {
				assert.Equal(t, fullEvents-1, events, "only the terminal marker is missing")
				assert.False(t, terminal)
			}
			lines := s.Invoice().Lines
			require.Len(t, lines, 1)
			assert.True(t, lines[0].Complete)
		})
	}
}

// TestSlowBody: every byte arrives, at the pace asked: a plain body of N
// bytes at 100 bytes a second takes about N/100 seconds, a stream's events
// each the time their bytes take.
func TestSlowBody(t *testing.T) {
	for _, v := range vendors {
		for _, stream := range []bool{false, true} {
			t.Run(name(v, " stream=", stream), func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					fast, c := memFake(t, vendorConfig(v))
					_, want, err := do(c, rawRequest(t, fast, "long-answer", stream))
					require.NoError(t, err)
					s, c := memFake(t, vendorConfig(v, fakeprovider.Fault{Kind: fakeprovider.FaultSlowBody, BytesPerSecond: 100}))
					start := time.Now()
					resp, body, err := do(c, rawRequest(t, s, "long-answer", stream))
					took := time.Since(start)
					require.NoError(t, err)
					assert.Equal(t, 200, resp.StatusCode)
					assert.Equal(t, len(want), len(body), "every byte arrives")
					pace := time.Duration(len(body)) * time.Second / 100
					assert.GreaterOrEqual(t, took, pace, "no faster than 100 bytes a second")
					assert.Less(t, took, pace+5*time.Second, "and not much slower (plus the generation's own time)")
				})
			})
		}
	}
}

// TestResetMidEvent: with after_events, the connection drops in the middle
// of that event's frame: whole events first, then half of one, no blank
// line ending it.
func TestResetMidEvent(t *testing.T) {
	for _, v := range vendors {
		t.Run(string(v), func(t *testing.T) {
			s, c := memFake(t, vendorConfig(v, fakeprovider.Fault{Kind: fakeprovider.FaultReset, AfterEvents: 3}))
			resp, body, err := do(c, rawRequest(t, s, "long-answer", true))
			require.Error(t, err, "reading a reset stream succeeded: %s", body)
			assert.Equal(t, 200, resp.StatusCode)
			whole := strings.Count(string(body), "\n\n")
			assert.Equal(t, 3, whole, "three whole events: %q", body)
			assert.False(t, strings.HasSuffix(string(body), "\n\n"), "the last event is cut: %q", body)
			j := s.Journal()
			require.Len(t, j, 1)
			assert.Equal(t, fakeprovider.OutcomeReset, j[0].Outcome)
		})
	}
}
