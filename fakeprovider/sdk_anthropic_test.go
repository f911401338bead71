package fakeprovider_test

import (
	"context"
	"errors"
	"testing"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/anthropics/anthropic-sdk-go/v2/option"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brownout-dev/brownout/fakeprovider"
)

// The official Anthropic SDK is the judge of the fake's Messages API.

func anthropicClient(s *fakeprovider.Server, retries int) *anthropic.Client {
	c := anthropic.NewClient(option.WithAPIKey(testKey), option.WithBaseURL(s.URL),
		option.WithHTTPClient(s.Client()), option.WithMaxRetries(retries))
	return &c
}

func anthropicParams(model string) anthropic.MessageNewParams {
	return anthropic.MessageNewParams{
		Model:     anthropic.Model(model),
		MaxTokens: 4096,
		Messages:  []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("What is the capital of France? One word."))},
	}
}

func TestAnthropicSDKPlain(t *testing.T) {
	s := startFake(t, vendorConfig(fakeprovider.Anthropic))
	msg, err := anthropicClient(s, 0).Messages.New(context.Background(), anthropicParams("claude-haiku-4-5"))
	require.NoError(t, err)
	require.Len(t, msg.Content, 1)
	assert.Equal(t, "Paris", msg.Content[0].Text)
	assert.Equal(t, anthropic.StopReasonEndTurn, msg.StopReason)
	assert.Equal(t, int64(10), msg.Usage.InputTokens, "40 characters at about 4 a token")
	assert.Equal(t, int64(1), msg.Usage.OutputTokens)
	assert.Equal(t, int64(0), msg.Usage.OutputTokensDetails.ThinkingTokens)
	inv := s.Invoice()
	require.Len(t, inv.Lines, 1)
	assert.Equal(t, int64(1), inv.Lines[0].OutputTokens)
}

func TestAnthropicSDKThinkingStreamed(t *testing.T) {
	s := startFake(t, vendorConfig(fakeprovider.Anthropic))
	params := anthropicParams("claude-sonnet-4-5")
	params.Thinking = anthropic.ThinkingConfigParamOfEnabled(2048)
	stream := anthropicClient(s, 0).Messages.NewStreaming(context.Background(), params)
	var msg anthropic.Message
	for stream.Next() {
		require.NoError(t, msg.Accumulate(stream.Current()))
	}
	require.NoError(t, stream.Err())
	require.Len(t, msg.Content, 2)
	assert.Equal(t, "thinking", msg.Content[0].Type)
	assert.Equal(t, "The capital of France is Paris.", msg.Content[0].Thinking)
	assert.NotEmpty(t, msg.Content[0].Signature)
	assert.Equal(t, "Paris", msg.Content[1].Text)
	// output_tokens includes the thinking; the details say how much was thinking.
	assert.Equal(t, int64(25), msg.Usage.OutputTokens)
	assert.Equal(t, int64(24), msg.Usage.OutputTokensDetails.ThinkingTokens)

	inv := s.Invoice()
	require.Len(t, inv.Lines, 1)
	assert.Equal(t, int64(24), inv.Lines[0].ReasoningTokens)
	assert.Equal(t, int64(1), inv.Lines[0].OutputTokens)
	assert.True(t, inv.Lines[0].Complete)
	// Priced with the default table: 10*3.00 + (24+1)*15.00 per million.
	assert.Equal(t, "0.000405", inv.Lines[0].Cost.String())
	assert.Equal(t, "0.000405", inv.Totals.Cost.String())
}

func TestAnthropicSDKTypedErrors(t *testing.T) {
	s := startFake(t, vendorConfig(fakeprovider.Anthropic, fakeprovider.Fault{Kind: fakeprovider.FaultServerError, Status: 529, Models: []string{"claude-sonnet-4-5"}}))
	badKey := anthropic.NewClient(option.WithAPIKey("wrong"), option.WithBaseURL(s.URL), option.WithMaxRetries(0))
	tests := []struct {
		name   string
		client *anthropic.Client
		model  string
		status int
		typ    string
	}{
		{"unknown model", anthropicClient(s, 0), "claude-nope", 404, "not_found_error"},
		{"bad key", &badKey, "claude-haiku-4-5", 401, "authentication_error"},
		{"overloaded", anthropicClient(s, 0), "claude-sonnet-4-5", 529, "overloaded_error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.client.Messages.New(context.Background(), anthropicParams(tt.model))
			var apiErr *anthropic.Error
			require.True(t, errors.As(err, &apiErr), "error %v is not an *anthropic.Error", err)
			assert.Equal(t, tt.status, apiErr.StatusCode)
			assert.Equal(t, tt.typ, string(apiErr.Type()))
			assert.NotEmpty(t, apiErr.RequestID, "request-id header")
		})
	}
	assert.Empty(t, s.Invoice().Lines, "errors bill nothing")
}

func TestAnthropicSDKRetriesAfter429(t *testing.T) {
	s := startFake(t, vendorConfig(fakeprovider.Anthropic, fakeprovider.Fault{Kind: fakeprovider.FaultRateLimit, Count: 1, RetryAfter: shortRetry}))
	msg, err := anthropicClient(s, 2).Messages.New(context.Background(), anthropicParams("claude-haiku-4-5"))
	require.NoError(t, err)
	assert.Equal(t, "Paris", msg.Content[0].Text)
	j := s.Journal()
	require.Len(t, j, 2)
	assert.Equal(t, 429, j[0].Status)
	assert.Equal(t, 200, j[1].Status)
	assert.GreaterOrEqual(t, j[1].At-j[0].At, shortRetry, "the SDK waited the retry-after")
}
