package fakeprovider_test

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/genai"

	"github.com/brownout-dev/brownout/fakeprovider"
)

// The official Gen AI SDK is the judge of the fake's Gemini API.

func geminiClient(t *testing.T, s *fakeprovider.Server, key string, retry *genai.HTTPRetryOptions) *genai.Client {
	t.Helper()
	c, err := genai.NewClient(context.Background(), &genai.ClientConfig{
		APIKey: key, Backend: genai.BackendGeminiAPI, HTTPClient: s.Client(),
		HTTPOptions: genai.HTTPOptions{BaseURL: s.URL + "/", RetryOptions: retry},
	})
	require.NoError(t, err)
	return c
}

var capital = genai.Text("What is the capital of France? One word.")

func TestGeminiSDKPlain(t *testing.T) {
	s := startFake(t, vendorConfig(fakeprovider.Gemini))
	resp, err := geminiClient(t, s, testKey, nil).Models.GenerateContent(context.Background(), "gemini-2.5-flash", capital, nil)
	require.NoError(t, err)
	assert.Equal(t, "Paris", resp.Text())
	require.NotNil(t, resp.UsageMetadata)
	// thoughtsTokenCount is NOT part of candidatesTokenCount.
	assert.Equal(t, int32(1), resp.UsageMetadata.CandidatesTokenCount)
	assert.Equal(t, int32(24), resp.UsageMetadata.ThoughtsTokenCount)
	assert.Equal(t, int32(10), resp.UsageMetadata.PromptTokenCount)
	assert.Equal(t, int32(35), resp.UsageMetadata.TotalTokenCount)
	assert.Equal(t, genai.FinishReasonStop, resp.Candidates[0].FinishReason)
	assert.NotEmpty(t, resp.ResponseID)
	require.Len(t, s.Invoice().Lines, 1)
	assert.Equal(t, resp.ResponseID, s.Invoice().Lines[0].RequestID, "the invoice is keyed by the responseId the client saw")
}

func TestGeminiSDKStreamedWithThoughts(t *testing.T) {
	s := startFake(t, vendorConfig(fakeprovider.Gemini))
	cfg := &genai.GenerateContentConfig{ThinkingConfig: &genai.ThinkingConfig{IncludeThoughts: true}}
	var text, thoughts string
	var last *genai.GenerateContentResponse
	for resp, err := range geminiClient(t, s, testKey, nil).Models.GenerateContentStream(context.Background(), "gemini-2.5-flash", capital, cfg) {
		require.NoError(t, err)
		for _, p := range resp.Candidates[0].Content.Parts {
			if p.Thought {
				thoughts += p.Text
			} else {
				text += p.Text
			}
		}
		last = resp
	}
	assert.Equal(t, "Paris", text)
	assert.Equal(t, "The capital of France is Paris.", thoughts)
	require.NotNil(t, last)
	assert.Equal(t, int32(24), last.UsageMetadata.ThoughtsTokenCount)
	assert.Equal(t, int32(1), last.UsageMetadata.CandidatesTokenCount)
	assert.Equal(t, genai.FinishReasonStop, last.Candidates[0].FinishReason)
}

func TestGeminiSDKThinkingBudgetZeroSpendsNoThoughts(t *testing.T) {
	s := startFake(t, vendorConfig(fakeprovider.Gemini))
	zero := int32(0)
	resp, err := geminiClient(t, s, testKey, nil).Models.GenerateContent(context.Background(), "gemini-2.5-flash", capital,
		&genai.GenerateContentConfig{ThinkingConfig: &genai.ThinkingConfig{ThinkingBudget: &zero}})
	require.NoError(t, err)
	assert.Equal(t, int32(0), resp.UsageMetadata.ThoughtsTokenCount)
}

func TestGeminiSDKTypedErrors(t *testing.T) {
	s := startFake(t, vendorConfig(fakeprovider.Gemini, fakeprovider.Fault{Kind: fakeprovider.FaultServerError, Status: 503, Models: []string{"gemini-2.5-flash"}}))
	tests := []struct {
		name, key, model string
		code             int
		status           string
	}{
		{"unknown model", testKey, "gemini-nope", 404, "NOT_FOUND"},
		{"bad key", "wrong", "gemini-2.5-flash-lite", 400, "INVALID_ARGUMENT"},
		{"overloaded", testKey, "gemini-2.5-flash", 503, "UNAVAILABLE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := geminiClient(t, s, tt.key, nil).Models.GenerateContent(context.Background(), tt.model, capital, nil)
			var apiErr genai.APIError
			require.True(t, errors.As(err, &apiErr), "error %v is not a genai.APIError", err)
			assert.Equal(t, tt.code, apiErr.Code)
			assert.Equal(t, tt.status, apiErr.Status)
		})
	}
}

func TestGeminiSDKRateLimitCarriesRetryInfo(t *testing.T) {
	s := startFake(t, vendorConfig(fakeprovider.Gemini, fakeprovider.Fault{Kind: fakeprovider.FaultRateLimit, Count: 1, RetryAfter: 3e9}))
	_, err := geminiClient(t, s, testKey, nil).Models.GenerateContent(context.Background(), "gemini-2.5-flash", capital, nil)
	var apiErr genai.APIError
	require.True(t, errors.As(err, &apiErr))
	assert.Equal(t, 429, apiErr.Code)
	assert.Equal(t, "RESOURCE_EXHAUSTED", apiErr.Status)
	var delay any
	for _, d := range apiErr.Details {
		if d["@type"] == "type.googleapis.com/google.rpc.RetryInfo" {
			delay = d["retryDelay"]
		}
	}
	assert.Equal(t, "3s", delay)
}

func TestGeminiSDKRetriesAfter429(t *testing.T) {
	s := startFake(t, vendorConfig(fakeprovider.Gemini, fakeprovider.Fault{Kind: fakeprovider.FaultRateLimit, Count: 1, RetryAfter: shortRetry}))
	attempts, delay, jitter := int32(3), 0.02, 0.0
	retry := &genai.HTTPRetryOptions{Attempts: &attempts, InitialDelay: &delay, Jitter: &jitter}
	resp, err := geminiClient(t, s, testKey, retry).Models.GenerateContent(context.Background(), "gemini-2.5-flash", capital, nil)
	require.NoError(t, err)
	assert.Equal(t, "Paris", resp.Text())
	j := s.Journal()
	require.Len(t, j, 2)
	assert.Equal(t, []int{429, 200}, []int{j[0].Status, j[1].Status})
}
