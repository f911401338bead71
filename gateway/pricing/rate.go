package pricing

import (
	"fmt"
	"strings"

	"github.com/shopspring/decimal"
)

// Rate is a price in USD per million tokens, parsed from the YAML scalar's
// text so that "0.075" is exactly 0.075: a float never comes between.
type Rate struct {
	decimal.Decimal
	set bool
}

// NewRate parses s ("2.50") as a Rate.
func NewRate(s string) (Rate, error) {
	d, err := decimal.NewFromString(strings.TrimSpace(s))
	if err != nil {
		return Rate{}, fmt.Errorf("pricing: %q is not a decimal number", s)
	}
	return Rate{Decimal: d, set: true}, nil
}

// MustRate is NewRate for constants; it panics on bad input.
func MustRate(s string) Rate {
	r, err := NewRate(s)
	if err != nil {
		panic(err)
	}
	return r
}

// UnmarshalYAML takes the scalar's text, quoted ("2.50") or not (2.50).
func (r *Rate) UnmarshalYAML(data []byte) error {
	s := strings.TrimSpace(string(data))
	s = strings.Trim(s, `"'`)
	v, err := NewRate(s)
	if err != nil {
		return err
	}
	*r = v
	return nil
}

// MarshalJSON writes the rate as a JSON string, exactly.
func (r Rate) MarshalJSON() ([]byte, error) { return []byte(`"` + r.String() + `"`), nil }
