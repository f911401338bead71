// Package gatewaytest runs a brownout gateway on fake vendors for tests, in
// the shape of net/http/httptest: New builds it with one call, Close stops
// it. The gateway is built the way `brownout serve` builds it, from a
// gateway.Config through Config.Build, so a test exercises the wiring and
// defaults users run, only with fakes where the vendors would be.
//
//	g, err := gatewaytest.New(gatewaytest.Config{
//		Fakes:   map[string]fakeprovider.Config{"openai": {Vendor: fakeprovider.OpenAI, Models: models}},
//		Gateway: gateway.Config{Routes: map[string][]string{"chat": {"openai/gpt-4o-mini"}}},
//	})
//	defer g.Close()
//	srv := httptest.NewServer(g.Handler) // or g.Complete(ctx, req) in process
//
// By default the fakes serve an in-memory transport, so the whole gateway
// runs inside a testing/synctest bubble in virtual time; Loopback serves
// them on 127.0.0.1 instead.
package gatewaytest

import (
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"slices"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/brownout-dev/brownout/fakeprovider"
	"github.com/brownout-dev/brownout/gateway"
	"github.com/brownout-dev/brownout/gateway/ledger"
)

// The tenant a Gateway admits when its config names none.
const (
	DefaultTenant = "test"
	DefaultKey    = "bk-gatewaytest"
)

// ProviderKey is the key the gateway sends every fake vendor (the fakes
// accept any): a test can check that it never reaches a client or a log.
const ProviderKey = "sk-gatewaytest-provider-secret"

// keyEnv is the environment variable ProviderKey is read from.
const keyEnv = "BROWNOUT_GATEWAYTEST_PROVIDER_KEY"

// Config is a gateway on fakes. The zero value of each field means what its
// comment says.
type Config struct {
	// Fakes are the fake vendors to start, by provider name; the
	// provider's vendor is its fake's. The fakes bill from their own price
	// list (fakeprovider.ListPrices, or a model's Price), never the
	// gateway's table.
	Fakes map[string]fakeprovider.Config
	// Servers are fakes already running, by provider name, that this
	// gateway shares with others (two gateway processes in front of the
	// same vendors); Close leaves them running.
	Servers map[string]*fakeprovider.Server
	// Loopback serves the started fakes on 127.0.0.1 TCP instead of the
	// in-memory transport (which virtual time needs), and the gateway
	// reaches them with the HTTP clients `brownout serve` builds. Servers
	// must be served the same way.
	Loopback bool
	// Gateway is the gateway's configuration as `brownout serve` reads it:
	// routes, prices, tenants, breaker, retry. Its providers are filled in
	// from the fakes (vendor and base URL); a provider it names already
	// keeps its other settings, such as Anthropic's thinking budget. No
	// tenants: DefaultTenant with DefaultKey.
	Gateway gateway.Config
	// Getenv resolves the tenants' api_key_env (nil: every variable is unset).
	Getenv func(string) string
	// Store is the ledger's store (nil: a new ledger.MemoryStore).
	Store ledger.Store
	// Ledger records the attempts (nil: ledger.Immediate on Store, so a
	// row is in the store when the request returns).
	Ledger gateway.Recorder
	// BudgetStore keeps the tenants' budgets (nil: in memory).
	BudgetStore gateway.BudgetStore
	// Idempotency keeps the Handler's Idempotency-Key records (nil: the
	// header is ignored).
	Idempotency gateway.IdempotencyStore
	// Logger is the gateway's logger (nil: discarded).
	Logger *slog.Logger
	// Options, if set, edits the gateway's options last, before
	// gateway.New (a test's clock, a wrapped provider).
	Options func(*gateway.Options)
}

// Gateway is a gateway on fakes. Its fields are set by New and read-only.
type Gateway struct {
	*gateway.Gateway
	// Fakes are the fake vendors by provider name, started and shared ones.
	Fakes map[string]*fakeprovider.Server
	// Store is the ledger's store.
	Store ledger.Store
	// Tenants are the tenants the Handler admits.
	Tenants []gateway.Tenant
	// Registry holds the gateway's metrics, served by the Handler at /metrics.
	Registry *prometheus.Registry
	// Handler is the gateway's HTTP front with the config's tenants,
	// body limit, metrics and the Idempotency store.
	Handler http.Handler

	started []*fakeprovider.Server
	clients []*http.Client
}

// New starts the fakes and builds a gateway on them through
// gateway.Config.Build. Bad settings are the errors Validate and Build give.
func New(cfg Config) (*Gateway, error) {
	g := &Gateway{Fakes: map[string]*fakeprovider.Server{}, Store: cfg.Store, Registry: prometheus.NewRegistry()}
	if g.Store == nil {
		g.Store = ledger.NewMemoryStore()
	}
	gc := cfg.Gateway
	gc.Providers = maps.Clone(gc.Providers)
	if gc.Providers == nil {
		gc.Providers = map[string]gateway.ProviderConfig{}
	}
	if len(gc.Tenants) == 0 {
		gc.Tenants = []gateway.TenantConfig{{Name: DefaultTenant, APIKeySHA256: fmt.Sprintf("%x", gateway.HashKey(DefaultKey))}}
	}
	for _, name := range slices.Sorted(maps.Keys(cfg.Fakes)) {
		fc := cfg.Fakes[name]
		s, err := fakeprovider.NewUnstartedServer(fc)
		if err != nil {
			g.Close()
			return nil, fmt.Errorf("gatewaytest: fake %s: %w", name, err)
		}
		g.started = append(g.started, s)
		if cfg.Loopback {
			if err := s.Start(); err != nil {
				g.Close()
				return nil, fmt.Errorf("gatewaytest: fake %s: %w", name, err)
			}
		}
		g.Fakes[name] = s
	}
	for name, s := range cfg.Servers {
		if s == nil {
			g.Close()
			return nil, fmt.Errorf("gatewaytest: Servers[%q] is nil", name)
		}
		if _, dup := g.Fakes[name]; dup {
			g.Close()
			return nil, fmt.Errorf("gatewaytest: provider %s is both in Fakes and in Servers", name)
		}
		g.Fakes[name] = s
	}
	for name, s := range g.Fakes {
		p := gc.Providers[name]
		p.Vendor, p.BaseURL, p.APIKeyEnv = string(s.Vendor()), s.URL, keyEnv
		gc.Providers[name] = p
	}
	if err := gc.Validate(); err != nil {
		g.Close()
		return nil, fmt.Errorf("gatewaytest: %w", err)
	}
	getenv := func(k string) string {
		if k == keyEnv {
			return ProviderKey
		}
		if cfg.Getenv != nil {
			return cfg.Getenv(k)
		}
		return ""
	}
	built, err := gc.Build(getenv, func(provider string) *http.Client {
		if cfg.Loopback {
			return nil // serve's own client, with its pool and timeout
		}
		c := g.Fakes[provider].Client()
		g.clients = append(g.clients, c)
		return c
	})
	if err != nil {
		g.Close()
		return nil, fmt.Errorf("gatewaytest: %w", err)
	}
	opts := gc.Options(built)
	opts.Ledger, opts.BudgetStore, opts.Logger = cfg.Ledger, cfg.BudgetStore, cfg.Logger
	if opts.Ledger == nil {
		opts.Ledger = &ledger.Immediate{Store: g.Store}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	opts.Metrics = gateway.NewMetrics(g.Registry, nil)
	if cfg.Options != nil {
		cfg.Options(&opts)
	}
	g.Gateway, err = gateway.New(opts)
	if err != nil {
		g.Close()
		return nil, fmt.Errorf("gatewaytest: %w", err)
	}
	g.Tenants = built.Tenants
	g.Handler = g.Gateway.Handler(gateway.HandlerOptions{Tenants: built.Tenants, MaxBodyBytes: gc.MaxBodyBytes,
		Gatherer: g.Registry, Idempotency: cfg.Idempotency})
	return g, nil
}

// Invoices returns what each fake billed, by provider name.
func (g *Gateway) Invoices() map[string]fakeprovider.Invoice {
	out := map[string]fakeprovider.Invoice{}
	for name, s := range g.Fakes {
		out[name] = s.Invoice()
	}
	return out
}

// Close stops the gateway's breaker events, then the fakes it started
// (not the shared Servers), and closes its idle upstream connections. It
// is safe to call more than once.
func (g *Gateway) Close() {
	if g.Gateway != nil {
		g.Gateway.Close()
	}
	for _, c := range g.clients {
		c.CloseIdleConnections()
	}
	for _, s := range g.started {
		s.Close()
	}
}
