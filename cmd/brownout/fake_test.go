package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFakeServesUntilCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	out, w := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"fake", "--config", "../../fakeprovider/testdata/fakes.yaml"}, w, io.Discard)
		w.Close()
	}()
	line, err := bufio.NewReader(out).ReadString('\n')
	require.NoError(t, err)
	var first struct {
		Providers map[string]string `json:"providers"`
	}
	require.NoError(t, json.Unmarshal([]byte(line), &first), "first line %q is not the JSON object", line)
	require.Len(t, first.Providers, 3)
	for name, u := range first.Providers {
		assert.True(t, strings.HasPrefix(u, "http://127.0.0.1:"), "%s: %s", name, u)
	}

	req, err := http.NewRequest("POST", first.Providers["openai"]+"/v1/chat/completions",
		strings.NewReader(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer sk-only-this-one")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, 200, resp.StatusCode, "%s", body)

	cancel()
	require.NoError(t, <-done, "brownout fake ends cleanly on SIGINT/SIGTERM")
}

func TestFakeBadInputExitsTwo(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	require.NoError(t, os.WriteFile(bad, []byte("providers:\n  x:\n    vendor: openai\n    models: {m: {}}\n    faults: [{kind: hang, probability: 7}]\n"), 0o600))
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"fake"}, "--config is required"},
		{[]string{"fake", "--config", bad}, "bad.yaml:5:"},
		{[]string{"fake", "--config", "/nonexistent.yaml"}, "no such file"},
		{[]string{"fake", "--config", bad, "--addr", "nope"}, "--addr"},
		{[]string{"fake", "--bogus"}, "flag provided but not defined"},
		{[]string{"explode"}, `unknown command "explode"`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var stderr bytes.Buffer
			err := run(context.Background(), tt.args, io.Discard, &stderr)
			require.Error(t, err)
			assert.Equal(t, 2, exitCode(err))
			assert.Contains(t, err.Error()+stderr.String(), tt.want)
		})
	}
}
