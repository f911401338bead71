package evals

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"unicode"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// Scorer scores one output in [0, 1]. Implementations are safe for
// concurrent use once built.
type Scorer interface {
	Score(output string) float64
	Name() string
}

// Normalize are the normalisations Equals and Contains apply to both sides.
type Normalize struct {
	IgnoreCase        bool `yaml:"ignore_case"`
	TrimSpace         bool `yaml:"trim_space"`
	IgnorePunctuation bool `yaml:"ignore_punctuation"`
}

func (n Normalize) apply(s string) string {
	if n.IgnorePunctuation {
		s = strings.Map(func(r rune) rune {
			if unicode.IsPunct(r) {
				return -1
			}
			return r
		}, s)
	}
	if n.TrimSpace {
		s = strings.TrimSpace(s)
	}
	if n.IgnoreCase {
		s = strings.ToLower(s)
	}
	return s
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// Equals scores 1 when the output equals Value after normalisation.
type Equals struct {
	Value string
	Normalize
}

func (e Equals) Score(out string) float64 { return b2f(e.apply(out) == e.apply(e.Value)) }
func (e Equals) Name() string             { return "equals(" + strconv.Quote(e.Value) + ")" }

// Contains scores by substrings: Mode "any" (default) is 1 when any of
// Values occurs, "all" when all do.
type Contains struct {
	Values []string
	All    bool
	Normalize
}

func (c Contains) Score(out string) float64 {
	out = c.apply(out)
	for _, v := range c.Values {
		has := strings.Contains(out, c.apply(v))
		if c.All && !has {
			return 0
		}
		if !c.All && has {
			return 1
		}
	}
	return b2f(c.All)
}

func (c Contains) Name() string {
	mode := "any"
	if c.All {
		mode = "all"
	}
	return fmt.Sprintf("contains_%s(%q)", mode, c.Values)
}

// Regex scores 1 when the pattern matches the output.
type Regex struct{ re *regexp.Regexp }

// NewRegex compiles a Regex scorer.
func NewRegex(pattern string) (Regex, error) {
	re, err := regexp.Compile(pattern)
	return Regex{re: re}, err
}

func (r Regex) Score(out string) float64 { return b2f(r.re.MatchString(out)) }
func (r Regex) Name() string             { return "regex(" + r.re.String() + ")" }

// JSONValid scores 1 when the output (trimmed, a ```json fence removed) is valid JSON.
type JSONValid struct{}

func (JSONValid) Score(out string) float64 { return b2f(json.Valid([]byte(stripFence(out)))) }
func (JSONValid) Name() string             { return "json_valid" }

func stripFence(s string) string {
	s = strings.TrimSpace(s)
	if rest, ok := strings.CutPrefix(s, "```"); ok {
		rest = strings.TrimPrefix(rest, "json")
		s = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "```"))
	}
	return s
}

// JSONSchema scores 1 when the output is JSON valid against a schema
// (any draft the santhosh-tekuri/jsonschema library supports).
type JSONSchema struct{ schema *jsonschema.Schema }

// NewJSONSchema compiles a schema given as JSON text.
func NewJSONSchema(schemaJSON string) (JSONSchema, error) {
	doc, err := jsonschema.UnmarshalJSON(strings.NewReader(schemaJSON))
	if err != nil {
		return JSONSchema{}, fmt.Errorf("schema is not JSON: %w", err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("schema.json", doc); err != nil {
		return JSONSchema{}, err
	}
	s, err := c.Compile("schema.json")
	if err != nil {
		return JSONSchema{}, err
	}
	return JSONSchema{schema: s}, nil
}

func (j JSONSchema) Score(out string) float64 {
	v, err := jsonschema.UnmarshalJSON(strings.NewReader(stripFence(out)))
	if err != nil {
		return 0
	}
	return b2f(j.schema.Validate(v) == nil)
}

func (JSONSchema) Name() string { return "json_schema" }

// EditDistance scores the Levenshtein similarity 1 - d/max(len) (over
// runes, after normalisation); with Threshold > 0 it scores 1 at or above
// the threshold and 0 below.
type EditDistance struct {
	Value     string
	Threshold float64
	Normalize
}

func (e EditDistance) Score(out string) float64 {
	a, b := []rune(e.apply(out)), []rune(e.apply(e.Value))
	n := max(len(a), len(b))
	sim := 1.0
	if n > 0 {
		sim = 1 - float64(levenshtein(a, b))/float64(n)
	}
	if e.Threshold > 0 {
		return b2f(sim >= e.Threshold)
	}
	return sim
}

func (e EditDistance) Name() string { return "edit_distance(" + strconv.Quote(e.Value) + ")" }

// levenshtein is the edit distance of a and b; two rows, O(len(a)*len(b)).
// Small and exact, so written here rather than imported.
func levenshtein(a, b []rune) int {
	prev, cur := make([]int, len(b)+1), make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// Numeric scores 1 when the first number in the output is within
// Tolerance of Value.
type Numeric struct {
	Value, Tolerance float64
}

var numberRE = regexp.MustCompile(`[-+]?\d[\d,]*(\.\d+)?([eE][-+]?\d+)?`)

func (n Numeric) Score(out string) float64 {
	m := numberRE.FindString(out)
	if m == "" {
		return 0
	}
	v, err := strconv.ParseFloat(strings.ReplaceAll(m, ",", ""), 64)
	if err != nil {
		return 0
	}
	return b2f(math.Abs(v-n.Value) <= n.Tolerance)
}

func (n Numeric) Name() string { return fmt.Sprintf("numeric(%g±%g)", n.Value, n.Tolerance) }

// Func is a custom scorer written in Go.
type Func struct {
	Label string
	F     func(output string) float64
}

func (f Func) Score(out string) float64 { return math.Max(0, math.Min(1, f.F(out))) }
func (f Func) Name() string             { return f.Label }

// Weighted is a scorer with its weight in a case's score.
type Weighted struct {
	Scorer Scorer
	Weight float64 // default 1
}

// errNoScorer is returned for a case with no scorer.
var errNoScorer = errors.New("evals: a case needs at least one scorer")
