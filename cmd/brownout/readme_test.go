package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/brownout-dev/brownout/gateway/ledger"
	"github.com/brownout-dev/brownout/gateway/llm"
	"github.com/brownout-dev/brownout/internal/browsertest"
	"github.com/brownout-dev/brownout/internal/pgtest"
)

// readmeCommand is one command of a README shell block.
type readmeCommand struct {
	line     string
	args     []string
	redirect string // stdout goes to this file
	exit     int    // from a "# exits N" comment
	forever  bool   // "# runs until SIGTERM"
	// account: "# needs your vendor account": the test has none, so the
	// command must get as far as asking for it (exit 2, naming the admin
	// key or the export file it lacks), its flags and config accepted.
	account bool
}

// readmeCommands extracts the commands of README.md's ```sh blocks.
func readmeCommands(t *testing.T) []readmeCommand {
	t.Helper()
	data, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	var out []readmeCommand
	in := false
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "```sh"):
			in = true
			continue
		case strings.HasPrefix(line, "```"):
			in = false
			continue
		}
		line = strings.TrimSpace(line)
		if !in || line == "" {
			continue
		}
		c := readmeCommand{line: line}
		code, comment, _ := strings.Cut(line, "#")
		if m := regexp.MustCompile(`exits (\d)`).FindStringSubmatch(comment); m != nil {
			c.exit, _ = strconv.Atoi(m[1])
		}
		c.forever = strings.Contains(comment, "runs until SIGTERM")
		c.account = strings.Contains(comment, "needs your vendor account")
		if strings.TrimSpace(code) == "" {
			continue // a comment line
		}
		code, c.redirect, _ = strings.Cut(code, ">")
		c.redirect = strings.TrimSpace(c.redirect)
		c.args = splitArgs(os.ExpandEnv(code))
		out = append(out, c)
	}
	return out
}

// splitArgs splits a command line on spaces, keeping double-quoted words.
func splitArgs(s string) []string {
	var out []string
	var cur strings.Builder
	quoted := false
	for _, r := range s {
		switch {
		case r == '"':
			quoted = !quoted
		case r == ' ' && !quoted:
			if cur.Len() > 0 {
				out = append(out, cur.String())
				cur.Reset()
			}
		default:
			cur.WriteRune(r)
		}
	}
	if cur.Len() > 0 {
		out = append(out, cur.String())
	}
	return out
}

// TestReadmeCommands runs every command of the README's shell blocks, so
// the README cannot rot: make targets must exist; brownout commands run
// (long-running servers stopped after a moment) and must end with the exit
// status the README gives them, a replay's expectations included.
func TestReadmeCommands(t *testing.T) {
	makefile, err := os.ReadFile("../../Makefile")
	require.NoError(t, err)

	// The ledger the export reads: an incident in the README's window.
	db := pgtest.New(t, pgtest.Template{Name: "ledger", Setup: ledger.Migrate})
	seedIncident(t, db)
	t.Setenv("DATABASE_URL", db)
	for _, k := range []string{"ANTHROPIC_API_KEY", "GEMINI_API_KEY", "OPENAI_API_KEY", "BROWNOUT_KEY_ACME"} {
		t.Setenv(k, "test-"+k)
	}
	for _, k := range []string{"ANTHROPIC_ADMIN_KEY", "OPENAI_ADMIN_KEY"} {
		t.Setenv(k, "") // no vendor account here: see readmeCommand.account
	}
	cmds := readmeCommands(t) // after the environment is set: commands expand it
	require.NotEmpty(t, cmds)
	tmp := t.TempDir()
	t.Chdir("../..")

	for _, c := range cmds {
		t.Run(c.line, func(t *testing.T) {
			switch c.args[0] {
			case "make":
				require.Regexp(t, "(?m)^"+regexp.QuoteMeta(c.args[1])+":", string(makefile), "Makefile has no target %s", c.args[1])
				return
			case "brownout":
			default:
				t.Fatalf("README command %q: only make and brownout commands are checked; add a case", c.line)
			}
			args := c.args[1:]
			var pages []string
			for i := range args {
				// Written files go to a temporary directory.
				if i > 0 && (args[i-1] == "--markdown" || args[i-1] == "--from-ledger" || args[i-1] == "--html") {
					args[i] = filepath.Join(tmp, args[i])
				}
				if i > 0 && args[i-1] == "--html" {
					pages = append(pages, args[i])
				}
			}
			if c.forever {
				if args[0] == "serve" {
					// Each run its own spool: the example's path is shared by every
					// checkout on the machine.
					args = append(args, "--spool-dir", filepath.Join(tmp, "spool"))
				}
				runUntilReady(t, c.line, args)
				return
			}
			if c.account {
				err := run(context.Background(), args, io.Discard, io.Discard)
				require.Equal(t, 2, exitCode(err), "%s: %v", c.line, err)
				require.Regexp(t, `environment variable \w+_ADMIN_KEY .* is empty|--export: open`, err.Error(), c.line)
				return
			}
			var stdout bytes.Buffer
			err := run(context.Background(), args, &stdout, io.Discard)
			code := 0
			if err != nil {
				code = exitCode(err)
			}
			// Replays run in virtual time: their expectations are asserted,
			// with the status the README gives them.
			require.Equal(t, c.exit, code, "%s: %v\n%s", c.line, err, stdout.String())
			if c.redirect != "" {
				require.NoError(t, os.WriteFile(filepath.Join(tmp, c.redirect), stdout.Bytes(), 0o600))
			}
			for _, p := range pages {
				page, err := os.ReadFile(p)
				require.NoError(t, err, "%s wrote no HTML report", c.line)
				charts, err := browsertest.Parse(page)
				require.NoError(t, err, c.line)
				require.Len(t, charts, 4, "%s: the report's charts", c.line)
			}
		})
	}
}

// runUntilReady runs a command that serves until it is stopped: it waits
// for the command's first stdout line (the addresses it listens on), asks
// every address for /readyz (or any answer, for the fakes), then cancels the
// command and requires a clean exit. Readiness is an event, not a sleep, so
// a loaded machine only makes the test slower.
func runUntilReady(t *testing.T, line string, args []string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	first := newFirstLine()
	exited := make(chan error, 1)
	go func() { exited <- run(ctx, args, first, io.Discard) }()
	var addrs []string
	select {
	case l := <-first.line:
		addrs = regexp.MustCompile(`http://[^"]+`).FindAllString(l, -1)
		require.NotEmpty(t, addrs, "%s: first line %q names no address", line, l)
	case err := <-exited:
		t.Fatalf("%s: exited before it served: %v", line, err)
	}
	serve := args[0] == "serve"
	path := "/"
	if serve {
		path = "/readyz"
	}
	for _, a := range addrs {
		url := a + path
		if strings.HasSuffix(a, "/metrics") {
			url = a // serve's metrics, on their own listener
		}
		resp, err := http.Get(url)
		require.NoError(t, err, "%s: %s", line, url)
		_ = resp.Body.Close()
		if serve {
			require.Equal(t, http.StatusOK, resp.StatusCode, "%s: %s", line, url)
		}
	}
	cancel()
	require.NoError(t, <-exited, "%s: after it was stopped", line)
}

// firstLine is an io.Writer that hands its first complete line to a channel.
type firstLine struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	sent bool
	line chan string
}

func newFirstLine() *firstLine { return &firstLine{line: make(chan string, 1)} }

func (f *firstLine) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.buf.Write(p)
	if l, _, ok := strings.Cut(f.buf.String(), "\n"); ok && !f.sent {
		f.sent = true
		f.line <- l
	}
	return len(p), nil
}

// seedIncident writes a minute of successes then a minute of 503s, within
// the README's export window.
func seedIncident(t *testing.T, url string) {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), url)
	require.NoError(t, err)
	defer pool.Close()
	start := time.Date(2026, 11, 26, 14, 10, 0, 0, time.UTC)
	var batch []ledger.Attempt
	for i := range 240 {
		at := start.Add(time.Duration(i) * 500 * time.Millisecond)
		a := ledger.Attempt{RequestID: fmt.Sprintf("inc-%d", i), Attempt: 1, Tenant: "acme", Route: "chat", Provider: "gemini",
			Model: "gemini-2.5-flash", Outcome: ledger.OutcomeOK, HTTPStatus: 200, Tokens: llm.Usage{Input: 10, Output: 1, Reasoning: 24},
			StartedAt: at, FinishedAt: at.Add(300 * time.Millisecond)}
		if i >= 120 {
			a.Outcome, a.HTTPStatus, a.Tokens = ledger.OutcomeServerError, 503, llm.Usage{}
		}
		batch = append(batch, a)
	}
	_, err = ledger.NewPostgresStore(pool).Insert(context.Background(), batch)
	require.NoError(t, err)
}
