package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const capitals = "../../evals/suites/capitals.yaml"

func TestCostCompareExitCodes(t *testing.T) {
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"thinking tax fails at 2x", []string{"--baseline", "anthropic/claude-haiku-4-5", "--candidate", "gemini/gemini-2.5-flash", "--max-cost-ratio", "2"}, 1, "above the allowed 2x"},
		{"thinking tax passes at 3x", []string{"--baseline", "anthropic/claude-haiku-4-5", "--candidate", "gemini/gemini-2.5-flash", "--max-cost-ratio", "3"}, 0, "check: PASS"},
		{"same profile passes", []string{"--baseline", "anthropic/claude-haiku-4-5", "--candidate", "anthropic/claude-haiku-4-5"}, 0, "check: PASS"},
		{"quality floor", []string{"--baseline", "anthropic/claude-haiku-4-5", "--candidate", "gemini/gemini-2.5-flash-lite", "--min-pass-rate", "0.99"}, 1, "quality:"},
		{"unknown model", []string{"--baseline", "anthropic/claude-haiku-4-5", "--candidate", "gemini/gemini-9"}, 2, "no fake profile for gemini-9"},
		{"bad ratio", []string{"--baseline", "a/b", "--candidate", "a/b", "--max-cost-ratio", "cheap"}, 2, "--max-cost-ratio"},
		{"missing candidate", []string{"--baseline", "a/b"}, 2, "--candidate are required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			args := append([]string{"cost", "compare", "--suite", capitals, "--samples", "20"}, tt.args...)
			err := run(context.Background(), args, &out, &errOut)
			code := 0
			if err != nil {
				code = exitCode(err)
			}
			assert.Equal(t, tt.code, code, "err %v\n%s", err, errOut.String())
			msg := out.String()
			if err != nil {
				msg += err.Error()
			}
			assert.Contains(t, msg, tt.want)
		})
	}
}

func TestCostCompareJSONAndMarkdown(t *testing.T) {
	md := filepath.Join(t.TempDir(), "summary.md")
	var out bytes.Buffer
	err := run(context.Background(), []string{"cost", "compare", "--suite", capitals, "--samples", "10", "--json", "--markdown", md,
		"--baseline", "anthropic/claude-haiku-4-5", "--candidate", "gemini/gemini-2.5-flash", "--max-cost-ratio", "2"}, &out, io.Discard)
	assert.Equal(t, 1, exitCode(err))
	var got struct {
		Comparison struct {
			CostRatio struct{ Value, Lo, Hi string } `json:"cost_ratio"`
			Verdict   string
		}
		Check struct{ Failures []string }
	}
	require.NoError(t, json.Unmarshal(out.Bytes(), &got))
	assert.NotEmpty(t, got.Comparison.CostRatio.Lo)
	assert.Len(t, got.Check.Failures, 1)
	b, err := os.ReadFile(md)
	require.NoError(t, err)
	assert.Contains(t, string(b), "## Cost regression check: capitals")
	assert.Contains(t, string(b), "**Check: FAIL**")
}

func TestEvalPrintsDistributions(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, run(context.Background(), []string{"eval", "../../evals/suites/json-extraction.yaml", "--samples", "10", "--model", "gemini/gemini-2.5-flash-lite"}, &out, io.Discard))
	assert.Contains(t, out.String(), "json-extraction on gemini/gemini-2.5-flash-lite: 20 samples")
	assert.Contains(t, out.String(), "pass rate")
	assert.Contains(t, out.String(), "scores:")
	err := run(context.Background(), []string{"eval", "nope.yaml"}, io.Discard, io.Discard)
	assert.Equal(t, 2, exitCode(err))
}

// TestCostHelpShowsTheFlags: `brownout cost -h` prints cost compare's
// flags and exits 0.
func TestCostHelpShowsTheFlags(t *testing.T) {
	var errOut bytes.Buffer
	err := run(context.Background(), []string{"cost", "-h"}, io.Discard, &errOut)
	assert.Equal(t, 0, exitCode(err), "%v", err)
	for _, flag := range []string{"-baseline", "-candidate", "-max-cost-ratio", "-max-pass-rate-drop", "-min-pass-rate", "-suite"} {
		assert.Contains(t, errOut.String(), flag)
	}
}

// TestHelpPrintsNoSecret: no secret is a flag's default, so neither -h nor
// a flag error prints the environment's keys and database URL.
func TestHelpPrintsNoSecret(t *testing.T) {
	t.Setenv("BROWNOUT_API_KEY", "sk-tenant-secret")
	t.Setenv("DATABASE_URL", "postgres://u:db-secret@127.0.0.1/x")
	for _, args := range [][]string{
		{"eval", "-h"}, {"cost", "compare", "-h"}, {"cost", "compare", "--no-such-flag"},
		{"serve", "-h"}, {"ledger", "export", "-h"}, {"ledger", "reconcile", "-h"}, {"replay", "-h"}, {"fake", "-h"},
	} {
		var errOut bytes.Buffer
		_ = run(context.Background(), args, io.Discard, &errOut)
		assert.NotEmpty(t, errOut.String(), "%v prints its usage", args)
		assert.NotContains(t, errOut.String(), "secret", "%v", args)
	}
}
