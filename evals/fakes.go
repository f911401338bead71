package evals

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"

	"github.com/brownout-dev/brownout/fakeprovider"
	"github.com/brownout-dev/brownout/gateway"
	"github.com/brownout-dev/brownout/gateway/ledger"
	"github.com/brownout-dev/brownout/gateway/llm"
	"github.com/brownout-dev/brownout/gateway/pricing"
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
	servers []*fakeprovider.Server
	writer  *ledger.Writer
	Store   *ledger.MemoryStore
}

// NewFakes starts the fakes serving models (vendor/model each) with seed.
func NewFakes(models []string, seed uint64) (*Fakes, error) {
	profiles := Profiles()
	byVendor := map[fakeprovider.Vendor]map[string]fakeprovider.Model{}
	routes := map[string][]gateway.Target{}
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
		if byVendor[p.Vendor] == nil {
			byVendor[p.Vendor] = map[string]fakeprovider.Model{}
		}
		byVendor[p.Vendor][t.Model] = p.Model
		routes[m] = []gateway.Target{t}
	}
	f := &Fakes{Store: ledger.NewMemoryStore()}
	providers := map[string]llm.Provider{}
	for _, v := range slices.Sorted(maps.Keys(byVendor)) {
		s, err := fakeprovider.NewUnstartedServer(fakeprovider.Config{Vendor: v, Seed: seed, Models: byVendor[v]})
		if err != nil {
			f.Close()
			return nil, err
		}
		f.servers = append(f.servers, s)
		name := string(v)
		a, err := gateway.NewAdapter(name, name, s.URL, "fake", &http.Client{Transport: s.Transport()}, nil)
		if err != nil {
			f.Close()
			return nil, err
		}
		providers[name] = a
	}
	w, err := ledger.NewWriter(f.Store, ledger.WriterConfig{})
	if err != nil {
		f.Close()
		return nil, err
	}
	f.writer = w
	f.Gateway, err = gateway.New(gateway.Options{Providers: providers, Routes: routes, Prices: pricing.Default(), Ledger: w,
		Retry: gateway.RetrySettings{Seed: seed}})
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// Target returns the in-process Target on the fakes.
func (f *Fakes) Target() Target { return InProcess{Gateway: f.Gateway} }

// Invoices returns what each fake billed.
func (f *Fakes) Invoices() []fakeprovider.Invoice {
	var out []fakeprovider.Invoice
	for _, s := range f.servers {
		out = append(out, s.Invoice())
	}
	return out
}

// Close stops the gateway, the ledger writer and the fakes.
func (f *Fakes) Close() error {
	var errs []error
	if f.Gateway != nil {
		f.Gateway.Close()
	}
	if f.writer != nil {
		errs = append(errs, f.writer.Close(context.Background()))
	}
	for _, s := range f.servers {
		s.Close()
	}
	return errors.Join(errs...)
}
