// Command brownout is the CLI of the brownout gateway and harness.
//
//	brownout serve --config FILE [--addr 127.0.0.1:0] [--database-url URL]   the gateway
//	brownout fake --config FILE [--addr 127.0.0.1:0]                         fake vendors
//	brownout replay FILE|NAME [--seed N] [--json] [--markdown FILE] [--html FILE] [--database-url URL] [--realtime [--speed N]]; replay --list
//	brownout replay [SETTINGS] --from-ledger EXPORT.jsonl [...]                an incident from the ledger
//	brownout ledger export [--database-url URL] [--from T] [--to T]            attempts as JSON lines
//	brownout ledger reconcile --config FILE --provider NAME --from T --to T [--max-drift USD,PCT%]   the ledger against the vendor's report
//	brownout eval SUITE [--model P/M,...] [--samples N] [--seed N] [--json] [--markdown FILE] [--gateway URL]
//	brownout cost compare --suite FILE --baseline P/M --candidate P/M [--max-cost-ratio R] [--min-pass-rate P] [--html FILE] ...
//
// Exit status: 0 on success, 1 when the command fails, 2 for bad input
// (flags, files, values).
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		var said exitStatus
		if !errors.As(err, &said) && !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "brownout:", err)
		}
		os.Exit(exitCode(err))
	}
}

// exitStatus is the status of a command that has already said why it
// failed.
type exitStatus int

func (e exitStatus) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// usageError marks bad input: exit status 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

func exitCode(err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return 0 // -h: the flags were printed, as asked
	}
	var u usageError
	if errors.As(err, &u) {
		return 2
	}
	var said exitStatus
	if errors.As(err, &said) {
		return int(said)
	}
	return 1 // failures, and a failed cost regression check
}

const usage = `usage: brownout <command> [flags]

commands:
  serve    run the gateway: an OpenAI-compatible endpoint in front of Anthropic, Gemini and OpenAI
  fake     serve programmable fake Anthropic, Gemini and OpenAI APIs
  replay   run an outage scenario (a file, or a library name: replay --list)
  ledger   ledger export: a time window of metered attempts as JSON lines;
           ledger reconcile: the ledger against a vendor's own usage and cost report
  eval     sample an eval suite and print score, cost and latency distributions
  cost     cost compare: a cost regression check before switching models

Run 'brownout <command> -h' for a command's flags.`

// run executes the command in args until it is done or ctx ends (SIGINT,
// SIGTERM).
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprintln(stderr, usage)
		return usagef("no command given")
	}
	switch args[0] {
	case "serve":
		return runServe(ctx, args[1:], stdout, stderr)
	case "fake":
		return runFake(ctx, args[1:], stdout, stderr)
	case "eval":
		return runEval(ctx, args[1:], stdout, stderr)
	case "replay":
		return runReplay(ctx, args[1:], stdout, stderr)
	case "ledger":
		return runLedger(ctx, args[1:], stdout, stderr)
	case "cost":
		if len(args) >= 2 && (args[1] == "-h" || args[1] == "--help" || args[1] == "help") {
			fmt.Fprintln(stderr, "usage: brownout cost compare --suite FILE --baseline P/M --candidate P/M [flags]")
			return runCostCompare(ctx, []string{"-h"}, stdout, stderr)
		}
		if len(args) < 2 || args[1] != "compare" {
			return usagef("usage: brownout cost compare --suite FILE --baseline P/M --candidate P/M (brownout cost -h: the flags)")
		}
		return runCostCompare(ctx, args[2:], stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprintln(stdout, usage)
		return nil
	}
	fmt.Fprintln(stderr, usage)
	return usagef("unknown command %q", args[0])
}

// writeFile writes what render makes to path: the whole of it, or nothing
// when rendering fails.
func writeFile(path string, render func(io.Writer) error) error {
	var b bytes.Buffer
	if err := render(&b); err != nil {
		return err
	}
	return os.WriteFile(path, b.Bytes(), 0o644)
}

// htmlLink ends a markdown summary with where its charts are: GitHub does
// not render inline SVG in markdown, so the HTML page goes beside it (as a
// CI artifact) and the summary names it.
func htmlLink(w io.Writer, path string) error {
	if path == "" {
		return nil
	}
	_, err := fmt.Fprintf(w, "\nCharts: the HTML report `%s` (self-contained; in CI, upload it as an artifact).\n", filepath.Base(path))
	return err
}
