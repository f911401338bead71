package evals

import (
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/brownout-dev/brownout/gateway/llm"
	"github.com/brownout-dev/brownout/internal/strictyaml"
)

// Case is one question of a suite: messages, the scorers that judge an
// answer, and the threshold its weighted score must reach to pass.
type Case struct {
	Name      string
	Messages  []llm.Message
	Scorers   []Weighted
	Tags      []string
	Threshold float64 // default 1: every scorer fully satisfied
}

// Score is the weighted mean of the case's scorers on output.
func (c *Case) Score(output string) float64 {
	var sum, weights float64
	for _, w := range c.Scorers {
		wt := w.Weight
		if wt == 0 {
			wt = 1
		}
		sum += wt * w.Scorer.Score(output)
		weights += wt
	}
	if weights == 0 {
		return 0
	}
	return sum / weights
}

// Passes reports whether score passes the case.
func (c *Case) Passes(score float64) bool {
	th := c.Threshold
	if th == 0 {
		th = 1
	}
	return score >= th-1e-12
}

// Suite is a set of cases, each sampled Samples times per model.
type Suite struct {
	Name        string
	Samples     int      // per case (default 20)
	Models      []string // the models to evaluate by default (routes, or provider/model)
	Concurrency int      // samples in flight (default 4)
	Seed        uint64   // seeds the bootstrap intervals (default 1)
	Cases       []Case
}

// suiteFile is a suite as YAML:
//
//	name: capitals
//	samples: 20
//	models: [anthropic/claude-haiku-4-5]
//	concurrency: 4
//	seed: 1
//	cases:
//	  - name: france
//	    system: "Answer in one word."          # optional
//	    prompt: "What is the capital of France?"
//	    tags: [europe]
//	    threshold: 1
//	    scorers:
//	      - {type: equals, value: Paris, ignore_case: true, trim_space: true, ignore_punctuation: true}
//	      - {type: contains, any: [Paris], weight: 0.5}
//	      - {type: regex, pattern: "^Paris"}
//	      - {type: json_valid}
//	      - {type: json_schema, schema: {type: object, required: [name]}}
//	      - {type: edit_distance, value: Paris, threshold: 0.8}
//	      - {type: numeric, number: 42, tolerance: 0.5}
//	      - {type: func, name: my-registered-scorer}
type suiteFile struct {
	Name        string     `yaml:"name"`
	Samples     int        `yaml:"samples"`
	Models      []string   `yaml:"models"`
	Concurrency int        `yaml:"concurrency"`
	Seed        uint64     `yaml:"seed"`
	Cases       []caseFile `yaml:"cases"`
}

type caseFile struct {
	Name      string        `yaml:"name"`
	System    string        `yaml:"system"`
	Prompt    string        `yaml:"prompt"`
	Messages  []llm.Message `yaml:"messages"`
	Tags      []string      `yaml:"tags"`
	Threshold float64       `yaml:"threshold"`
	Scorers   []scorerFile  `yaml:"scorers"`
}

type scorerFile struct {
	Type      string   `yaml:"type"`
	Weight    float64  `yaml:"weight"`
	Value     *string  `yaml:"value"`
	Any       []string `yaml:"any"`
	All       []string `yaml:"all"`
	Pattern   string   `yaml:"pattern"`
	Schema    any      `yaml:"schema"`
	Threshold float64  `yaml:"threshold"`
	Number    *float64 `yaml:"number"`
	Tolerance float64  `yaml:"tolerance"`
	Name      string   `yaml:"name"`
	Normalize `yaml:",inline"`
}

// LoadSuite reads a suite YAML strictly; errors name the file, line and field.
func LoadSuite(path string) (*Suite, error) { return strictyaml.DecodeFile(path, ParseSuite) }

// ParseSuite is LoadSuite on bytes; name is used in errors.
func ParseSuite(name string, data []byte) (*Suite, error) {
	var f suiteFile
	if err := strictyaml.Decode(name, data, &f); err != nil {
		return nil, err
	}
	s := &Suite{Name: f.Name, Samples: f.Samples, Models: f.Models, Concurrency: f.Concurrency, Seed: f.Seed}
	var errs []error
	for i, cf := range f.Cases {
		c, err := cf.build(fmt.Sprintf("$.cases[%d]", i))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		s.Cases = append(s.Cases, c)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, strictyaml.Locate(name, data, err)
	}
	s.normalize()
	return s, nil
}

func (s *Suite) normalize() {
	if s.Samples <= 0 {
		s.Samples = 20
	}
	if s.Concurrency <= 0 {
		s.Concurrency = 4
	}
	if s.Seed == 0 {
		s.Seed = 1
	}
}

// Validate implements strictyaml.Validator.
func (f *suiteFile) Validate() error {
	var errs []error
	bad := func(path, format string, args ...any) { errs = append(errs, strictyaml.Errorf(path, format, args...)) }
	if f.Name == "" {
		bad("$.name", "is required")
	}
	if f.Samples < 0 {
		bad("$.samples", "must not be negative")
	}
	if f.Concurrency < 0 {
		bad("$.concurrency", "must not be negative")
	}
	if len(f.Cases) == 0 {
		bad("$.cases", "at least one case is required")
	}
	seen := map[string]bool{}
	for i, c := range f.Cases {
		p := fmt.Sprintf("$.cases[%d]", i)
		if c.Name == "" {
			bad(p+".name", "is required")
		} else if seen[c.Name] {
			bad(p+".name", "case %q appears twice", c.Name)
		}
		seen[c.Name] = true
		if (c.Prompt == "") == (len(c.Messages) == 0) {
			bad(p, "set exactly one of prompt and messages")
		}
		if c.Threshold < 0 || c.Threshold > 1 {
			bad(p+".threshold", "must be in [0, 1]")
		}
		if len(c.Scorers) == 0 {
			bad(p+".scorers", "%v", errNoScorer)
		}
	}
	return errors.Join(errs...)
}

func (cf caseFile) build(path string) (Case, error) {
	c := Case{Name: cf.Name, Tags: cf.Tags, Threshold: cf.Threshold, Messages: cf.Messages}
	if cf.Prompt != "" {
		if cf.System != "" {
			c.Messages = append(c.Messages, llm.Message{Role: "system", Content: cf.System})
		}
		c.Messages = append(c.Messages, llm.Message{Role: "user", Content: cf.Prompt})
	}
	var errs []error
	for i, sf := range cf.Scorers {
		sp := fmt.Sprintf("%s.scorers[%d]", path, i)
		sc, err := sf.build()
		if err != nil {
			errs = append(errs, strictyaml.Errorf(sp, "%v", err))
			continue
		}
		if sf.Weight < 0 {
			errs = append(errs, strictyaml.Errorf(sp+".weight", "must not be negative"))
		}
		c.Scorers = append(c.Scorers, Weighted{Scorer: sc, Weight: sf.Weight})
	}
	return c, errors.Join(errs...)
}

func (sf scorerFile) build() (Scorer, error) {
	value := func() (string, error) {
		if sf.Value == nil {
			return "", fmt.Errorf("%s needs a value", sf.Type)
		}
		return *sf.Value, nil
	}
	switch sf.Type {
	case "equals":
		v, err := value()
		return Equals{Value: v, Normalize: sf.Normalize}, err
	case "contains", "icontains":
		n := sf.Normalize
		if sf.Type == "icontains" {
			n.IgnoreCase = true
		}
		if (len(sf.Any) == 0) == (len(sf.All) == 0) {
			return nil, errors.New("contains needs exactly one of any and all")
		}
		if len(sf.All) > 0 {
			return Contains{Values: sf.All, All: true, Normalize: n}, nil
		}
		return Contains{Values: sf.Any, Normalize: n}, nil
	case "regex":
		r, err := NewRegex(sf.Pattern)
		if err != nil {
			return nil, fmt.Errorf("regex: %w", err)
		}
		return r, nil
	case "json_valid":
		return JSONValid{}, nil
	case "json_schema":
		if sf.Schema == nil {
			return nil, errors.New("json_schema needs a schema")
		}
		b, err := json.Marshal(toJSONable(sf.Schema))
		if err != nil {
			return nil, fmt.Errorf("json_schema: %w", err)
		}
		js, err := NewJSONSchema(string(b))
		if err != nil {
			return nil, fmt.Errorf("json_schema: %w", err)
		}
		return js, nil
	case "edit_distance":
		v, err := value()
		if sf.Threshold < 0 || sf.Threshold > 1 {
			return nil, errors.New("edit_distance threshold must be in [0, 1]")
		}
		return EditDistance{Value: v, Threshold: sf.Threshold, Normalize: sf.Normalize}, err
	case "numeric":
		if sf.Number == nil {
			return nil, errors.New("numeric needs a number")
		}
		if sf.Tolerance < 0 {
			return nil, errors.New("numeric tolerance must not be negative")
		}
		return Numeric{Value: *sf.Number, Tolerance: sf.Tolerance}, nil
	case "func":
		f, ok := lookupFunc(sf.Name)
		if !ok {
			return nil, fmt.Errorf("no scorer func %q is registered (evals.RegisterFunc)", sf.Name)
		}
		return f, nil
	}
	return nil, fmt.Errorf("unknown scorer type %q (want equals, contains, icontains, regex, json_valid, json_schema, edit_distance, numeric or func)", sf.Type)
}

// toJSONable turns YAML-decoded maps into JSON-encodable ones.
func toJSONable(v any) any {
	switch t := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, x := range t {
			out[k] = toJSONable(x)
		}
		return out
	case map[any]any:
		out := map[string]any{}
		for k, x := range t {
			out[fmt.Sprint(k)] = toJSONable(x)
		}
		return out
	case []any:
		for i := range t {
			t[i] = toJSONable(t[i])
		}
		return t
	}
	return v
}

var (
	funcsMu sync.RWMutex
	funcs   = map[string]Func{}
)

// RegisterFunc makes a Go scorer available to suites as {type: func, name: NAME}.
func RegisterFunc(name string, f func(output string) float64) {
	funcsMu.Lock()
	defer funcsMu.Unlock()
	funcs[name] = Func{Label: name, F: f}
}

func lookupFunc(name string) (Func, bool) {
	funcsMu.RLock()
	defer funcsMu.RUnlock()
	f, ok := funcs[name]
	return f, ok
}
