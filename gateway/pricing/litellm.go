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
	Provider                    string       `json:"litellm_provider"`
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
		} {
			if opt.n == nil {
				continue
			}
			r, err := perMillion(opt.n)
			if err != nil {
				return nil, fmt.Errorf("%s: %s.%s: %w", name, model, opt.field, err)
			}
			*opt.dst = &r
		}
		t.Models[model] = p
	}
	return t, nil
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
