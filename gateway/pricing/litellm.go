package pricing

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"

	"github.com/shopspring/decimal"
)

// liteLLMEntry is the part of an entry of LiteLLM's
// model_prices_and_context_window.json that prices tokens: USD per token.
type liteLLMEntry struct {
	InputCostPerToken           *json.Number `json:"input_cost_per_token"`
	OutputCostPerToken          *json.Number `json:"output_cost_per_token"`
	OutputCostPerReasoningToken *json.Number `json:"output_cost_per_reasoning_token"`
	CacheReadInputTokenCost     *json.Number `json:"cache_read_input_token_cost"`
	CacheCreationInputTokenCost *json.Number `json:"cache_creation_input_token_cost"`
	CacheCreation1hr            *json.Number `json:"cache_creation_input_token_cost_above_1hr"`
	// The long-context tier: a prompt over 200k tokens.
	InputAbove200k         *json.Number `json:"input_cost_per_token_above_200k_tokens"`
	OutputAbove200k        *json.Number `json:"output_cost_per_token_above_200k_tokens"`
	CacheReadAbove200k     *json.Number `json:"cache_read_input_token_cost_above_200k_tokens"`
	CacheCreationAbove200k *json.Number `json:"cache_creation_input_token_cost_above_200k_tokens"`
	Provider               string       `json:"litellm_provider"`
}

// LoadLiteLLM reads LiteLLM's model_prices_and_context_window.json.
func LoadLiteLLM(path string) (*Table, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("pricing: %w", err)
	}
	return ParseLiteLLM(path, data)
}

// ParseLiteLLM converts LiteLLM's per-token prices to a Table (per million,
// exactly: the JSON numbers are read as text). Entries without both an
// input and an output price (images, embeddings, "sample_spec") are skipped.
// Keys are kept as LiteLLM writes them ("gpt-4o-mini", "gemini/gemini-2.5-flash").
func ParseLiteLLM(name string, data []byte) (*Table, error) {
	var raw map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("%s: not a LiteLLM price file: %w", name, err)
	}
	t := &Table{Source: "LiteLLM " + name, Models: map[string]Price{}}
	for model, msg := range raw {
		var e liteLLMEntry
		d := json.NewDecoder(bytes.NewReader(msg))
		d.UseNumber()
		if err := d.Decode(&e); err != nil {
			continue // not a model entry
		}
		if e.InputCostPerToken == nil || e.OutputCostPerToken == nil {
			continue
		}
		var p Price
		var err error
		if p.Input, err = perMillion(e.InputCostPerToken); err != nil {
			return nil, fmt.Errorf("%s: %s.input_cost_per_token: %w", name, model, err)
		}
		if p.Output, err = perMillion(e.OutputCostPerToken); err != nil {
			return nil, fmt.Errorf("%s: %s.output_cost_per_token: %w", name, model, err)
		}
		for _, opt := range []struct {
			field string
			n     *json.Number
			dst   **Rate
		}{
			{"output_cost_per_reasoning_token", e.OutputCostPerReasoningToken, &p.Reasoning},
			{"cache_read_input_token_cost", e.CacheReadInputTokenCost, &p.CacheRead},
			{"cache_creation_input_token_cost", e.CacheCreationInputTokenCost, &p.CacheWrite},
			{"cache_creation_input_token_cost_above_1hr", e.CacheCreation1hr, &p.CacheWrite1h},
		} {
			if err := optional(opt.n, opt.dst); err != nil {
				return nil, fmt.Errorf("%s: %s.%s: %w", name, model, opt.field, err)
			}
		}
		if e.InputAbove200k != nil {
			// The tier's rates not given are the base ones, but for the 1-hour
			// cache write, which defaults to twice the tier's input.
			long := Price{Output: p.Output, Reasoning: p.Reasoning, CacheRead: p.CacheRead, CacheWrite: p.CacheWrite}
			if long.Input, err = perMillion(e.InputAbove200k); err != nil {
				return nil, fmt.Errorf("%s: %s.input_cost_per_token_above_200k_tokens: %w", name, model, err)
			}
			for _, opt := range []struct {
				field string
				n     *json.Number
				dst   **Rate
			}{
				{"cache_read_input_token_cost_above_200k_tokens", e.CacheReadAbove200k, &long.CacheRead},
				{"cache_creation_input_token_cost_above_200k_tokens", e.CacheCreationAbove200k, &long.CacheWrite},
			} {
				if err := optional(opt.n, opt.dst); err != nil {
					return nil, fmt.Errorf("%s: %s.%s: %w", name, model, opt.field, err)
				}
			}
			if e.OutputAbove200k != nil {
				if long.Output, err = perMillion(e.OutputAbove200k); err != nil {
					return nil, fmt.Errorf("%s: %s.output_cost_per_token_above_200k_tokens: %w", name, model, err)
				}
			}
			p.Long, p.LongAbove = &long, 200_000
		}
		t.Models[model] = p
	}
	return t, nil
}

// optional sets *dst to n per million, when n is given.
func optional(n *json.Number, dst **Rate) error {
	if n == nil {
		return nil
	}
	r, err := perMillion(n)
	if err != nil {
		return err
	}
	*dst = &r
	return nil
}

func perMillion(n *json.Number) (Rate, error) {
	d, err := decimal.NewFromString(n.String())
	if err != nil {
		return Rate{}, err
	}
	if d.IsNegative() {
		return Rate{}, fmt.Errorf("negative price %s", n)
	}
	return Rate{Decimal: d.Shift(6), set: true}, nil
}
