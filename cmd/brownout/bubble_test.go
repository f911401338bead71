package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brownout-dev/brownout/scenarios"
)

func init() {
	if os.Getenv("BROWNOUT_CLI") == "1" {
		// This test binary is the brownout command, as built: the tests run
		// it as a child to check the binary's own way into virtual time
		// (bubble.Exit), which ends the process.
		main()
		os.Exit(0)
	}
	// In process, a replay's bubble is a test's: testing.RunTests runs one
	// inside the running test binary and returns.
	inBubble = func(f func() int) int {
		code := 0
		testing.RunTests(func(string, string) (bool, error) { return true, nil },
			[]testing.InternalTest{{Name: "bubble", F: func(t *testing.T) {
				synctest.Test(t, func(*testing.T) { code = f() })
			}}})
		return code
	}
}

// brownout runs the command as the binary does, in a child process.
func brownout(t *testing.T, args ...string) (stdout []byte, code int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "BROWNOUT_CLI=1")
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	if err != nil {
		require.ErrorAs(t, err, &exit, "%s", errOut.String())
		code = exit.ExitCode()
	}
	return out.Bytes(), code
}

// TestReplayInVirtualTimeEqualsScenariosRun: `brownout replay`, as the
// binary runs it, gives byte-identical JSON reports on two runs, and the
// same report scenarios.Execute gives in a test's own bubble for the same
// seed: the CLI's verdict is the tests' verdict, whatever the machine.
func TestReplayInVirtualTimeEqualsScenariosRun(t *testing.T) {
	first, code := brownout(t, "replay", "thinking-tax", "--json")
	require.Equal(t, 0, code, "%s", first)
	second, code := brownout(t, "replay", "thinking-tax", "--json")
	require.Equal(t, 0, code)
	assert.Equal(t, string(first), string(second), "two runs of the same seed")

	sc, err := scenarios.LoadLibrary("thinking-tax")
	require.NoError(t, err)
	var want bytes.Buffer
	synctest.Test(t, func(t *testing.T) {
		rep, err := scenarios.Execute(context.Background(), sc, scenarios.Options{})
		require.NoError(t, err)
		require.NoError(t, rep.WriteJSON(&want))
	})
	assert.Equal(t, want.String(), string(first), "the CLI's report and scenarios.Execute's")

	_, code = brownout(t, "replay", "thinking-tax", "--speed", "60")
	assert.Equal(t, 2, code, "--speed without --realtime is bad input")
}
