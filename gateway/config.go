package gateway

import (
	"errors"
	"fmt"
	"maps"
	"net/http"
	"path/filepath"
	"slices"
	"time"

	"github.com/brownout-dev/brownout/gateway/ledger"
	"github.com/brownout-dev/brownout/gateway/llm"
	"github.com/brownout-dev/brownout/gateway/pricing"
	"github.com/brownout-dev/brownout/gateway/providers/anthropic"
	"github.com/brownout-dev/brownout/gateway/providers/gemini"
	"github.com/brownout-dev/brownout/gateway/providers/openai"
	"github.com/brownout-dev/brownout/internal/strictyaml"
)

// Config is the `brownout serve` configuration file:
//
//	providers:
//	  anthropic:
//	    vendor: anthropic                  # anthropic | gemini | openai
//	    base_url: https://api.anthropic.com
//	    api_key_env: ANTHROPIC_API_KEY     # the key is read from this variable
//	    thinking_budget: {claude-sonnet-4-5: 2048}
//	routes:
//	  chat: [anthropic/claude-haiku-4-5, gemini/gemini-2.5-flash]
//	fallbacks:                             # by route, by kind of error
//	  chat: {on_context_length: [gemini/gemini-2.5-pro]}
//	prices:                                # on top of the shipped table
//	  file: prices.yaml                    # a brownout price table
//	  litellm: model_prices_and_context_window.json
//	  models: {my-model: {input: "1.00", output: "2.00"}}
//	tenants:
//	  - {name: acme, api_key_env: BROWNOUT_KEY_ACME, budget_usd: "25.00", budget_window: 24h}
//	  - {name: hot, api_key_env: BROWNOUT_KEY_HOT, budget_usd: "500", budget_slice_usd: "1.00"}
//	  - {name: beta, api_key_sha256: 9f86d08...}
//	breaker:                               # defaults of every provider
//	  consecutive_failures: 5
//	  open_for: 30s
//	  half_open_probes: 1
//	  providers:                           # per-provider overrides (whole settings)
//	    gemini: {failure_ratio: 0.5, min_requests: 20, interval: 60s, open_for: 1m}
//	retry: {max_attempts: 3, base_backoff: 200ms, max_backoff: 10s, attempt_timeout: 60s, deadline: 120s,
//	        first_token_timeout: 60s, idle_timeout: 2m, on_timeout: failover, max_retry_after_wait: 0s,
//	        providers: {openai: {first_token_timeout: 20s}}}
//	idempotency: {retention: 24h}
//	max_body_bytes: 1048576
//	ledger:
//	  spool_dir: /var/lib/brownout/spool
//
// Relative paths are relative to the config file.
type Config struct {
	Providers    map[string]ProviderConfig `yaml:"providers"`
	Routes       map[string][]string       `yaml:"routes"`
	Fallbacks    map[string]FallbackConfig `yaml:"fallbacks"` // by route
	Prices       PricesConfig              `yaml:"prices"`
	Tenants      []TenantConfig            `yaml:"tenants"`
	MaxBodyBytes int64                     `yaml:"max_body_bytes"`
	Ledger       LedgerConfig              `yaml:"ledger"`
	Breaker      BreakerConfig             `yaml:"breaker"`
	Retry        RetrySettings             `yaml:"retry"`
	Idempotency  IdempotencySettings       `yaml:"idempotency"`

	dir string // the config file's directory
}

// FallbackConfig are a route's targets for one kind of error, tried once,
// after the route's own targets refused the request that way.
type FallbackConfig struct {
	// OnContextLength serve a prompt longer than the route's models'
	// context window (llm.ContextLengthExceeded): models with a larger one.
	OnContextLength []string `yaml:"on_context_length"`
}

// ProviderConfig is one upstream vendor account.
type ProviderConfig struct {
	Vendor         string         `yaml:"vendor"`
	BaseURL        string         `yaml:"base_url"`
	APIKeyEnv      string         `yaml:"api_key_env"`
	ThinkingBudget map[string]int `yaml:"thinking_budget"`
	// Timeout bounds one upstream HTTP call, headers to last byte (default 10m).
	Timeout time.Duration `yaml:"timeout"`
	// AdminKeyEnv names the environment variable with the vendor's admin
	// key, which its usage and cost reports need (`brownout ledger
	// reconcile`); the gateway itself never reads it.
	AdminKeyEnv string `yaml:"admin_key_env"`
}

// PricesConfig extends the shipped price table.
type PricesConfig struct {
	File    string                   `yaml:"file"`
	LiteLLM string                   `yaml:"litellm"`
	Models  map[string]pricing.Price `yaml:"models"`
}

// TenantConfig is a client of the gateway; exactly one key source is set.
// BudgetUSD, with BudgetWindow (default 24h), limits its spend;
// BudgetSliceUSD slices it for a hot tenant (Budget.Slice), each slice
// given back after BudgetSliceTTL (default DefaultSliceTTL).
type TenantConfig struct {
	Name           string        `yaml:"name"`
	APIKeyEnv      string        `yaml:"api_key_env"`
	APIKeySHA256   string        `yaml:"api_key_sha256"`
	BudgetUSD      *pricing.Rate `yaml:"budget_usd"`
	BudgetWindow   time.Duration `yaml:"budget_window"`
	BudgetSliceUSD *pricing.Rate `yaml:"budget_slice_usd"`
	BudgetSliceTTL time.Duration `yaml:"budget_slice_ttl"`
}

// BreakerConfig is the default breaker and its per-provider overrides.
type BreakerConfig struct {
	BreakerSettings `yaml:",inline"`
	Providers       map[string]BreakerSettings `yaml:"providers"`
}

// LedgerConfig configures metering.
type LedgerConfig struct {
	// SpoolDir is the writer's durable spool and write-ahead log; empty
	// keeps it in memory.
	SpoolDir string `yaml:"spool_dir"`
	// GroupCommit is how long an attempt may wait before it is on disk in
	// the spool directory: the most a crash can lose (0: the writer's
	// default, 10ms).
	GroupCommit time.Duration `yaml:"group_commit"`
}

// LoadConfig reads and strictly validates a config file.
func LoadConfig(path string) (*Config, error) { return strictyaml.DecodeFile(path, ParseConfig) }

// ParseConfig is LoadConfig on bytes; name is used in errors and to
// resolve relative paths.
func ParseConfig(name string, data []byte) (*Config, error) {
	var c Config
	if err := strictyaml.Decode(name, data, &c); err != nil {
		return nil, err
	}
	c.dir = filepath.Dir(name)
	return &c, nil
}

// Validate implements strictyaml.Validator: the structure only; keys from
// the environment and prices are checked by Build.
func (c *Config) Validate() error {
	var errs []error
	bad := func(path, format string, args ...any) { errs = append(errs, strictyaml.Errorf(path, format, args...)) }
	if len(c.Providers) == 0 {
		bad("$.providers", "at least one provider is required")
	}
	for _, name := range slices.Sorted(maps.Keys(c.Providers)) {
		p := c.Providers[name]
		path := "$.providers." + strictyaml.Key(name)
		if err := ledger.CheckID(name); err != nil {
			bad(path, "provider name: %v (it is a column of every ledger row)", err)
		}
		switch p.Vendor {
		case "anthropic", "gemini", "openai":
		default:
			bad(path+".vendor", "unknown vendor %q (want anthropic, gemini or openai)", p.Vendor)
		}
		if p.APIKeyEnv == "" {
			bad(path+".api_key_env", "is required: the environment variable that holds the provider key")
		}
		if len(p.ThinkingBudget) > 0 && p.Vendor != "anthropic" {
			bad(path+".thinking_budget", "only anthropic providers take a thinking budget")
		}
		if p.Timeout < 0 {
			bad(path+".timeout", "must not be negative")
		}
	}
	if len(c.Routes) == 0 {
		bad("$.routes", "at least one route is required")
	}
	for _, alias := range slices.Sorted(maps.Keys(c.Routes)) {
		path := "$.routes." + strictyaml.Key(alias)
		if err := ledger.CheckID(alias); err != nil {
			bad(path, "route name: %v (it is a column of every ledger row)", err)
		}
		if len(c.Routes[alias]) == 0 {
			bad(path, "a route needs at least one provider/model target")
		}
		for i, s := range c.Routes[alias] {
			t, err := ParseTarget(s)
			if err != nil {
				bad(fmt.Sprintf("%s[%d]", path, i), "%v", err)
				continue
			}
			if _, ok := c.Providers[t.Provider]; !ok {
				bad(fmt.Sprintf("%s[%d]", path, i), "unknown provider %q", t.Provider)
			}
			if err := ledger.CheckID(t.Model); err != nil {
				bad(fmt.Sprintf("%s[%d]", path, i), "model name: %v (it is a column of every ledger row)", err)
			}
		}
	}
	for _, alias := range slices.Sorted(maps.Keys(c.Fallbacks)) {
		path := "$.fallbacks." + strictyaml.Key(alias)
		if _, ok := c.Routes[alias]; !ok {
			bad(path, "unknown route %q", alias)
		}
		for i, s := range c.Fallbacks[alias].OnContextLength {
			t, err := ParseTarget(s)
			if err != nil {
				bad(fmt.Sprintf("%s.on_context_length[%d]", path, i), "%v", err)
				continue
			}
			if _, ok := c.Providers[t.Provider]; !ok {
				bad(fmt.Sprintf("%s.on_context_length[%d]", path, i), "unknown provider %q", t.Provider)
			}
		}
	}
	if len(c.Tenants) == 0 {
		bad("$.tenants", "at least one tenant is required (every request needs an API key)")
	}
	seen := map[string]bool{}
	for i, t := range c.Tenants {
		path := fmt.Sprintf("$.tenants[%d]", i)
		if t.Name == "" {
			bad(path+".name", "is required")
		} else if err := ledger.CheckID(t.Name); err != nil {
			bad(path+".name", "%v (it is a column of every ledger row)", err)
		}
		if seen[t.Name] {
			bad(path+".name", "tenant %q appears twice", t.Name)
		}
		seen[t.Name] = true
		if (t.APIKeyEnv == "") == (t.APIKeySHA256 == "") {
			bad(path, "set exactly one of api_key_env and api_key_sha256")
		}
		if t.APIKeySHA256 != "" {
			if _, err := ParseKeyHash(t.APIKeySHA256); err != nil {
				bad(path+".api_key_sha256", "%v", err)
			}
		}
	}
	if c.MaxBodyBytes < 0 {
		bad("$.max_body_bytes", "must not be negative")
	}
	if c.Ledger.GroupCommit < 0 {
		bad("$.ledger.group_commit", "must not be negative")
	}
	for i, t := range c.Tenants {
		if t.BudgetUSD != nil && t.BudgetUSD.IsNegative() {
			bad(fmt.Sprintf("$.tenants[%d].budget_usd", i), "must not be negative")
		}
		if t.BudgetWindow < 0 || (t.BudgetWindow > 0 && t.BudgetUSD == nil) {
			bad(fmt.Sprintf("$.tenants[%d].budget_window", i), "needs budget_usd, and must be positive")
		}
		if t.BudgetSliceUSD != nil && (t.BudgetUSD == nil || !t.BudgetSliceUSD.IsPositive()) {
			bad(fmt.Sprintf("$.tenants[%d].budget_slice_usd", i), "needs budget_usd, and must be positive")
		}
		if t.BudgetSliceTTL < 0 || (t.BudgetSliceTTL > 0 && t.BudgetSliceUSD == nil) {
			bad(fmt.Sprintf("$.tenants[%d].budget_slice_ttl", i), "needs budget_slice_usd, and must be positive")
		}
	}
	for name, b := range c.Breaker.Providers {
		if _, ok := c.Providers[name]; !ok {
			bad("$.breaker.providers."+strictyaml.Key(name), "unknown provider %q", name)
		}
		if b.FailureRatio < 0 || b.FailureRatio > 1 {
			bad("$.breaker.providers."+strictyaml.Key(name)+".failure_ratio", "must be in [0, 1]")
		}
	}
	if r := c.Breaker.FailureRatio; r < 0 || r > 1 {
		bad("$.breaker.failure_ratio", "must be in [0, 1]")
	}
	for _, f := range []struct {
		path string
		d    time.Duration
	}{{"$.retry.base_backoff", c.Retry.BaseBackoff}, {"$.retry.max_backoff", c.Retry.MaxBackoff},
		{"$.retry.attempt_timeout", c.Retry.AttemptTimeout}, {"$.retry.deadline", c.Retry.Deadline},
		{"$.retry.first_token_timeout", c.Retry.FirstTokenTimeout}, {"$.retry.idle_timeout", c.Retry.IdleTimeout},
		{"$.retry.max_retry_after_wait", c.Retry.MaxRetryAfterWait},
		{"$.breaker.open_for", c.Breaker.OpenFor}, {"$.breaker.interval", c.Breaker.Interval},
		{"$.idempotency.retention", c.Idempotency.Retention}, {"$.idempotency.lease", c.Idempotency.Lease}} {
		if f.d < 0 {
			bad(f.path, "must not be negative")
		}
	}
	if c.Retry.MaxAttempts < 0 {
		bad("$.retry.max_attempts", "must not be negative")
	}
	if c.Idempotency.MaxResponseBytes < 0 {
		bad("$.idempotency.max_response_bytes", "must not be negative")
	}
	if c.Idempotency.MaxKeys < 0 {
		bad("$.idempotency.max_keys", "must not be negative")
	}
	if c.Idempotency.MaxBytes < 0 {
		bad("$.idempotency.max_bytes", "must not be negative")
	} else if idem := c.Idempotency.withDefaults(); idem.MaxBytes < idem.MaxResponseBytes {
		bad("$.idempotency.max_bytes", "%d is less than max_response_bytes (%d): a response it may keep would not fit", idem.MaxBytes, idem.MaxResponseBytes)
	}
	switch c.Retry.OnTimeout {
	case "", OnTimeoutFailover, OnTimeoutRetry:
	default:
		bad("$.retry.on_timeout", "%q: want failover or retry", c.Retry.OnTimeout)
	}
	for _, name := range slices.Sorted(maps.Keys(c.Retry.Providers)) {
		path := "$.retry.providers." + strictyaml.Key(name)
		if _, ok := c.Providers[name]; !ok {
			bad(path, "unknown provider %q", name)
		}
		to := c.Retry.Providers[name]
		if to.AttemptTimeout < 0 || to.FirstTokenTimeout < 0 || to.IdleTimeout < 0 {
			bad(path, "timeouts must not be negative")
		}
	}
	return errors.Join(errs...)
}

// Built is what a Config builds: the parts of a Gateway and its front.
type Built struct {
	Providers map[string]llm.Provider
	Routes    map[string][]Target
	// ContextLengthFallbacks are the routes' on_context_length targets.
	ContextLengthFallbacks map[string][]Target
	Prices                 *pricing.Table
	Tenants                []Tenant
	Budgets                map[string]Budget
	Breakers               map[string]BreakerSettings // "" is the default
}

// Options returns the Gateway options of b with the config's policies;
// the caller adds Ledger, Metrics, Logger and the stores.
func (c *Config) Options(b *Built) Options {
	return Options{Providers: b.Providers, Routes: b.Routes, ContextLengthFallbacks: b.ContextLengthFallbacks, Prices: b.Prices,
		Budgets: b.Budgets, Breakers: b.Breakers, Retry: c.Retry}
}

// Build resolves keys from getenv, loads the price tables and constructs
// the adapters. Missing keys and unpriced routed models are errors here.
// clientFor, if not nil, returns the HTTP client of a provider's adapter
// (gatewaytest passes each fake's in-memory one; nil for the default);
// by default each provider gets its own client with its timeout.
func (c *Config) Build(getenv func(string) string, clientFor func(provider string) *http.Client) (*Built, error) {
	b := &Built{Providers: map[string]llm.Provider{}, Routes: map[string][]Target{}, Budgets: map[string]Budget{},
		Breakers: map[string]BreakerSettings{"": c.Breaker.BreakerSettings}}
	maps.Copy(b.Breakers, c.Breaker.Providers)
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(c.Providers)) {
		p := c.Providers[name]
		key := getenv(p.APIKeyEnv)
		if key == "" {
			errs = append(errs, fmt.Errorf("providers.%s.api_key_env: environment variable %s is not set", name, p.APIKeyEnv))
			continue
		}
		var hc *http.Client
		if clientFor != nil {
			hc = clientFor(name)
		}
		if hc == nil {
			timeout := p.Timeout
			if timeout == 0 {
				timeout = 10 * time.Minute
			}
			hc = &http.Client{Timeout: timeout, Transport: &http.Transport{Proxy: http.ProxyFromEnvironment, MaxIdleConnsPerHost: 256, ForceAttemptHTTP2: true}}
		}
		a, err := NewAdapter(p.Vendor, name, p.BaseURL, key, hc, p.ThinkingBudget)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		b.Providers[name] = a
	}
	for alias, targets := range c.Routes {
		for _, s := range targets {
			t, _ := ParseTarget(s) // validated
			b.Routes[alias] = append(b.Routes[alias], t)
		}
	}
	for alias, fb := range c.Fallbacks {
		for _, s := range fb.OnContextLength {
			t, _ := ParseTarget(s) // validated
			if b.ContextLengthFallbacks == nil {
				b.ContextLengthFallbacks = map[string][]Target{}
			}
			b.ContextLengthFallbacks[alias] = append(b.ContextLengthFallbacks[alias], t)
		}
	}
	prices, err := c.PriceTable()
	if err != nil {
		errs = append(errs, err)
	}
	b.Prices = prices
	for _, t := range c.Tenants {
		var h [32]byte
		if t.APIKeyEnv != "" {
			key := getenv(t.APIKeyEnv)
			if key == "" {
				errs = append(errs, fmt.Errorf("tenants %s: environment variable %s is not set", t.Name, t.APIKeyEnv))
				continue
			}
			h = HashKey(key)
		} else {
			h, _ = ParseKeyHash(t.APIKeySHA256) // validated
		}
		b.Tenants = append(b.Tenants, Tenant{Name: t.Name, KeySHA256: h})
		if t.BudgetUSD != nil {
			window := t.BudgetWindow
			if window == 0 {
				window = 24 * time.Hour
			}
			bg := Budget{Limit: t.BudgetUSD.Decimal, Window: window, SliceTTL: t.BudgetSliceTTL}
			if t.BudgetSliceUSD != nil {
				bg.Slice = t.BudgetSliceUSD.Decimal
			}
			b.Budgets[t.Name] = bg
		}
	}
	if prices != nil {
		for _, alias := range slices.Sorted(maps.Keys(b.Routes)) {
			for _, t := range append(slices.Clone(b.Routes[alias]), b.ContextLengthFallbacks[alias]...) {
				if _, err := prices.Lookup(t.Provider, t.Model); err != nil {
					errs = append(errs, fmt.Errorf("routes.%s: %w (add it under prices:)", alias, err))
				}
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return b, nil
}

// PriceTable is the shipped price table with the config's additions: a
// LiteLLM file, then a brownout price file, then inline models, each
// overriding the ones before.
func (c *Config) PriceTable() (*pricing.Table, error) {
	t := pricing.Default()
	rel := func(p string) string {
		if filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(c.dir, p)
	}
	if c.Prices.LiteLLM != "" {
		l, err := pricing.LoadLiteLLM(rel(c.Prices.LiteLLM))
		if err != nil {
			return nil, err
		}
		t = t.Merge(l)
	}
	if c.Prices.File != "" {
		f, err := pricing.Load(rel(c.Prices.File))
		if err != nil {
			return nil, err
		}
		t = t.Merge(f)
	}
	if len(c.Prices.Models) > 0 {
		t = t.Merge(&pricing.Table{Source: "inline prices", Models: c.Prices.Models})
	}
	return t, nil
}

// NewAdapter returns the adapter of vendor (anthropic, gemini or openai)
// for the provider name at baseURL ("" for the vendor's own). thinking is
// Anthropic's per-model thinking budget; the others ignore it.
func NewAdapter(vendor, name, baseURL, key string, client *http.Client, thinking map[string]int) (llm.Provider, error) {
	switch vendor {
	case "anthropic":
		return anthropic.New(anthropic.Config{Name: name, BaseURL: baseURL, APIKey: key, Client: client, ThinkingBudget: thinking}), nil
	case "gemini":
		return gemini.New(gemini.Config{Name: name, BaseURL: baseURL, APIKey: key, Client: client}), nil
	case "openai":
		return openai.New(openai.Config{Name: name, BaseURL: baseURL, APIKey: key, Client: client}), nil
	}
	return nil, fmt.Errorf("gateway: unknown vendor %q (want anthropic, gemini or openai)", vendor)
}
