package scenarios

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/brownout-dev/brownout/fakeprovider"
	"github.com/brownout-dev/brownout/gateway"
	"github.com/brownout-dev/brownout/gateway/pricing"
	"github.com/brownout-dev/brownout/internal/strictyaml"
)

// Scenario is a fault timeline, traffic and expectations, run against the
// real gateway core and fake vendors. It loads from YAML (Load, Parse); the
// package documentation shows a full example.
type Scenario struct {
	Name     string        `yaml:"name"`
	Seed     uint64        `yaml:"seed"`
	Duration time.Duration `yaml:"duration"`
	// Providers are fake vendors by provider name; their seeds derive from Seed.
	Providers map[string]fakeprovider.Config `yaml:"providers"`
	Gateway   GatewaySpec                    `yaml:"gateway"`
	Traffic   Traffic                        `yaml:"traffic"`
	Faults    []FaultSpec                    `yaml:"faults"`
	Expect    Expect                         `yaml:"expect"`
}

// GatewaySpec is the gateway under test: the same settings `brownout serve` takes.
type GatewaySpec struct {
	Routes    map[string][]string               `yaml:"routes"`
	Fallbacks map[string]gateway.FallbackConfig `yaml:"fallbacks"`
	Breaker   gateway.BreakerConfig             `yaml:"breaker"`
	Retry     gateway.RetrySettings             `yaml:"retry"`
	Prices    map[string]pricing.Price          `yaml:"prices"`  // on top of the shipped table
	Budgets   map[string]BudgetSpec             `yaml:"budgets"` // by tenant
}

// BudgetSpec is a tenant's budget.
type BudgetSpec struct {
	USD    pricing.Rate  `yaml:"usd"`
	Window time.Duration `yaml:"window"`
}

// Traffic is the load: an open loop of requests at Rate per second (or
// following RateCurve), each to Route with a prompt, a tenant and a stream
// flag drawn from the seeded source.
type Traffic struct {
	Rate      float64     `yaml:"rate"`       // requests per second
	RateCurve []RatePoint `yaml:"rate_curve"` // piecewise constant, overrides Rate from each point on
	// Concurrency caps requests in flight; a request due while the cap is
	// reached is counted as shed by the client (default 64).
	Concurrency int `yaml:"concurrency"`
	// Route is the alias every request names; Routes, when set, are drawn
	// from uniformly instead.
	Route   string   `yaml:"route"`
	Routes  []string `yaml:"routes"`
	Prompts []string `yaml:"prompts"` // default: one question
	Tenants []string `yaml:"tenants"` // default: "scenario"
	// DuplicateShare is the share of requests sent again with the same
	// Idempotency-Key, as a client retrying after a timeout would.
	DuplicateShare float64 `yaml:"duplicate_share"`
	StreamShare    float64 `yaml:"stream_share"` // share of streamed requests
	MaxTokens      int     `yaml:"max_tokens"`
}

// RatePoint sets the request rate from At on.
type RatePoint struct {
	At   time.Duration `yaml:"at"`
	Rate float64       `yaml:"rate"`
}

// FaultSpec is one fault on the timeline: a fakeprovider.Fault of Provider
// active from At for For (0: to the end).
type FaultSpec struct {
	Provider           string        `yaml:"provider"`
	At                 time.Duration `yaml:"at"`
	For                time.Duration `yaml:"for"`
	fakeprovider.Fault `yaml:",inline"`
}

// Load reads a scenario file strictly; errors name the file, line and field.
func Load(path string) (*Scenario, error) { return strictyaml.DecodeFile(path, Parse) }

// Parse is Load on bytes; name is used in errors.
func Parse(name string, data []byte) (*Scenario, error) {
	var sc Scenario
	if err := strictyaml.Decode(name, data, &sc); err != nil {
		return nil, err
	}
	sc.normalize()
	return &sc, nil
}

func (sc *Scenario) normalize() {
	if sc.Seed == 0 {
		sc.Seed = 1
	}
	if sc.Traffic.Concurrency == 0 {
		sc.Traffic.Concurrency = 64
	}
	if len(sc.Traffic.Prompts) == 0 {
		sc.Traffic.Prompts = []string{"What is the capital of France? One word."}
	}
	if len(sc.Traffic.Routes) == 0 && sc.Traffic.Route != "" {
		sc.Traffic.Routes = []string{sc.Traffic.Route}
	}
	if len(sc.Traffic.Tenants) == 0 {
		sc.Traffic.Tenants = []string{"scenario"}
	}
}

// Validate implements strictyaml.Validator.
func (sc *Scenario) Validate() error {
	var errs []error
	bad := func(path, format string, args ...any) { errs = append(errs, strictyaml.Errorf(path, format, args...)) }
	if sc.Name == "" {
		bad("$.name", "is required")
	}
	if sc.Duration <= 0 {
		bad("$.duration", "must be positive")
	}
	if len(sc.Providers) == 0 {
		bad("$.providers", "at least one provider is required")
	}
	for _, name := range slices.Sorted(maps.Keys(sc.Providers)) {
		p := sc.Providers[name]
		if len(p.Faults) > 0 {
			bad("$.providers."+strictyaml.Key(name)+".faults", "put faults on the scenario's timeline (faults:), not in the provider")
		}
		if err := p.Validate(); err != nil {
			var fe *strictyaml.FieldError
			for _, e := range strictyaml.Flatten(err) {
				if errors.As(e, &fe) {
					bad("$.providers."+strictyaml.Key(name)+strings.TrimPrefix(fe.Path, "$"), "%s", fe.Msg)
				} else {
					bad("$.providers."+strictyaml.Key(name), "%v", e)
				}
			}
		}
	}
	if len(sc.Gateway.Routes) == 0 {
		bad("$.gateway.routes", "at least one route is required")
	}
	for alias, targets := range sc.Gateway.Routes {
		for i, s := range targets {
			t, err := gateway.ParseTarget(s)
			if err != nil {
				bad(fmt.Sprintf("$.gateway.routes.%s[%d]", strictyaml.Key(alias), i), "%v", err)
				continue
			}
			if _, ok := sc.Providers[t.Provider]; !ok {
				bad(fmt.Sprintf("$.gateway.routes.%s[%d]", strictyaml.Key(alias), i), "unknown provider %q", t.Provider)
			}
		}
	}
	tr := sc.Traffic
	if tr.Rate <= 0 && len(tr.RateCurve) == 0 {
		bad("$.traffic.rate", "a positive rate (or a rate_curve) is required")
	}
	if (tr.Route == "") == (len(tr.Routes) == 0) {
		bad("$.traffic.route", "set exactly one of route and routes")
	}
	for _, r := range append([]string{tr.Route}, tr.Routes...) {
		if _, ok := sc.Gateway.Routes[r]; r != "" && !ok {
			bad("$.traffic.route", "route %q is not one of gateway.routes", r)
		}
	}
	for _, sh := range []struct {
		f string
		v float64
	}{{"duplicate_share", tr.DuplicateShare}, {"stream_share", tr.StreamShare}} {
		if sh.v < 0 || sh.v > 1 {
			bad("$.traffic."+sh.f, "must be in [0, 1]")
		}
	}
	for i, f := range sc.Faults {
		p := fmt.Sprintf("$.faults[%d]", i)
		if _, ok := sc.Providers[f.Provider]; !ok {
			bad(p+".provider", "unknown provider %q", f.Provider)
		}
		if f.At < 0 || f.For < 0 {
			bad(p+".at", "at and for must not be negative")
		}
		if f.Fault.From != 0 || f.Fault.Until != 0 {
			bad(p, "use at and for on the timeline, not from and until")
		}
		if cfg, ok := sc.Providers[f.Provider]; ok {
			// The fake checks the fault's kind and parameters.
			cfg.Faults = []fakeprovider.Fault{f.Fault}
			for _, e := range strictyaml.Flatten(cfg.Validate()) {
				var fe *strictyaml.FieldError
				if errors.As(e, &fe) && strings.HasPrefix(fe.Path, "$.faults[0]") {
					bad(p+strings.TrimPrefix(fe.Path, "$.faults[0]"), "%s", fe.Msg)
				}
			}
		}
	}
	errs = append(errs, sc.Expect.validate()...)
	return errors.Join(errs...)
}

// faultsOf returns the fakeprovider faults of provider on the timeline.
func (sc *Scenario) faultsOf(provider string) []fakeprovider.Fault {
	var out []fakeprovider.Fault
	for _, f := range sc.Faults {
		if f.Provider != provider {
			continue
		}
		ff := f.Fault
		ff.From = f.At
		if f.For > 0 {
			ff.Until = f.At + f.For
		}
		out = append(out, ff)
	}
	return out
}

// rateAt is the request rate at offset t.
func (tr *Traffic) rateAt(t time.Duration) float64 {
	r := tr.Rate
	for _, p := range tr.RateCurve {
		if t >= p.At {
			r = p.Rate
		}
	}
	return r
}
