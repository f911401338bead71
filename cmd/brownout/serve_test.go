package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/packages/ssestream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brownout-dev/brownout/fakeprovider"
	"github.com/brownout-dev/brownout/gateway/gatewaytest"
	"github.com/brownout-dev/brownout/gateway/ledger"
	"github.com/brownout-dev/brownout/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// serveConfig writes yaml as serve.yaml in dir and sets env (the keys the
// config names by api_key_env) for the test; it returns the file's path.
func serveConfig(t *testing.T, dir, yaml string, env map[string]string) string {
	t.Helper()
	cfg := filepath.Join(dir, "serve.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte(yaml), 0o600))
	for k, v := range env {
		t.Setenv(k, v)
	}
	return cfg
}

// TestServeInFrontOfFakes runs `brownout serve` with a Postgres ledger in
// front of a fake, calls it with the openai-go SDK, stops it as SIGTERM
// would, and finds the attempt in the ledger: the shutdown flushed it.
func TestServeInFrontOfFakes(t *testing.T) {
	fake := fakeprovider.NewServer(fakeprovider.Config{Vendor: fakeprovider.Gemini, Seed: 1, Models: map[string]fakeprovider.Model{
		"gemini-2.5-flash": {Answers: []fakeprovider.Answer{{Text: "Paris"}}, ReasoningTokens: fakeprovider.Fixed(24)},
	}})
	defer fake.Close()
	dir := t.TempDir()
	cfg := serveConfig(t, dir, `
providers:
  gem: {vendor: gemini, base_url: "`+fake.URL+`", api_key_env: SERVE_TEST_GEMINI_KEY}
routes:
  chat: [gem/gemini-2.5-flash]
tenants:
  - {name: acme, api_key_env: SERVE_TEST_TENANT_KEY}
ledger:
  spool_dir: `+filepath.Join(dir, "spool")+`
`, map[string]string{"SERVE_TEST_GEMINI_KEY": "provider-key", "SERVE_TEST_TENANT_KEY": "tenant-key"})
	dbURL := pgtest.New(t, pgtest.Template{Name: "ledger", Setup: ledger.Migrate})

	srv := startServe(t, []string{"serve", "--config", cfg, "--database-url", dbURL}, io.Discard)
	assert.GreaterOrEqual(t, pgtest.Connections(t, dbURL), max(4, runtime.NumCPU()), "serve's pool has its every connection open before its first request (pgx's default size)")

	client := openai.NewClient(option.WithBaseURL(srv.addr+"/v1"), option.WithAPIKey("tenant-key"), option.WithMaxRetries(0))
	resp, err := client.Chat.Completions.New(context.Background(), openai.ChatCompletionNewParams{
		Model: "chat", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Capital of France?")},
	}, option.WithHeader("X-Request-ID", "serve-1"))
	require.NoError(t, err)
	assert.Equal(t, "Paris", resp.Choices[0].Message.Content)
	metrics, err := http.Get(srv.metrics)
	require.NoError(t, err)
	body, _ := io.ReadAll(metrics.Body)
	metrics.Body.Close()
	assert.Contains(t, string(body), "\nbrownout_write_behind_lost_total 0\n", "the writes behind the responses are counted")
	assert.Contains(t, string(body), "\nbrownout_write_behind_waits_total 0\n", "and the waits for a database out of reach")
	assert.Contains(t, string(body), "\nbrownout_write_behind_resolved_total 0\n", "and the failed round trips resolved")
	assert.Contains(t, string(body), "\nbrownout_write_behind_unknown_total 0\n", "and those whose outcome is unknown")

	srv.cancel()
	require.NoError(t, srv.wait(t, 30*time.Second))
	conn, err := pgx.Connect(context.Background(), dbURL)
	require.NoError(t, err)
	defer conn.Close(context.Background())
	var n int
	var cost string
	require.NoError(t, conn.QueryRow(context.Background(),
		"SELECT count(*), sum(cost)::text FROM ledger_attempts WHERE client_request_id = 'serve-1'").Scan(&n, &cost))
	assert.Equal(t, 1, n)
	assert.Equal(t, fake.Invoice().Totals.Cost.StringFixed(12), cost, "the ledger row's cost equals the fake's invoice")
}

func TestServeBadConfigExitsTwo(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "serve.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte("providers:\n  a: {vendor: openai, api_key_env: X}\nroutes:\n  chat: [b/gpt-4o-mini]\ntenants: [{name: t, api_key_sha256: abc}]\n"), 0o600))
	err := run(context.Background(), []string{"serve", "--config", cfg}, io.Discard, io.Discard)
	require.Error(t, err)
	assert.Equal(t, 2, exitCode(err))
	assert.Contains(t, err.Error(), `serve.yaml:4:`)
	assert.Contains(t, err.Error(), `unknown provider "b"`)

	require.NoError(t, os.WriteFile(cfg, []byte("providers:\n  a: {vendor: openai, api_key_env: SERVE_TEST_UNSET}\nroutes:\n  chat: [a/gpt-99]\ntenants: [{name: t, api_key_env: SERVE_TEST_UNSET}]\n"), 0o600))
	err = run(context.Background(), []string{"serve", "--config", cfg}, io.Discard, io.Discard)
	require.Error(t, err)
	assert.Equal(t, 2, exitCode(err))
	assert.Contains(t, err.Error(), "SERVE_TEST_UNSET is not set")
}

// TestServeDrainsThenCutsLongStreams: on SIGTERM, a short stream in flight
// finishes within --drain-timeout; a long one is cut when it expires,
// metered as cancelled with its partial (estimated) usage, and the ledger
// is flushed only after, so both rows are in Postgres when serve returns.
// Real time, with wide margins: the short stream takes about 0.2 s of a 2 s
// drain, the long one 40 s.
func TestServeDrainsThenCutsLongStreams(t *testing.T) {
	fake := fakeprovider.NewServer(fakeprovider.Config{Vendor: fakeprovider.OpenAI, Seed: 1, Models: map[string]fakeprovider.Model{
		"gpt-4o-mini": {Answers: []fakeprovider.Answer{{Text: "Paris is the capital.", Tokens: 5}}, PerTokenMs: fakeprovider.Fixed(40)},
		"o4-mini":     {Answers: []fakeprovider.Answer{{Text: "A long answer.", Tokens: 1000}}, PerTokenMs: fakeprovider.Fixed(40)},
	}})
	defer fake.Close()
	dir := t.TempDir()
	cfg := serveConfig(t, dir, `
providers:
  oa: {vendor: openai, base_url: "`+fake.URL+`", api_key_env: SERVE_TEST_OPENAI_KEY}
routes:
  short: [oa/gpt-4o-mini]
  long: [oa/o4-mini]
tenants:
  - {name: acme, api_key_env: SERVE_TEST_TENANT_KEY}
`, map[string]string{"SERVE_TEST_OPENAI_KEY": "provider-key", "SERVE_TEST_TENANT_KEY": "tenant-key"})
	dbURL := pgtest.New(t, pgtest.Template{Name: "ledger", Setup: ledger.Migrate})

	var logs gatewaytest.LogBuffer
	srv := startServe(t, []string{"serve", "--config", cfg, "--database-url", dbURL, "--spool-dir", filepath.Join(dir, "spool"), "--drain-timeout", "2s"}, &logs)
	client := openai.NewClient(option.WithBaseURL(srv.addr+"/v1"), option.WithAPIKey("tenant-key"), option.WithMaxRetries(0))

	// Both streams have sent a first chunk before SIGTERM.
	open := func(model, id string) *ssestream.Stream[openai.ChatCompletionChunk] {
		s := client.Chat.Completions.NewStreaming(context.Background(), openai.ChatCompletionNewParams{
			Model: model, Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Capital of France?")},
		}, option.WithHeader("X-Request-ID", id))
		require.True(t, s.Next(), "%s: %v", id, s.Err())
		return s
	}
	short, long := open("short", "drained"), open("long", "cut")
	srv.cancel()
	var shortText string
	for short.Next() {
		if len(short.Current().Choices) > 0 {
			shortText += short.Current().Choices[0].Delta.Content
		}
	}
	require.NoError(t, short.Err(), "the short stream finished within the drain")
	for long.Next() {
	}
	require.Error(t, long.Err(), "the long stream was cut")
	require.NoError(t, srv.wait(t, 60*time.Second))

	conn, err := pgx.Connect(context.Background(), dbURL)
	require.NoError(t, err)
	defer conn.Close(context.Background())
	row := func(id string) (outcome, source string, output int64) {
		require.NoError(t, conn.QueryRow(context.Background(),
			"SELECT outcome, usage_source, output_tokens FROM ledger_attempts WHERE client_request_id = $1", id).Scan(&outcome, &source, &output))
		return
	}
	outcome, source, _ := row("drained")
	assert.Equal(t, []string{"ok", "reported"}, []string{outcome, source})
	outcome, source, output := row("cut")
	assert.Equal(t, []string{"cancelled", "estimated"}, []string{outcome, source})
	assert.Positive(t, output, "the partial answer is metered")
	assert.Less(t, output, int64(1000))
	assert.NotContains(t, logs.String(), "ledger refused", "an attempt was recorded after the writer closed")
}

// serving is `brownout serve` running in the background of a test.
type serving struct {
	addr    string // from its first stdout line
	metrics string // the /metrics URL, on its own listener
	cancel  context.CancelFunc
	done    chan error
}

// startServe runs args (a serve command) until cancel, as SIGTERM would
// stop it, and returns once it has said where it listens.
func startServe(t *testing.T, args []string, stderr io.Writer) *serving {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	first := newFirstLine()
	s := &serving{cancel: cancel, done: make(chan error, 1)}
	go func() { s.done <- run(ctx, args, first, stderr) }()
	select {
	case line := <-first.line:
		var addr struct{ Addr, Metrics string }
		require.NoError(t, json.Unmarshal([]byte(line), &addr), "first line %q", line)
		s.addr, s.metrics = addr.Addr, addr.Metrics
	case err := <-s.done:
		t.Fatalf("serve exited before it served: %v", err)
	}
	return s
}

// wait returns serve's error once it has stopped, failing t after timeout.
func (s *serving) wait(t *testing.T, timeout time.Duration) error {
	t.Helper()
	select {
	case err := <-s.done:
		return err
	case <-time.After(timeout):
		t.Fatal("serve did not stop")
		return nil
	}
}

// TestMetricsOnTheirOwnListener: the API listener serves no /metrics (its
// labels name tenants, routes and providers); the metrics listener, on
// loopback by default, serves them; --metrics-addr off serves none.
func TestMetricsOnTheirOwnListener(t *testing.T) {
	fake := fakeprovider.NewServer(fakeprovider.Config{Vendor: fakeprovider.OpenAI, Seed: 1, Models: map[string]fakeprovider.Model{
		"gpt-4o-mini": {Answers: []fakeprovider.Answer{{Text: "Paris"}}},
	}})
	defer fake.Close()
	cfg := serveConfig(t, t.TempDir(), `
providers:
  oa: {vendor: openai, base_url: "`+fake.URL+`", api_key_env: SERVE_TEST_OPENAI_KEY}
routes:
  chat: [oa/gpt-4o-mini]
tenants:
  - {name: acme, api_key_env: SERVE_TEST_TENANT_KEY}
`, map[string]string{"SERVE_TEST_OPENAI_KEY": "provider-key", "SERVE_TEST_TENANT_KEY": "tenant-key"})
	get := func(url string) (int, string) {
		resp, err := http.Get(url)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, string(b)
	}

	srv := startServe(t, []string{"serve", "--config", cfg}, io.Discard)
	req, err := http.NewRequest("POST", srv.addr+"/v1/chat/completions", strings.NewReader(`{"model":"chat","messages":[{"role":"user","content":"Capital of France?"}]}`))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer tenant-key")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode)
	code, _ := get(srv.addr + "/metrics")
	assert.Equal(t, http.StatusNotFound, code, "the API listener serves no metrics")
	require.True(t, strings.HasPrefix(srv.metrics, "http://127.0.0.1:"), "loopback by default: %q", srv.metrics)
	code, body := get(srv.metrics)
	assert.Equal(t, 200, code)
	assert.Contains(t, body, `brownout_attempts_total{`)
	srv.cancel()
	require.NoError(t, srv.wait(t, 30*time.Second))

	srv = startServe(t, []string{"serve", "--config", cfg, "--metrics-addr", "off"}, io.Discard)
	assert.Empty(t, srv.metrics)
	code, _ = get(srv.addr + "/metrics")
	assert.Equal(t, http.StatusNotFound, code)
	srv.cancel()
	require.NoError(t, srv.wait(t, 30*time.Second))
}
