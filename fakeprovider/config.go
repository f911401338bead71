package fakeprovider

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/brownout-dev/brownout/internal/strictyaml"
)

// Vendor is the wire format a fake speaks.
type Vendor string

// The vendors.
const (
	Anthropic Vendor = "anthropic" // Messages API: POST /v1/messages
	Gemini    Vendor = "gemini"    // POST /v1beta/models/{model}:generateContent, :streamGenerateContent?alt=sse
	OpenAI    Vendor = "openai"    // Chat Completions: POST /v1/chat/completions
)

// Config is one fake vendor: what its models answer and how it misbehaves.
// It loads from YAML (LoadFile) with the field names in the tags.
type Config struct {
	Vendor Vendor `yaml:"vendor" json:"vendor"`
	// Seed seeds every random choice the fake makes; the same seed and the
	// same sequence of requests give byte-identical responses.
	Seed uint64 `yaml:"seed" json:"seed"`
	// APIKey, when set, is the only key the fake accepts. Empty accepts any
	// non-empty key (a missing key is still rejected, as the vendor does).
	APIKey string `yaml:"api_key" json:"-"`
	// AdminKey, when set, is the only key the usage and cost reports accept
	// (the vendors' admin keys); empty accepts any non-empty key.
	AdminKey string `yaml:"admin_key" json:"-"`
	// ControlToken, when set, is required of every request to the control
	// API under /_fake/, in the X-Fake-Control-Token header. The control
	// API answers loopback clients only, token or not.
	ControlToken string `yaml:"-" json:"-"`
	// Models maps model names to behaviour. A request for another model is
	// answered 404 in the vendor's envelope.
	Models map[string]Model `yaml:"models" json:"models"`
	// Faults are injected in order of this list (see Fault).
	Faults []Fault `yaml:"faults" json:"faults"`
	// Epoch is the wall-clock time the fake's clock reads at its start, used
	// for timestamps in responses (default 2026-01-01T00:00:00Z), so bodies
	// do not depend on when the test ran.
	Epoch time.Time `yaml:"epoch" json:"epoch"`
}

// Model is how one model behaves.
type Model struct {
	// Answers are the visible answers, chosen by weight for each request.
	// Empty means one answer, "OK".
	Answers []Answer `yaml:"answers" json:"answers"`
	// Rules answer by prompt: the first rule whose Match occurs in the
	// request's text (case-insensitive) gives the answers; Answers is the
	// fallback. An eval suite's fake model answers each question its own way.
	Rules []Rule `yaml:"rules" json:"rules,omitempty"`
	// ReasoningTokens is how many thinking tokens the model spends before it
	// answers: for OpenAI always, for Gemini unless thinkingBudget is 0, for
	// Anthropic when the request enables thinking. Zero for a non-thinking model.
	ReasoningTokens Dist `yaml:"reasoning_tokens" json:"reasoning_tokens"`
	// Thinking is the thinking text shown when the client asks to see
	// thoughts (Anthropic thinking blocks, Gemini includeThoughts).
	Thinking string `yaml:"thinking" json:"thinking,omitempty"`
	// CacheReadTokens is how many input tokens are served from the cache
	// (capped at the input).
	CacheReadTokens Dist `yaml:"cache_read_tokens" json:"cache_read_tokens"`
	// TTFTms is the time to the first token, in milliseconds.
	TTFTms Dist `yaml:"ttft_ms" json:"ttft_ms"`
	// PerTokenMs is the time per generated token (reasoning and output), in
	// milliseconds, sampled once per request.
	PerTokenMs Dist `yaml:"per_token_ms" json:"per_token_ms"`
	// Price is what the fake charges for the model; nil takes it from
	// ListPrices. A model priced by neither is billed as Unpriced, at zero.
	Price *ListPrice `yaml:"price" json:"price,omitempty"`
}

// Rule is a prompt-dependent set of answers.
type Rule struct {
	Match   string   `yaml:"match" json:"match"`
	Answers []Answer `yaml:"answers" json:"answers"`
}

// Answer is one possible answer of a model.
type Answer struct {
	Text string `yaml:"text" json:"text"`
	// Weight is the answer's relative probability (default 1).
	Weight float64 `yaml:"weight" json:"weight,omitempty"`
	// Tokens is the answer's output token count (default: about 4
	// characters a token, at least 1).
	Tokens int `yaml:"tokens" json:"tokens,omitempty"`
}

// DefaultEpoch is the default Config.Epoch.
var DefaultEpoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// File is a YAML file of fakes, as `brownout fake --config` reads it.
type File struct {
	// Seed is the default seed of every provider.
	Seed      uint64            `yaml:"seed"`
	Providers map[string]Config `yaml:"providers"`
}

// LoadFile reads and strictly validates a File. Errors name the file,
// line and field.
func LoadFile(path string) (*File, error) { return strictyaml.DecodeFile(path, ParseFile) }

// ParseFile is LoadFile on bytes already read; name is used in errors.
func ParseFile(name string, data []byte) (*File, error) {
	var f File
	if err := strictyaml.Decode(name, data, &f); err != nil {
		return nil, err
	}
	for k, p := range f.Providers {
		if p.Seed == 0 {
			p.Seed = f.Seed
		}
		f.Providers[k] = p
	}
	return &f, nil
}

// Validate implements strictyaml.Validator.
func (f *File) Validate() error {
	if len(f.Providers) == 0 {
		return strictyaml.Errorf("$.providers", "at least one provider is required")
	}
	var errs []error
	for _, name := range sortedKeys(f.Providers) {
		p := f.Providers[name]
		errs = append(errs, p.validate("$.providers."+strictyaml.Key(name)))
	}
	return errors.Join(errs...)
}

// Validate checks the config; errors name the field by its YAML path.
func (c *Config) Validate() error { return c.validate("$") }

func (c *Config) validate(path string) error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, strictyaml.Errorf(path+field, format, args...))
	}
	switch c.Vendor {
	case Anthropic, Gemini, OpenAI:
	case "":
		bad(".vendor", "is required (anthropic, gemini or openai)")
	default:
		bad(".vendor", "unknown vendor %q (want anthropic, gemini or openai)", c.Vendor)
	}
	if len(c.Models) == 0 {
		bad(".models", "at least one model is required")
	}
	for _, name := range sortedKeys(c.Models) {
		m := c.Models[name]
		mp := ".models." + strictyaml.Key(name)
		checkAnswers := func(path string, answers []Answer) {
			for i, a := range answers {
				if a.Weight < 0 || math.IsNaN(a.Weight) {
					bad(fmt.Sprintf("%s[%d].weight", path, i), "must not be negative, got %v", a.Weight)
				}
				if a.Tokens < 0 {
					bad(fmt.Sprintf("%s[%d].tokens", path, i), "must not be negative, got %d", a.Tokens)
				}
				if a.Text == "" {
					bad(fmt.Sprintf("%s[%d].text", path, i), "is required")
				}
			}
		}
		checkAnswers(mp+".answers", m.Answers)
		for i, r := range m.Rules {
			if r.Match == "" {
				bad(fmt.Sprintf("%s.rules[%d].match", mp, i), "is required")
			}
			if len(r.Answers) == 0 {
				bad(fmt.Sprintf("%s.rules[%d].answers", mp, i), "at least one answer is required")
			}
			checkAnswers(fmt.Sprintf("%s.rules[%d].answers", mp, i), r.Answers)
		}
		for _, d := range []struct {
			field string
			dist  Dist
		}{{"reasoning_tokens", m.ReasoningTokens}, {"cache_read_tokens", m.CacheReadTokens}, {"ttft_ms", m.TTFTms}, {"per_token_ms", m.PerTokenMs}} {
			if err := d.dist.validate(); err != nil {
				bad(mp+"."+d.field, "%v", err)
			}
		}
		if m.Price != nil {
			if err := m.Price.validate(); err != nil {
				bad(mp+".price", "%v", err)
			}
		}
	}
	for i, f := range c.Faults {
		if err := f.validate(); err != nil {
			var fe *strictyaml.FieldError
			if errors.As(err, &fe) {
				bad(fmt.Sprintf(".faults[%d].%s", i, fe.Path), "%s", fe.Msg)
			} else {
				bad(fmt.Sprintf(".faults[%d]", i), "%v", err)
			}
		}
		for _, m := range f.Models {
			if _, ok := c.Models[m]; !ok {
				bad(fmt.Sprintf(".faults[%d].models", i), "model %q is not one of this provider's models", m)
			}
		}
	}
	return errors.Join(errs...)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
