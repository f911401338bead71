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
	"github.com/brownout-dev/brownout/internal/bubble"
	"github.com/brownout-dev/brownout/scenarios"
)

// errExpectations is the exit status 1 of a replay whose expectations failed.
var errExpectations = errors.New("replay: expectations failed")

// inBubble runs f in a testing/synctest bubble, where time is virtual, and
// returns the status f returned. The binary's is bubble.Exit, which ends
// the process with that status instead of returning; the tests run f in a
// bubble of their own.
var inBubble = func(f func() int) int {
	bubble.Exit(f)
	return 2 // never reached
}

// runReplay runs a scenario (a file or a library name) and prints its
// report: in virtual time by default, as the tests do (a twenty-minute
// scenario in seconds, the same report for the same seed on any machine),
// or in real time with --realtime, optionally sped up.
func runReplay(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("brownout replay", flag.ContinueOnError)
	fs.SetOutput(stderr)
	list := fs.Bool("list", false, "list the library scenarios")
	realtime := fs.Bool("realtime", false, "run on the wall clock instead of in virtual time (to watch a replay, or against live endpoints)")
	speed := fs.Float64("speed", 1, "with --realtime, run N times faster than real time (every duration scaled, breaker timeouts included)")
	seed := fs.Uint64("seed", 0, "override the scenario's seed")
	jsonOut := fs.Bool("json", false, "print the report as JSON")
	markdown := fs.String("markdown", "", "also write a markdown report to this file")
	htmlOut := fs.String("html", "", "also write the report as one self-contained HTML page with charts to this file")
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
			e, err := scenarios.Describe(name)
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "%-24s %6s  %s\n%-24s         checks: %s\n", e.Name, e.Duration, e.Summary, "", strings.Join(e.Checks, ", "))
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
	if *speed != 1 && !*realtime {
		return usagef("replay: --speed needs --realtime (a replay runs in virtual time by default, in seconds)")
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
	}
	run := sc.Scaled(*speed)
	out := replayOutput{stdout: stdout, json: *jsonOut, markdown: *markdown, html: *htmlOut, speed: *speed}
	// replay runs the scenario on the clock it is called under and prints
	// the report; the ledger's pool lives on that clock too.
	replay := func(ctx context.Context) error {
		if *dbURL != "" {
			pool, err := pgxpool.New(ctx, *dbURL)
			if err != nil {
				return fmt.Errorf("replay: ledger: %w", err)
			}
			defer pool.Close()
			opts.Store = ledger.NewPostgresStore(pool)
		}
		rep, err := scenarios.Execute(ctx, run, opts)
		if err != nil {
			return err
		}
		return out.write(rep)
	}
	if !*realtime {
		code := inBubble(func() int {
			err := replay(context.Background()) // a signal cannot reach into the bubble; the run takes seconds
			if err != nil {
				fmt.Fprintln(stderr, "brownout:", err)
				return exitCode(err)
			}
			return 0
		})
		if code != 0 {
			return exitStatus(code)
		}
		return nil
	}
	if w := progress(stderr); w != nil {
		bar := progressbar.NewOptions64(int64(run.Duration/time.Millisecond), progressbar.OptionSetWriter(w),
			progressbar.OptionSetDescription(sc.Name), progressbar.OptionClearOnFinish(), progressbar.OptionThrottle(100*time.Millisecond))
		opts.Progress = func(at time.Duration, sent int) {
			bar.Describe(fmt.Sprintf("%s: %s simulated, %d requests", sc.Name, (time.Duration(float64(at) * *speed)).Truncate(time.Second), sent))
			_ = bar.Set64(int64(at / time.Millisecond))
		}
		defer bar.Finish()
	}
	return replay(ctx)
}

// replayOutput is where and how a replay's report is printed.
type replayOutput struct {
	stdout   io.Writer
	json     bool
	markdown string
	html     string
	speed    float64
}

// write prints rep, and returns errExpectations when it failed.
func (o replayOutput) write(rep *scenarios.Report) error {
	if o.markdown != "" {
		err := writeFile(o.markdown, func(w io.Writer) error {
			rep.WriteMarkdown(w)
			return htmlLink(w, o.html)
		})
		if err != nil {
			return err
		}
	}
	if o.html != "" {
		if err := writeFile(o.html, rep.WriteHTML); err != nil {
			return err
		}
	}
	if o.json {
		if err := rep.WriteJSON(o.stdout); err != nil {
			return err
		}
	} else {
		if o.speed != 1 {
			fmt.Fprintf(o.stdout, "(run %gx faster than real time; times are in scenario time)\n", o.speed)
		}
		rep.WriteText(o.stdout)
	}
	if !rep.Passed {
		return errExpectations
	}
	return nil
}
