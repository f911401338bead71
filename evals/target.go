package evals

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/brownout-dev/brownout/gateway"
	"github.com/brownout-dev/brownout/gateway/llm"
)

// Completion is one answer with what it took.
type Completion struct {
	Content string
	Usage   llm.Usage
	Cost    decimal.Decimal
	Latency time.Duration
}

// Target answers a suite's questions: a Gateway in process, or a running
// `brownout serve` over HTTP.
type Target interface {
	Complete(ctx context.Context, model string, messages []llm.Message) (Completion, error)
}

// InProcess is a Target on a Gateway value: model is a route alias.
type InProcess struct {
	Gateway *gateway.Gateway
	Tenant  string // default "evals"
}

// Complete implements Target.
func (p InProcess) Complete(ctx context.Context, model string, messages []llm.Message) (Completion, error) {
	tenant := p.Tenant
	if tenant == "" {
		tenant = "evals"
	}
	start := time.Now()
	// No ID: the gateway mints the ledger's key.
	res, err := p.Gateway.Complete(ctx, &gateway.Request{Tenant: tenant, Route: model, LLM: llm.Request{Messages: messages}})
	if err != nil {
		var spent *gateway.SpentError
		if errors.As(err, &spent) {
			return Completion{Cost: spent.Cost, Latency: time.Since(start)}, err
		}
		return Completion{}, err
	}
	return Completion{Content: res.Response.Content, Usage: res.Response.Usage, Cost: res.Cost, Latency: time.Since(start)}, nil
}

// HTTP is a Target on a gateway's OpenAI-compatible endpoint. The cost is
// the gateway's exact X-Brownout-Cost-USD header.
type HTTP struct {
	BaseURL string // e.g. http://127.0.0.1:8080
	APIKey  string
	Client  *http.Client // default http.DefaultClient
}

type chatResponse struct {
	Choices []struct {
		Message struct {
			Content string `json:"content"`
		} `json:"message"`
	} `json:"choices"`
	Usage struct {
		PromptTokens        int64 `json:"prompt_tokens"`
		CompletionTokens    int64 `json:"completion_tokens"`
		PromptTokensDetails struct {
			CachedTokens int64 `json:"cached_tokens"`
		} `json:"prompt_tokens_details"`
		CompletionTokensDetails struct {
			ReasoningTokens int64 `json:"reasoning_tokens"`
		} `json:"completion_tokens_details"`
	} `json:"usage"`
	Error *struct {
		Message string `json:"message"`
		Code    any    `json:"code"`
	} `json:"error"`
}

// Complete implements Target.
func (h HTTP) Complete(ctx context.Context, model string, messages []llm.Message) (Completion, error) {
	c := h.Client
	if c == nil {
		c = http.DefaultClient
	}
	body, _ := json.Marshal(map[string]any{"model": model, "messages": messages})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(h.BaseURL, "/")+"/v1/chat/completions", bytes.NewReader(body))
	if err != nil {
		return Completion{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+h.APIKey)
	start := time.Now()
	resp, err := c.Do(req)
	if err != nil {
		return Completion{}, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return Completion{}, err
	}
	var cr chatResponse
	if err := json.Unmarshal(raw, &cr); err != nil {
		return Completion{}, fmt.Errorf("evals: gateway answered %d with a body that is not JSON", resp.StatusCode)
	}
	if resp.StatusCode != http.StatusOK || cr.Error != nil || len(cr.Choices) == 0 {
		msg := ""
		if cr.Error != nil {
			msg = cr.Error.Message
		}
		// A failure may still have cost something: the gateway says what.
		spent, _ := decimal.NewFromString(resp.Header.Get("X-Brownout-Cost-USD"))
		return Completion{Cost: spent, Latency: time.Since(start)}, fmt.Errorf("evals: gateway answered %d: %s", resp.StatusCode, msg)
	}
	cost, err := decimal.NewFromString(resp.Header.Get("X-Brownout-Cost-USD"))
	if err != nil {
		return Completion{}, errors.New("evals: the gateway sent no X-Brownout-Cost-USD header (is it brownout serve?)")
	}
	u := cr.Usage
	return Completion{
		Content: cr.Choices[0].Message.Content,
		Usage: llm.Usage{Input: u.PromptTokens - u.PromptTokensDetails.CachedTokens, CacheRead: u.PromptTokensDetails.CachedTokens,
			Output: u.CompletionTokens - u.CompletionTokensDetails.ReasoningTokens, Reasoning: u.CompletionTokensDetails.ReasoningTokens},
		Cost: cost, Latency: time.Since(start),
	}, nil
}
