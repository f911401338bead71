package fakeprovider_test

import (
	"context"
	"errors"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brownout-dev/brownout/fakeprovider"
)

// The official OpenAI SDK is the judge of the fake's Chat Completions API.

func openaiClient(s *fakeprovider.Server, key string, retries int) *openai.Client {
	c := openai.NewClient(option.WithAPIKey(key), option.WithBaseURL(s.URL+"/v1"),
		option.WithHTTPClient(s.Client()), option.WithMaxRetries(retries))
	return &c
}

func openaiParams(model string) openai.ChatCompletionNewParams {
	return openai.ChatCompletionNewParams{
		Model:    model,
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("What is the capital of France? One word.")},
	}
}

func TestOpenAISDKPlain(t *testing.T) {
	s := startFake(t, vendorConfig(fakeprovider.OpenAI))
	resp, err := openaiClient(s, testKey, 0).Chat.Completions.New(context.Background(), openaiParams("o4-mini"))
	require.NoError(t, err)
	require.Len(t, resp.Choices, 1)
	assert.Equal(t, "Paris", resp.Choices[0].Message.Content)
	assert.Equal(t, "stop", resp.Choices[0].FinishReason)
	// completion_tokens INCLUDES the reasoning tokens.
	assert.Equal(t, int64(25), resp.Usage.CompletionTokens)
	assert.Equal(t, int64(24), resp.Usage.CompletionTokensDetails.ReasoningTokens)
	assert.Equal(t, int64(10), resp.Usage.PromptTokens)
	assert.Equal(t, int64(35), resp.Usage.TotalTokens)
}

func TestOpenAISDKStreamedWithUsage(t *testing.T) {
	s := startFake(t, vendorConfig(fakeprovider.OpenAI))
	params := openaiParams("o4-mini")
	params.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
	stream := openaiClient(s, testKey, 0).Chat.Completions.NewStreaming(context.Background(), params)
	var acc openai.ChatCompletionAccumulator
	for stream.Next() {
		acc.AddChunk(stream.Current())
	}
	require.NoError(t, stream.Err())
	require.Len(t, acc.Choices, 1)
	assert.Equal(t, "Paris", acc.Choices[0].Message.Content)
	assert.Equal(t, int64(25), acc.Usage.CompletionTokens)
	assert.Equal(t, int64(24), acc.Usage.CompletionTokensDetails.ReasoningTokens)

	inv := s.Invoice()
	require.Len(t, inv.Lines, 1)
	assert.Equal(t, int64(24), inv.Lines[0].ReasoningTokens)
	assert.Equal(t, int64(1), inv.Lines[0].OutputTokens)
}

func TestOpenAISDKStreamWithoutUsageHasNoUsageChunk(t *testing.T) {
	s := startFake(t, vendorConfig(fakeprovider.OpenAI))
	stream := openaiClient(s, testKey, 0).Chat.Completions.NewStreaming(context.Background(), openaiParams("gpt-4o-mini"))
	chunks := 0
	for stream.Next() {
		chunks++
		assert.Zero(t, stream.Current().Usage.TotalTokens, "usage sent without include_usage")
		assert.NotEmpty(t, stream.Current().Choices, "a chunk with empty choices is the usage chunk")
	}
	require.NoError(t, stream.Err())
	assert.Equal(t, 3, chunks, "role, one token, finish")
}

func TestOpenAISDKTypedErrors(t *testing.T) {
	s := startFake(t, vendorConfig(fakeprovider.OpenAI, fakeprovider.Fault{Kind: fakeprovider.FaultServerError, Status: 503, Models: []string{"o4-mini"}}))
	tests := []struct {
		name, key, model string
		status           int
		code             string
	}{
		{"unknown model", testKey, "gpt-nope", 404, "model_not_found"},
		{"bad key", "wrong", "gpt-4o-mini", 401, "invalid_api_key"},
		{"unavailable", testKey, "o4-mini", 503, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := openaiClient(s, tt.key, 0).Chat.Completions.New(context.Background(), openaiParams(tt.model))
			var apiErr *openai.Error
			require.True(t, errors.As(err, &apiErr), "error %v is not an *openai.Error", err)
			assert.Equal(t, tt.status, apiErr.StatusCode)
			assert.Equal(t, tt.code, apiErr.Code)
		})
	}
}

func TestOpenAISDKRetriesAfter429(t *testing.T) {
	s := startFake(t, vendorConfig(fakeprovider.OpenAI, fakeprovider.Fault{Kind: fakeprovider.FaultRateLimit, Count: 1, RetryAfter: shortRetry}))
	resp, err := openaiClient(s, testKey, 2).Chat.Completions.New(context.Background(), openaiParams("gpt-4o-mini"))
	require.NoError(t, err)
	assert.Equal(t, "Paris", resp.Choices[0].Message.Content)
	j := s.Journal()
	require.Len(t, j, 2)
	assert.Equal(t, []int{429, 200}, []int{j[0].Status, j[1].Status})
	assert.GreaterOrEqual(t, j[1].At-j[0].At, shortRetry, "the SDK waited the retry-after-ms")
}
