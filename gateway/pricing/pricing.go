// Package pricing is brownout's price table and the exact cost of an
// attempt: decimal from the YAML (or LiteLLM JSON) text to the ledger's
// NUMERIC column, never a float.
//
// Prices are USD per million tokens, per model, optionally per provider
// ("provider/model" overrides "model"). Reasoning tokens are billed at the
// reasoning rate, which defaults to the output rate; cache reads and writes
// at their rates, which default to the input rate. A model with no price
// is an error (ErrUnpriced), never a silent $0.
package pricing

import (
	_ "embed"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/shopspring/decimal"

	"github.com/brownout-dev/brownout/gateway/llm"
	"github.com/brownout-dev/brownout/internal/strictyaml"
)

// ErrUnpriced is returned for a model the table has no price for.
var ErrUnpriced = errors.New("pricing: model has no price")

// Price is one model's rates, USD per million tokens. A nil rate takes its
// default (Reasoning: Output; CacheRead, CacheWrite: Input; CacheWrite1h:
// twice Input, Anthropic's rule for every current model).
//
// Long, with LongAbove, is the long-context tier (Anthropic's and Google's):
// a request whose prompt (input, cache reads and writes) is over LongAbove
// tokens is billed whole at Long's rates, whose own defaults follow the
// same rules from Long's input and output.
type Price struct {
	Input        Rate   `yaml:"input" json:"input"`
	Output       Rate   `yaml:"output" json:"output"`
	Reasoning    *Rate  `yaml:"reasoning,omitempty" json:"reasoning,omitempty"`
	CacheRead    *Rate  `yaml:"cache_read,omitempty" json:"cache_read,omitempty"`
	CacheWrite   *Rate  `yaml:"cache_write,omitempty" json:"cache_write,omitempty"`
	CacheWrite1h *Rate  `yaml:"cache_write_1h,omitempty" json:"cache_write_1h,omitempty"`
	Long         *Price `yaml:"long,omitempty" json:"long,omitempty"`
	LongAbove    int64  `yaml:"long_above,omitempty" json:"long_above,omitempty"`
}

// At is the price that applies to a request of prompt tokens: Long above
// LongAbove, p otherwise.
func (p Price) At(prompt int64) Price {
	if p.Long != nil && prompt > p.LongAbove {
		return *p.Long
	}
	return p
}

// ReasoningRate is the reasoning rate, defaulting to the output rate.
func (p Price) ReasoningRate() decimal.Decimal { return or(p.Reasoning, p.Output) }

// CacheReadRate is the cache-read rate, defaulting to the input rate.
func (p Price) CacheReadRate() decimal.Decimal { return or(p.CacheRead, p.Input) }

// CacheWriteRate is the 5-minute cache-write rate, defaulting to the input
// rate.
func (p Price) CacheWriteRate() decimal.Decimal { return or(p.CacheWrite, p.Input) }

// CacheWrite1hRate is the 1-hour cache-write rate, defaulting to twice the
// input rate.
func (p Price) CacheWrite1hRate() decimal.Decimal {
	if p.CacheWrite1h != nil {
		return p.CacheWrite1h.Decimal
	}
	return p.Input.Mul(decimal.NewFromInt(2))
}

func or(r *Rate, def Rate) decimal.Decimal {
	if r != nil {
		return r.Decimal
	}
	return def.Decimal
}

// Cost is the exact cost of u at p (at its long-context tier when the
// prompt is over it).
func (p Price) Cost(u llm.Usage) decimal.Decimal {
	p = p.At(u.Prompt())
	sum := decimal.Zero
	// A rate is looked up (a derived one computed) only for tokens the
	// call has: most have no reasoning or cache tokens, so no work and no
	// allocation for them.
	for _, t := range [...]struct {
		tokens int64
		rate   func() decimal.Decimal
	}{
		{u.Input, func() decimal.Decimal { return p.Input.Decimal }},
		{u.Output, func() decimal.Decimal { return p.Output.Decimal }},
		{u.Reasoning, p.ReasoningRate},
		{u.CacheRead, p.CacheReadRate},
		{u.CacheWrite, p.CacheWriteRate},
		{u.CacheWrite1h, p.CacheWrite1hRate},
	} {
		if t.tokens != 0 {
			sum = sum.Add(t.rate().Mul(decimal.NewFromInt(t.tokens)))
		}
	}
	return sum.Shift(-6) // per million: the decimal point moves, nothing is rounded
}

// WorstCase is the most a call with input prompt tokens and at most
// maxOutput completion tokens can cost at p: every prompt token at the
// dearest of the input and cache rates, every completion token at the
// dearest of the output and reasoning rates, at the long-context tier if
// the prompt is over it. Budgets reserve it before the call. A 1-hour
// cache write counts only where its rate is set: only Anthropic's models
// write that cache, and their prices say so.
func (p Price) WorstCase(input, maxOutput int64) decimal.Decimal {
	p = p.At(input)
	return worstInputRate(p).Mul(decimal.NewFromInt(input)).Add(worstOutputRate(p).Mul(decimal.NewFromInt(maxOutput))).Shift(-6)
}

// Table maps models to prices. The zero Table is empty; it is safe for
// concurrent reads once built.
type Table struct {
	Source string           `yaml:"source" json:"source,omitempty"`
	AsOf   string           `yaml:"as_of" json:"as_of,omitempty"`
	Models map[string]Price `yaml:"models" json:"models"`
}

//go:embed default.yaml
var defaultYAML []byte

// Default returns the shipped table (default.yaml, with its source and date).
func Default() *Table {
	t, err := Parse("pricing/default.yaml", defaultYAML)
	if err != nil {
		panic(err) // the embedded table is tested
	}
	return t
}

// Load reads a YAML price table.
func Load(path string) (*Table, error) { return strictyaml.DecodeFile(path, Parse) }

// Parse decodes a YAML price table strictly; name is used in errors.
func Parse(name string, data []byte) (*Table, error) {
	var t Table
	if err := strictyaml.Decode(name, data, &t); err != nil {
		return nil, err
	}
	return &t, nil
}

// Validate implements strictyaml.Validator.
func (t *Table) Validate() error {
	var errs []error
	for _, k := range slices.Sorted(maps.Keys(t.Models)) {
		errs = append(errs, t.Models[k].validate("$.models."+strictyaml.Key(k))...)
	}
	return errors.Join(errs...)
}

func (p Price) validate(path string) []error {
	var errs []error
	for _, r := range []struct {
		field string
		rate  *Rate
	}{{"input", &p.Input}, {"output", &p.Output}, {"reasoning", p.Reasoning}, {"cache_read", p.CacheRead}, {"cache_write", p.CacheWrite}, {"cache_write_1h", p.CacheWrite1h}} {
		if r.rate != nil && r.rate.IsNegative() {
			errs = append(errs, strictyaml.Errorf(path+"."+r.field, "must not be negative, got %s", r.rate))
		}
	}
	if !p.Input.set || !p.Output.set {
		errs = append(errs, strictyaml.Errorf(path, "input and output prices are required"))
	}
	switch {
	case p.Long != nil && p.LongAbove <= 0:
		errs = append(errs, strictyaml.Errorf(path+".long_above", "must be positive when long is set, got %d", p.LongAbove))
	case p.Long == nil && p.LongAbove != 0:
		errs = append(errs, strictyaml.Errorf(path+".long_above", "is set without a long price"))
	case p.Long != nil && p.Long.Long != nil:
		errs = append(errs, strictyaml.Errorf(path+".long.long", "a long-context price has no tier of its own"))
	case p.Long != nil:
		errs = append(errs, p.Long.validate(path+".long")...)
	}
	return errs
}

// Lookup returns the price of model served by provider: "provider/model"
// if the table has it, else "model".
func (t *Table) Lookup(provider, model string) (Price, error) {
	if p, ok := t.Models[provider+"/"+model]; ok {
		return p, nil
	}
	if p, ok := t.Models[model]; ok {
		return p, nil
	}
	return Price{}, fmt.Errorf("%w: %s/%s", ErrUnpriced, provider, model)
}

// Cost prices u for provider and model.
func (t *Table) Cost(provider, model string, u llm.Usage) (decimal.Decimal, error) {
	p, err := t.Lookup(provider, model)
	if err != nil {
		return decimal.Zero, err
	}
	return p.Cost(u), nil
}

// Merge returns a table with t's prices overridden and extended by o's.
func (t *Table) Merge(o *Table) *Table {
	out := &Table{Source: t.Source, AsOf: t.AsOf, Models: maps.Clone(t.Models)}
	if out.Models == nil {
		out.Models = map[string]Price{}
	}
	if o != nil {
		maps.Copy(out.Models, o.Models)
		if o.Source != "" {
			out.Source = strings.TrimPrefix(out.Source+"; "+o.Source, "; ")
		}
	}
	return out
}
