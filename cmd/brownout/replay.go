package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/schollz/progressbar/v3"

	"github.com/brownout-dev/brownout/gateway/ledger"
	"github.com/brownout-dev/brownout/scenarios"
)

// errExpectations is the exit status 1 of a replay whose expectations failed.
var errExpectations = errors.New("replay: expectations failed")

// runReplay runs a scenario (a file or a library name) in real time,
// optionally sped up, and prints its report.
func runReplay(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("brownout replay", flag.ContinueOnError)
	fs.SetOutput(stderr)
	list := fs.Bool("list", false, "list the library scenarios")
	speed := fs.Float64("speed", 1, "run N times faster than real time (every duration scaled, breaker timeouts included)")
	seed := fs.Uint64("seed", 0, "override the scenario's seed")
	jsonOut := fs.Bool("json", false, "print the report as JSON")
	markdown := fs.String("markdown", "", "also write a markdown report to this file")
	dbURL := fs.String("database-url", "", "meter into this Postgres instead of memory")
	fromLedger := fs.String("from-ledger", "", "replay an incident from a ledger export (JSON lines); the scenario named, if any, gives the gateway settings")
	// The scenario may come first: brownout replay NAME [flags].
	var target string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		target, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	if *list {
		for _, name := range scenarios.Library() {
			fmt.Fprintln(stdout, name)
		}
		return nil
	}
	if target == "" && fs.NArg() == 1 {
		target = fs.Arg(0)
	}
	if target == "" && *fromLedger == "" {
		return usagef("replay: name a scenario file or one of: %s", strings.Join(scenarios.Library(), ", "))
	}
	if *speed <= 0 {
		return usagef("replay: --speed must be positive")
	}
	var sc *scenarios.Scenario
	var err error
	if target != "" {
		if _, statErr := os.Stat(target); statErr == nil {
			sc, err = scenarios.Load(target)
		} else {
			sc, err = scenarios.LoadLibrary(target)
		}
		if err != nil {
			return usageError{err}
		}
	}
	if *fromLedger != "" {
		f, err := os.Open(*fromLedger)
		if err != nil {
			return usageError{fmt.Errorf("replay: %w", err)}
		}
		incident, err := scenarios.FromLedger(f, "incident", sc)
		f.Close()
		if err != nil {
			return usageError{err}
		}
		sc = incident
	}
	if *seed != 0 {
		sc.Seed = *seed
	}
	opts := scenarios.Options{RunID: fmt.Sprintf("%s-%d-%d", sc.Name, sc.Seed, time.Now().Unix()), Speed: *speed, Original: sc}
	if *dbURL != "" {
		if err := ledger.Migrate(ctx, *dbURL); err != nil {
			return fmt.Errorf("replay: ledger: %w", err)
		}
		pool, err := pgxpool.New(ctx, *dbURL)
		if err != nil {
			return fmt.Errorf("replay: ledger: %w", err)
		}
		defer pool.Close()
		opts.Store = ledger.NewPostgresStore(pool)
	}
	run := sc.Scaled(*speed)
	if w := progress(stderr); w != nil {
		bar := progressbar.NewOptions64(int64(run.Duration/time.Millisecond), progressbar.OptionSetWriter(w),
			progressbar.OptionSetDescription(sc.Name), progressbar.OptionClearOnFinish(), progressbar.OptionThrottle(100*time.Millisecond))
		opts.Progress = func(at time.Duration, sent int) {
			bar.Describe(fmt.Sprintf("%s: %s simulated, %d requests", sc.Name, (time.Duration(float64(at) * *speed)).Truncate(time.Second), sent))
			_ = bar.Set64(int64(at / time.Millisecond))
		}
		defer bar.Finish()
	}
	rep, err := scenarios.Execute(ctx, run, opts)
	if err != nil {
		return err
	}
	if *markdown != "" {
		var b strings.Builder
		rep.WriteMarkdown(&b)
		if err := os.WriteFile(*markdown, []byte(b.String()), 0o644); err != nil {
			return err
		}
	}
	if *jsonOut {
		if err := rep.WriteJSON(stdout); err != nil {
			return err
		}
	} else {
		if *speed != 1 {
			fmt.Fprintf(stdout, "(run %gx faster than real time; times are in scenario time)\n", *speed)
		}
		rep.WriteText(stdout)
	}
	if !rep.Passed {
		return errExpectations
	}
	return nil
}
