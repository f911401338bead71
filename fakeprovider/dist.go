package fakeprovider

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"

	"github.com/goccy/go-yaml"
)

// Dist is a distribution of non-negative numbers: token counts, or
// milliseconds of latency. The zero Dist is the constant 0.
//
// In YAML a bare number is a fixed value; otherwise a mapping:
//
//	24                                      # fixed
//	{kind: uniform, min: 10, max: 40}
//	{kind: normal, mean: 24, stddev: 4, min: 0}
//	{kind: lognormal, median: 300, sigma: 0.5, max: 5000}
//
// Min and Max bound every kind (Max 0 means unbounded); samples below 0 are 0.
type Dist struct {
	Kind   string  `yaml:"kind" json:"kind"` // fixed (default), uniform, normal, lognormal
	Value  float64 `yaml:"value,omitempty" json:"value,omitempty"`
	Min    float64 `yaml:"min,omitempty" json:"min,omitempty"`
	Max    float64 `yaml:"max,omitempty" json:"max,omitempty"`
	Mean   float64 `yaml:"mean,omitempty" json:"mean,omitempty"`
	Stddev float64 `yaml:"stddev,omitempty" json:"stddev,omitempty"`
	Median float64 `yaml:"median,omitempty" json:"median,omitempty"`
	Sigma  float64 `yaml:"sigma,omitempty" json:"sigma,omitempty"`
}

// Fixed returns the constant distribution v.
func Fixed(v float64) Dist { return Dist{Kind: "fixed", Value: v} }

// Uniform returns the uniform distribution on [lo, hi].
func Uniform(lo, hi float64) Dist { return Dist{Kind: "uniform", Min: lo, Max: hi} }

// UnmarshalYAML accepts a bare number as a fixed distribution.
func (d *Dist) UnmarshalYAML(data []byte) error {
	var v float64
	if err := yaml.Unmarshal(data, &v); err == nil {
		*d = Fixed(v)
		return nil
	}
	type plain Dist
	var p plain
	if err := yaml.UnmarshalWithOptions(data, &p, yaml.Strict()); err != nil {
		return err
	}
	*d = Dist(p)
	return nil
}

// validate reports a bad distribution; path names it in errors.
func (d Dist) validate() error {
	switch strings.ToLower(d.Kind) {
	case "", "fixed":
		if d.Value < 0 {
			return fmt.Errorf("fixed value must not be negative, got %v", d.Value)
		}
	case "uniform":
		if d.Min < 0 || d.Max < d.Min {
			return fmt.Errorf("uniform needs 0 <= min <= max, got min %v max %v", d.Min, d.Max)
		}
	case "normal":
		if d.Stddev < 0 {
			return fmt.Errorf("normal stddev must not be negative, got %v", d.Stddev)
		}
	case "lognormal":
		if d.Median <= 0 || d.Sigma < 0 {
			return fmt.Errorf("lognormal needs median > 0 and sigma >= 0, got median %v sigma %v", d.Median, d.Sigma)
		}
	default:
		return fmt.Errorf("unknown distribution kind %q (want fixed, uniform, normal or lognormal)", d.Kind)
	}
	if d.Max != 0 && d.Max < d.Min {
		return fmt.Errorf("max %v is below min %v", d.Max, d.Min)
	}
	return nil
}

// Sample draws one value from d using r.
func (d Dist) Sample(r *rand.Rand) float64 {
	var v float64
	switch strings.ToLower(d.Kind) {
	case "", "fixed":
		return d.Value
	case "uniform":
		v = d.Min + r.Float64()*(d.Max-d.Min)
	case "normal":
		v = d.Mean + r.NormFloat64()*d.Stddev
	case "lognormal":
		v = d.Median * math.Exp(r.NormFloat64()*d.Sigma)
	}
	if v < d.Min {
		v = d.Min
	}
	if d.Max != 0 && v > d.Max {
		v = d.Max
	}
	return max(v, 0)
}
