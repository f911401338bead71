package evals

import (
	"context"
	_ "embed"
	"fmt"
	"maps"
	"slices"

	"github.com/brownout-dev/brownout/fakeprovider"
	"github.com/brownout-dev/brownout/gateway"
	"github.com/brownout-dev/brownout/gateway/gatewaytest"
	"github.com/brownout-dev/brownout/gateway/ledger"
	"github.com/brownout-dev/brownout/internal/strictyaml"
)

//go:embed profiles.yaml
var profilesYAML []byte

// Profile is a fake model: its vendor and its token behaviour.
type Profile struct {
	Vendor             fakeprovider.Vendor `yaml:"vendor"`
	fakeprovider.Model `yaml:",inline"`
}

// Profiles returns the shipped fake model profiles (evals/profiles.yaml).
func Profiles() map[string]Profile {
	var p map[string]Profile
	if err := strictyaml.Decode("evals/profiles.yaml", profilesYAML, &p); err != nil {
		panic(err) // the embedded file is tested
	}
	return p
}

// Fakes is a Gateway in front of fake vendors that serve Profiles, over
// the in-memory transport. Models are named vendor/model
// ("gemini/gemini-2.5-flash"), each its own route.
type Fakes struct {
	Gateway *gateway.Gateway
	Store   *ledger.MemoryStore
	g       *gatewaytest.Gateway
	writer  *ledger.Writer
}

// NewFakes starts the fakes serving models (vendor/model each) with seed.
func NewFakes(models []string, seed uint64) (*Fakes, error) {
	profiles := Profiles()
	fakes := map[string]fakeprovider.Config{}
	routes := map[string][]string{}
	for _, m := range models {
		t, err := gateway.ParseTarget(m)
		if err != nil {
			return nil, err
		}
		p, ok := profiles[t.Model]
		if !ok {
			return nil, fmt.Errorf("evals: no fake profile for %s (have %v)", t.Model, slices.Sorted(maps.Keys(profiles)))
		}
		if string(p.Vendor) != t.Provider {
			return nil, fmt.Errorf("evals: %s is served by %s, not %s", t.Model, p.Vendor, t.Provider)
		}
		fc, ok := fakes[t.Provider]
		if !ok {
			fc = fakeprovider.Config{Vendor: p.Vendor, Seed: seed, Models: map[string]fakeprovider.Model{}}
		}
		fc.Models[t.Model] = p.Model
		fakes[t.Provider] = fc
		routes[m] = []string{m}
	}
	f := &Fakes{Store: ledger.NewMemoryStore()}
	w, err := ledger.NewWriter(f.Store, ledger.WriterConfig{})
	if err != nil {
		return nil, err
	}
	f.writer = w
	f.g, err = gatewaytest.New(gatewaytest.Config{Fakes: fakes, Store: f.Store, Ledger: w,
		Gateway: gateway.Config{Routes: routes, Retry: gateway.RetrySettings{Seed: seed}}})
	if err != nil {
		_ = w.Close(context.Background())
		return nil, err
	}
	f.Gateway = f.g.Gateway
	return f, nil
}

// Target returns the in-process Target on the fakes.
func (f *Fakes) Target() Target { return InProcess{Gateway: f.Gateway} }

// Invoices returns what each fake billed, in provider order.
func (f *Fakes) Invoices() []fakeprovider.Invoice {
	inv := f.g.Invoices()
	var out []fakeprovider.Invoice
	for _, name := range slices.Sorted(maps.Keys(inv)) {
		out = append(out, inv[name])
	}
	return out
}

// Close stops the gateway, flushes the ledger writer, and stops the fakes.
func (f *Fakes) Close() error {
	f.Gateway.Close()
	err := f.writer.Close(context.Background())
	f.g.Close()
	return err
}
