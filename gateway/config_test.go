package gateway_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brownout-dev/brownout/gateway"
)

const validConfig = `
providers:
  a: {vendor: openai, api_key_env: K}
  g: {vendor: gemini, api_key_env: K}
routes:
  chat: [a/gpt-4o-mini, g/gemini-2.5-flash]
tenants:
  - {name: acme, api_key_env: K, budget_usd: "1.50", budget_window: 1h}
  - {name: beta, api_key_sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08}
breaker:
  consecutive_failures: 3
  open_for: 10s
  providers:
    g: {failure_ratio: 0.5, min_requests: 20}
retry: {max_attempts: 2, deadline: 30s}
idempotency: {retention: 1h}
ledger: {spool_dir: /var/lib/brownout/spool, group_commit: 5ms}
`

func TestConfigBuild(t *testing.T) {
	cfg, err := gateway.ParseConfig("serve.yaml", []byte(validConfig))
	require.NoError(t, err)
	built, err := cfg.Build(func(string) string { return "key" }, nil)
	require.NoError(t, err)
	assert.Equal(t, "1.5", built.Budgets["acme"].Limit.String())
	assert.Equal(t, time.Hour, built.Budgets["acme"].Window)
	assert.NotContains(t, built.Budgets, "beta")
	assert.Equal(t, uint32(3), built.Breakers[""].ConsecutiveFailures)
	assert.Equal(t, 0.5, built.Breakers["g"].FailureRatio)
	opts := cfg.Options(built)
	assert.Equal(t, 2, opts.Retry.MaxAttempts)
	assert.Equal(t, 5*time.Millisecond, cfg.Ledger.GroupCommit)
	assert.Len(t, opts.Routes["chat"], 2)
}

func TestConfigErrorsNameFileLineAndField(t *testing.T) {
	tests := []struct{ src, want string }{
		{"providers:\n  a: {vendor: openai, api_key_env: K, base_url: x, retries: 3}\n", `serve.yaml:2:`},
		{"providers:\n  a: {vendor: mistral, api_key_env: K}\nroutes: {c: [a/m]}\ntenants: [{name: t, api_key_env: K}]\n", `serve.yaml:2:`},
		{"providers:\n  a: {vendor: openai, api_key_env: K}\nroutes: {c: [a/m]}\ntenants: [{name: t, api_key_env: K}]\nbreaker: {failure_ratio: 2}\n", `field breaker.failure_ratio: must be in [0, 1]`},
		{"providers:\n  a: {vendor: openai, api_key_env: K}\nroutes: {c: [a/m]}\ntenants: [{name: t, api_key_env: K}]\nbreaker: {providers: {z: {}}}\n", `field breaker.providers.z: unknown provider "z"`},
		{"providers:\n  a: {vendor: openai, api_key_env: K}\nroutes: {c: [a/m]}\ntenants: [{name: t, api_key_env: K, budget_window: 1h}]\n", `field tenants[0].budget_window: needs budget_usd`},
		{"providers:\n  a: {vendor: openai, api_key_env: K}\nroutes: {c: [a/m]}\ntenants: [{name: t, api_key_env: K, budget_usd: lots}]\n", `serve.yaml:4:`},
		{"providers:\n  a: {vendor: openai, api_key_env: K}\nroutes: {c: [a/m]}\ntenants: [{name: t, api_key_env: K, budget_slice_usd: \"1\"}]\n", `field tenants[0].budget_slice_usd: needs budget_usd`},
		{"providers:\n  a: {vendor: openai, api_key_env: K}\nroutes: {c: [a/m]}\ntenants: [{name: t, api_key_env: K, budget_usd: \"9\", budget_slice_usd: \"0\"}]\n", `field tenants[0].budget_slice_usd: needs budget_usd, and must be positive`},
		{"providers:\n  a: {vendor: openai, api_key_env: K}\nroutes: {c: [a/m]}\ntenants: [{name: t, api_key_env: K, budget_usd: \"9\", budget_slice_ttl: 5s}]\n", `field tenants[0].budget_slice_ttl: needs budget_slice_usd`},
		{"providers:\n  a: {vendor: openai, api_key_env: K}\nroutes: {c: [b/m]}\ntenants: [{name: t, api_key_env: K}]\n", `field routes.c[0]: unknown provider "b"`},
		{"providers:\n  a: {vendor: openai, api_key_env: K}\nroutes: {c: [a/m]}\ntenants: [{name: t, api_key_sha256: zz}]\n", `field tenants[0].api_key_sha256: not a hex SHA-256`},
		{"providers:\n  a: {vendor: openai, api_key_env: K}\nroutes: {c: [a/m]}\ntenants: [{name: t, api_key_env: K}]\nretry: {deadline: -1s}\n", `field retry.deadline: must not be negative`},
		{"providers:\n  a: {vendor: openai, api_key_env: K}\nroutes: {c: [a/m]}\ntenants: [{name: t, api_key_env: K}]\nretry: {on_timeout: wait}\n", `field retry.on_timeout: "wait": want failover or retry`},
		{"providers:\n  a: {vendor: openai, api_key_env: K}\nroutes: {c: [a/m]}\ntenants: [{name: t, api_key_env: K}]\nfallbacks: {d: {on_context_length: [a/big]}}\n", `field fallbacks.d: unknown route "d"`},
		{"providers:\n  a: {vendor: openai, api_key_env: K}\nroutes: {c: [a/m]}\ntenants: [{name: t, api_key_env: K}]\nfallbacks: {c: {on_context_length: [b/big]}}\n", `field fallbacks.c.on_context_length[0]: unknown provider "b"`},
		{"providers:\n  a: {vendor: openai, api_key_env: K}\nroutes: {c: [a/m]}\ntenants: [{name: t, api_key_env: K}]\nretry: {idle_timeout: -1s}\n", `field retry.idle_timeout: must not be negative`},
		{"providers:\n  a: {vendor: openai, api_key_env: K}\nroutes: {c: [a/m]}\ntenants: [{name: t, api_key_env: K}]\nretry: {providers: {b: {idle_timeout: 5s}}}\n", `field retry.providers.b: unknown provider "b"`},
		{"providers:\n  a: {vendor: openai, api_key_env: K}\nroutes: {c: [a/m]}\ntenants: [{name: t, api_key_env: K}]\nledger: {group_commit: -1ms}\n", `field ledger.group_commit: must not be negative`},
		{"providers:\n  a: {vendor: openai, api_key_env: K}\nroutes: {c: [a/m]}\ntenants: [{name: t, api_key_env: K}]\nidempotency: {max_bytes: -1}\n", `field idempotency.max_bytes: must not be negative`},
		{"providers:\n  a: {vendor: openai, api_key_env: K}\nroutes: {c: [a/m]}\ntenants: [{name: t, api_key_env: K}]\nidempotency: {max_bytes: 1000}\n", `field idempotency.max_bytes: 1000 is less than max_response_bytes (1048576)`},
	}
	for _, tt := range tests {
		_, err := gateway.ParseConfig("serve.yaml", []byte(tt.src))
		require.Error(t, err, tt.src)
		assert.Contains(t, err.Error(), tt.want)
	}
}

func TestConfigBuildRejectsUnpricedRoutesAndMissingKeys(t *testing.T) {
	cfg, err := gateway.ParseConfig("serve.yaml", []byte("providers:\n  a: {vendor: openai, api_key_env: K}\nroutes: {c: [a/gpt-99]}\ntenants: [{name: t, api_key_env: T}]\n"))
	require.NoError(t, err)
	_, err = cfg.Build(func(k string) string { return map[string]string{"K": "key"}[k] }, nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "routes.c: pricing: model has no price: a/gpt-99")
	assert.Contains(t, err.Error(), "environment variable T is not set")
}
