package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brownout-dev/brownout/gateway/ledger"
	"github.com/brownout-dev/brownout/gateway/llm"
	"github.com/brownout-dev/brownout/internal/pgtest"
)

func TestReplayList(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, run(context.Background(), []string{"replay", "--list"}, &out, io.Discard))
	for _, name := range []string{"gemini-outage", "thinking-tax", "rate-limit-storm", "brownout", "flapping", "retry-storm-duplicates", "partial-stream", "budget-exhaustion"} {
		assert.Regexp(t, `(?m)^`+name+` +\d+m0s  \S`, out.String(), "name, duration and summary")
	}
	assert.Regexp(t, `(?m)^gemini-outage +20m0s  a 10-minute hard 503 outage of the primary provider\.$`, out.String())
	assert.Contains(t, out.String(), "checks: breaker anthropic, breaker gemini, success rate,")
}

// TestReplayLibraryScenarioIntoPostgres replays thinking-tax in virtual
// time, metered in Postgres (the pool lives in the bubble), and writes the
// JSON and markdown reports.
func TestReplayLibraryScenarioIntoPostgres(t *testing.T) {
	db := pgtest.New(t, pgtest.Template{Name: "ledger", Setup: ledger.Migrate})
	md := filepath.Join(t.TempDir(), "report.md")
	var out bytes.Buffer
	err := run(context.Background(), []string{"replay", "thinking-tax", "--json", "--markdown", md, "--database-url", db}, &out, io.Discard)
	require.NoError(t, err, out.String())
	var rep struct {
		Scenario string `json:"scenario"`
		Passed   bool   `json:"passed"`
		Requests struct {
			Sent int `json:"sent"`
		} `json:"requests"`
	}
	require.NoError(t, json.Unmarshal(out.Bytes(), &rep))
	assert.Equal(t, "thinking-tax", rep.Scenario)
	assert.True(t, rep.Passed)
	b, err := os.ReadFile(md)
	require.NoError(t, err)
	assert.Contains(t, string(b), "## Scenario thinking-tax: PASS")

	conn, err := pgx.Connect(context.Background(), db)
	require.NoError(t, err)
	defer conn.Close(context.Background())
	var n int
	require.NoError(t, conn.QueryRow(context.Background(), "SELECT count(*) FROM ledger_attempts").Scan(&n))
	assert.Equal(t, rep.Requests.Sent, n, "one metered attempt per request, in Postgres")
}

func TestReplayExitCodes(t *testing.T) {
	failing := filepath.Join(t.TempDir(), "failing.yaml")
	require.NoError(t, os.WriteFile(failing, []byte(`name: failing
duration: 2m
providers:
  p: {vendor: openai, models: {gpt-4o-mini: {}}}
gateway:
  routes: {chat: [p/gpt-4o-mini]}
  retry: {max_attempts: 1}
traffic: {rate: 2, route: chat}
faults:
  - {provider: p, kind: server_error, status: 500, probability: 0.5, at: 0s}
expect:
  success_rate: 1
`), 0o600))
	var out bytes.Buffer
	err := run(context.Background(), []string{"replay", failing}, &out, io.Discard)
	assert.Equal(t, 1, exitCode(err), "%v\n%s", err, out.String())
	assert.Contains(t, out.String(), "FAIL  success rate")

	// On the wall clock, sped up: 2 minutes in a second.
	out.Reset()
	err = run(context.Background(), []string{"replay", failing, "--realtime", "--speed", "120"}, &out, io.Discard)
	assert.Equal(t, 1, exitCode(err), "%v\n%s", err, out.String())
	assert.Contains(t, out.String(), "run 120x faster than real time")

	bad := filepath.Join(t.TempDir(), "bad.yaml")
	require.NoError(t, os.WriteFile(bad, []byte("name: x\nduration: soon\n"), 0o600))
	for _, args := range [][]string{{"replay", bad}, {"replay", "no-such-scenario"}, {"replay"}, {"replay", "thinking-tax", "--realtime", "--speed", "0"}, {"replay", "thinking-tax", "--speed", "60"}} {
		err := run(context.Background(), args, io.Discard, io.Discard)
		assert.Equal(t, 2, exitCode(err), "%v: %v", args, err)
	}
}

func TestReplayFromLedgerExport(t *testing.T) {
	export := filepath.Join(t.TempDir(), "incident.jsonl")
	var lines bytes.Buffer
	start := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	for i := range 240 {
		a := ledger.Attempt{RequestID: fmt.Sprintf("q%d", i), Attempt: 1, Tenant: "t", Route: "chat", Provider: "openai", Model: "gpt-4o-mini",
			Outcome: ledger.OutcomeOK, HTTPStatus: 200, Tokens: llm.Usage{Input: 10, Output: 1},
			StartedAt: start.Add(time.Duration(i) * 500 * time.Millisecond), FinishedAt: start.Add(time.Duration(i)*500*time.Millisecond + 200*time.Millisecond)}
		if i >= 120 && i%2 == 0 {
			a.Outcome, a.HTTPStatus, a.Tokens = ledger.OutcomeServerError, 503, llm.Usage{}
		}
		b, err := json.Marshal(&a)
		require.NoError(t, err)
		lines.Write(append(b, '\n'))
	}
	require.NoError(t, os.WriteFile(export, lines.Bytes(), 0o600))
	var out bytes.Buffer
	err := run(context.Background(), []string{"replay", "--from-ledger", export}, &out, io.Discard)
	require.NoError(t, err, out.String())
	assert.Contains(t, out.String(), "scenario incident")
	assert.Contains(t, out.String(), "by status 200: ")
	assert.Contains(t, out.String(), "503:", "the second minute's 503s come back")
}
