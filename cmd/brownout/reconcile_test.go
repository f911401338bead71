package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brownout-dev/brownout/fakeprovider"
	"github.com/brownout-dev/brownout/gateway"
	"github.com/brownout-dev/brownout/gateway/gatewaytest"
	"github.com/brownout-dev/brownout/gateway/ledger"
	"github.com/brownout-dev/brownout/gateway/llm"
	"github.com/brownout-dev/brownout/internal/pgtest"
)

// TestLedgerReconcile: `brownout ledger reconcile` against the three fake
// vendors' own reports, OpenAI's and Anthropic's admin APIs over HTTP and
// Gemini's billing export as a file, with the ledger in Postgres and, from
// an export, in memory. OpenAI and Gemini bill 1,000 reasoning tokens their
// responses never report on about half the requests; the command finds that
// drift to the digit (hand-computed at the models' output rates) and exits
// 1 over --max-drift; Anthropic's clean bill reconciles and exits 0.
func TestLedgerReconcile(t *testing.T) {
	db := pgtest.New(t, pgtest.Template{Name: "ledger", Setup: ledger.Migrate})
	pool, err := pgxpool.New(context.Background(), db)
	require.NoError(t, err)
	t.Cleanup(pool.Close)

	hidden := fakeprovider.Fault{Kind: fakeprovider.FaultUnreportedUsage, Tokens: 1000, Probability: 0.5}
	model := func(name string) map[string]fakeprovider.Model {
		return map[string]fakeprovider.Model{name: {Answers: []fakeprovider.Answer{{Text: "Paris", Tokens: 1}},
			ReasoningTokens: fakeprovider.Uniform(10, 100), TTFTms: fakeprovider.Fixed(1), PerTokenMs: fakeprovider.Fixed(0)}}
	}
	g, err := gatewaytest.New(gatewaytest.Config{
		Loopback: true,
		Fakes: map[string]fakeprovider.Config{
			"openai":    {Vendor: fakeprovider.OpenAI, Seed: 1, AdminKey: "sk-admin-test", Models: model("o4-mini"), Faults: []fakeprovider.Fault{hidden}},
			"anthropic": {Vendor: fakeprovider.Anthropic, Seed: 2, AdminKey: "sk-admin-test", Models: model("claude-haiku-4-5")},
			"gemini":    {Vendor: fakeprovider.Gemini, Seed: 3, Models: model("gemini-2.5-flash"), Faults: []fakeprovider.Fault{hidden}},
		},
		Gateway: gateway.Config{Routes: map[string][]string{"o": {"openai/o4-mini"}, "a": {"anthropic/claude-haiku-4-5"}, "g": {"gemini/gemini-2.5-flash"}}},
		Store:   ledger.NewPostgresStore(pool),
	})
	require.NoError(t, err)
	t.Cleanup(g.Close)
	start := time.Now().UTC()
	for i := range 20 {
		for _, route := range []string{"o", "a", "g"} {
			_, err := g.Complete(context.Background(), &gateway.Request{Tenant: gatewaytest.DefaultTenant, Route: route,
				LLM: llm.Request{Messages: []llm.Message{{Role: "user", Content: fmt.Sprintf("Capital of France? (%d)", i)}}}})
			require.NoError(t, err)
		}
	}
	end := time.Now().UTC().Add(time.Second)
	// Whole days around the traffic, as a user would ask.
	from, to := start.Truncate(24*time.Hour).Format(time.DateOnly), end.Truncate(24*time.Hour).Add(24*time.Hour).Format(time.DateOnly)
	drift := func(provider, rate string) decimal.Decimal {
		n := 0
		for _, e := range g.Fakes[provider].Journal() {
			if strings.Contains(strings.Join(e.Faults, ","), string(fakeprovider.FaultUnreportedUsage)) {
				n++
			}
		}
		require.Positive(t, n, provider)
		return decimal.NewFromInt(int64(n * 1000)).Mul(decimal.RequireFromString(rate)).Shift(-6)
	}
	openaiDrift, geminiDrift := drift("openai", "4.4"), drift("gemini", "2.5")

	dir := t.TempDir()
	config := filepath.Join(dir, "serve.yaml")
	require.NoError(t, os.WriteFile(config, []byte(fmt.Sprintf(`providers:
  openai: {vendor: openai, base_url: %q, api_key_env: X, admin_key_env: RECONCILE_TEST_OPENAI_ADMIN}
  anthropic: {vendor: anthropic, base_url: %q, api_key_env: X, admin_key_env: RECONCILE_TEST_ANTHROPIC_ADMIN}
  gemini: {vendor: gemini, base_url: %q, api_key_env: X}
  nokey: {vendor: openai, api_key_env: X}
routes:
  chat: [openai/o4-mini]
tenants: [{name: t, api_key_sha256: "8254c329a92850f6d539dd376f4816ee2764517da5e0235514af433164480d7a"}]
`, g.Fakes["openai"].URL, g.Fakes["anthropic"].URL, g.Fakes["gemini"].URL)), 0o600))
	t.Setenv("RECONCILE_TEST_OPENAI_ADMIN", "sk-admin-test")
	t.Setenv("RECONCILE_TEST_ANTHROPIC_ADMIN", "sk-admin-test")
	export := filepath.Join(dir, "gemini-billing.jsonl")
	require.NoError(t, os.WriteFile(export, g.Fakes["gemini"].BillingExport(start.Truncate(24*time.Hour), end.Add(24*time.Hour)), 0o600))
	ledgerExport := filepath.Join(dir, "ledger.jsonl")
	var lines bytes.Buffer
	_, err = g.Store.Export(context.Background(), ledger.Query{}, &lines)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(ledgerExport, lines.Bytes(), 0o600))

	reconcileCLI := func(args ...string) (string, int) {
		var out bytes.Buffer
		err := run(context.Background(), append([]string{"ledger", "reconcile", "--config", config, "--from", from, "--to", to}, args...), &out, io.Discard)
		if err == nil {
			return out.String(), 0
		}
		fmt.Fprintf(&out, "\n(%v)", err)
		return out.String(), exitCode(err)
	}
	parse := func(t *testing.T, out string) reconcileJSON {
		var r reconcileJSON
		require.NoError(t, json.NewDecoder(strings.NewReader(out)).Decode(&r), out)
		return r
	}

	for _, ledgerFlag := range [][]string{{"--database-url", db}, {"--ledger", ledgerExport}} {
		t.Run(ledgerFlag[0], func(t *testing.T) {
			out, code := reconcileCLI(append(ledgerFlag, "--provider", "openai", "--max-drift", "0.001", "--json")...)
			assert.Equal(t, 1, code, out)
			r := parse(t, out)
			assert.Equal(t, openaiDrift.String(), r.Drift.String(), "OpenAI: the hidden reasoning at $4.40 per million")
			require.Len(t, r.Rows, 1)
			assert.Equal(t, "o4-mini", r.Rows[0].Model)

			out, code = reconcileCLI(append(ledgerFlag, "--provider", "gemini", "--export", export, "--max-drift", "0.001", "--json")...)
			assert.Equal(t, 1, code, out)
			assert.Equal(t, geminiDrift.String(), parse(t, out).Drift.String(), "Gemini: the hidden thinking at $2.50 per million")

			out, code = reconcileCLI(append(ledgerFlag, "--provider", "anthropic", "--max-drift", "0")...)
			assert.Equal(t, 0, code, out)
			assert.Contains(t, out, "claude-haiku-4-5")
			assert.Contains(t, out, "drift +$0 (0.00%)")

			// A limit the drift stays under: exit 0, the drift still shown.
			out, code = reconcileCLI(append(ledgerFlag, "--provider", "openai", "--max-drift", openaiDrift.String())...)
			assert.Equal(t, 0, code, out)
			assert.Contains(t, out, "drift +$"+openaiDrift.String())
		})
	}

	md := filepath.Join(dir, "reconcile.md")
	_, code := reconcileCLI("--database-url", db, "--provider", "openai", "--max-drift", "0.5%", "--markdown", md)
	assert.Equal(t, 1, code)
	b, err := os.ReadFile(md)
	require.NoError(t, err)
	assert.Contains(t, string(b), "## Ledger against openai's report: FAIL")

	// Bad input exits 2, naming what was wrong.
	garbage := filepath.Join(dir, "garbage.jsonl")
	require.NoError(t, os.WriteFile(garbage, []byte("{\"sku\": {\"description\": \"Gemini 2.5 Flash Output Tokens\"}, \"usage_start_time\": \"yesterday\"}\n"), 0o600))
	for _, c := range []struct {
		args []string
		says string
	}{
		{[]string{"--provider", "mistral"}, `no provider "mistral"`},
		{[]string{"--provider", "nokey"}, "providers.nokey.admin_key_env is not set"},
		{[]string{"--provider", "gemini"}, "pass its export with --export"},
		{[]string{"--provider", "openai", "--export", export}, "--export reads a Cloud Billing export"},
		{[]string{"--provider", "gemini", "--export", garbage}, "garbage.jsonl:1"},
		{[]string{"--provider", "openai", "--max-drift", "lots"}, "--max-drift"},
	} {
		var errOut bytes.Buffer
		err := run(context.Background(), append([]string{"ledger", "reconcile", "--config", config, "--from", from, "--to", to, "--database-url", db}, c.args...), io.Discard, &errOut)
		assert.Equal(t, 2, exitCode(err), "%v: %v", c.args, err)
		assert.ErrorContains(t, err, c.says, "%v", c.args)
	}
	for _, window := range [][]string{{"--from", "last week", "--to", to}, {"--from", to, "--to", from}} {
		err := run(context.Background(), append([]string{"ledger", "reconcile", "--config", config, "--provider", "openai", "--database-url", db}, window...), io.Discard, io.Discard)
		assert.Equal(t, 2, exitCode(err), "%v: %v", window, err)
	}
}

// reconcileJSON is the part of `ledger reconcile --json` the test reads.
type reconcileJSON struct {
	Drift decimal.Decimal `json:"drift"`
	Rows  []struct {
		Model string `json:"model"`
	} `json:"rows"`
}
