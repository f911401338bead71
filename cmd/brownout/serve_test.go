package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/packages/ssestream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brownout-dev/brownout/fakeprovider"
	"github.com/brownout-dev/brownout/gateway/ledger"
	"github.com/brownout-dev/brownout/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// TestServeInFrontOfFakes runs `brownout serve` with a Postgres ledger in
// front of a fake, calls it with the openai-go SDK, stops it as SIGTERM
// would, and finds the attempt in the ledger: the shutdown flushed it.
func TestServeInFrontOfFakes(t *testing.T) {
	fake := fakeprovider.NewServer(fakeprovider.Config{Vendor: fakeprovider.Gemini, Seed: 1, Models: map[string]fakeprovider.Model{
		"gemini-2.5-flash": {Answers: []fakeprovider.Answer{{Text: "Paris"}}, ReasoningTokens: fakeprovider.Fixed(24)},
	}})
	defer fake.Close()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "serve.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte(`
providers:
  gem: {vendor: gemini, base_url: "`+fake.URL+`", api_key_env: SERVE_TEST_GEMINI_KEY}
routes:
  chat: [gem/gemini-2.5-flash]
tenants:
  - {name: acme, api_key_env: SERVE_TEST_TENANT_KEY}
ledger:
  spool_dir: `+filepath.Join(dir, "spool")+`
`), 0o600))
	t.Setenv("SERVE_TEST_GEMINI_KEY", "provider-key")
	t.Setenv("SERVE_TEST_TENANT_KEY", "tenant-key")
	dbURL := pgtest.New(t, pgtest.Template{Name: "ledger", Setup: ledger.Migrate})

	ctx, cancel := context.WithCancel(context.Background())
	out, w := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--config", cfg, "--database-url", dbURL}, w, io.Discard)
		w.Close()
	}()
	line, err := bufio.NewReader(out).ReadString('\n')
	require.NoError(t, err)
	var first struct{ Addr string }
	require.NoError(t, json.Unmarshal([]byte(line), &first), "first line %q", line)

	client := openai.NewClient(option.WithBaseURL(first.Addr+"/v1"), option.WithAPIKey("tenant-key"), option.WithMaxRetries(0))
	resp, err := client.Chat.Completions.New(context.Background(), openai.ChatCompletionNewParams{
		Model: "chat", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Capital of France?")},
	}, option.WithHeader("X-Request-ID", "serve-1"))
	require.NoError(t, err)
	assert.Equal(t, "Paris", resp.Choices[0].Message.Content)

	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop")
	}
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
	cfg := filepath.Join(dir, "serve.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte(`
providers:
  oa: {vendor: openai, base_url: "`+fake.URL+`", api_key_env: SERVE_TEST_OPENAI_KEY}
routes:
  short: [oa/gpt-4o-mini]
  long: [oa/o4-mini]
tenants:
  - {name: acme, api_key_env: SERVE_TEST_TENANT_KEY}
`), 0o600))
	t.Setenv("SERVE_TEST_OPENAI_KEY", "provider-key")
	t.Setenv("SERVE_TEST_TENANT_KEY", "tenant-key")
	dbURL := pgtest.New(t, pgtest.Template{Name: "ledger", Setup: ledger.Migrate})

	ctx, cancel := context.WithCancel(context.Background())
	out, w := io.Pipe()
	done := make(chan error, 1)
	var logs lockedBuffer
	go func() {
		done <- run(ctx, []string{"serve", "--config", cfg, "--database-url", dbURL, "--spool-dir", filepath.Join(dir, "spool"), "--drain-timeout", "2s"}, w, &logs)
		w.Close()
	}()
	line, err := bufio.NewReader(out).ReadString('\n')
	require.NoError(t, err)
	var first struct{ Addr string }
	require.NoError(t, json.Unmarshal([]byte(line), &first), "first line %q", line)
	client := openai.NewClient(option.WithBaseURL(first.Addr+"/v1"), option.WithAPIKey("tenant-key"), option.WithMaxRetries(0))

	// Both streams have sent a first chunk before SIGTERM.
	open := func(model, id string) *ssestream.Stream[openai.ChatCompletionChunk] {
		s := client.Chat.Completions.NewStreaming(context.Background(), openai.ChatCompletionNewParams{
			Model: model, Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Capital of France?")},
		}, option.WithHeader("X-Request-ID", id))
		require.True(t, s.Next(), "%s: %v", id, s.Err())
		return s
	}
	short, long := open("short", "drained"), open("long", "cut")
	cancel()
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
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(60 * time.Second):
		t.Fatal("serve did not stop")
	}

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

// lockedBuffer is a bytes.Buffer safe for a writer and a reader on
// different goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
