package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/shopspring/decimal"
	"golang.org/x/term"

	"github.com/brownout-dev/brownout/evals"
)

// evalFlags are the flags `brownout eval` and `brownout cost compare` share.
type evalFlags struct {
	suite    *string
	samples  *int
	seed     *uint64
	json     *bool
	markdown *string
	gateway  *string
	apiKey   *string
}

func addEvalFlags(fs *flag.FlagSet) evalFlags {
	return evalFlags{
		suite:    fs.String("suite", "", "eval suite YAML (required)"),
		samples:  fs.Int("samples", 0, "samples per case (default: the suite's)"),
		seed:     fs.Uint64("seed", 0, "seed of the fakes and of the bootstrap (default: the suite's)"),
		json:     fs.Bool("json", false, "print the result as JSON"),
		markdown: fs.String("markdown", "", "also write a markdown report to this file"),
		gateway:  fs.String("gateway", "", "a running brownout serve (base URL); default: fake vendors with the shipped model profiles"),
		// Not the flag's default: -h and every flag error would print it.
		apiKey: fs.String("api-key", "", "tenant API key for --gateway (default: the environment's BROWNOUT_API_KEY)"),
	}
}

// setup loads the suite and builds the target for models.
func (f evalFlags) setup(models []string) (*evals.Suite, evals.Target, func() error, error) {
	if *f.suite == "" {
		return nil, nil, nil, usagef("--suite is required")
	}
	suite, err := evals.LoadSuite(*f.suite)
	if err != nil {
		return nil, nil, nil, usageError{err}
	}
	if *f.samples < 0 {
		return nil, nil, nil, usagef("--samples must not be negative")
	}
	if *f.samples > 0 {
		suite.Samples = *f.samples
	}
	if *f.seed != 0 {
		suite.Seed = *f.seed
	}
	if *f.gateway != "" {
		key := *f.apiKey
		if key == "" {
			key = os.Getenv("BROWNOUT_API_KEY")
		}
		return suite, evals.HTTP{BaseURL: *f.gateway, APIKey: key}, func() error { return nil }, nil
	}
	fakes, err := evals.NewFakes(models, suite.Seed)
	if err != nil {
		return nil, nil, nil, usageError{err}
	}
	return suite, fakes.Target(), fakes.Close, nil
}

// progress returns stderr when it is a terminal, else nil: no bar in CI logs.
func progress(stderr io.Writer) io.Writer {
	if f, ok := stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		return stderr
	}
	return nil
}

// runEval runs a suite on one or more models and prints the distributions.
func runEval(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("brownout eval", flag.ContinueOnError)
	fs.SetOutput(stderr)
	f := addEvalFlags(fs)
	models := fs.String("model", "", "comma-separated models (provider/model; default: the suite's)")
	// The suite may come as the first argument: brownout eval SUITE [flags].
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		args = append([]string{"--suite", args[0]}, args[1:]...)
	}
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	var list []string
	if *models != "" {
		list = strings.Split(*models, ",")
	} else if *f.suite != "" {
		s, err := evals.LoadSuite(*f.suite)
		if err != nil {
			return usageError{err}
		}
		list = s.Models
	}
	if len(list) == 0 && *f.suite != "" {
		return usagef("eval: no model: pass --model or list models in the suite")
	}
	suite, target, closeTarget, err := f.setup(list)
	if err != nil {
		return err
	}
	defer closeTarget()
	var results []*evals.Result
	for _, m := range list {
		r, err := evals.Run(ctx, suite, m, target, evals.RunOptions{Progress: progress(stderr)})
		if err != nil {
			return err
		}
		results = append(results, r)
	}
	if *f.markdown != "" {
		var b strings.Builder
		for _, r := range results {
			fmt.Fprintf(&b, "## %s on %s\n\n```\n", r.Suite, r.Model)
			evals.WriteText(&b, r)
			b.WriteString("```\n\n")
		}
		if err := os.WriteFile(*f.markdown, []byte(b.String()), 0o644); err != nil {
			return err
		}
	}
	if *f.json {
		return evals.WriteJSON(stdout, results)
	}
	for i, r := range results {
		if i > 0 {
			fmt.Fprintln(stdout)
		}
		evals.WriteText(stdout, r)
	}
	return nil
}

// errCheckFailed is the exit status 1 of a failed cost regression check.
var errCheckFailed = errors.New("cost compare: the candidate failed the check")

// runCostCompare is `brownout cost compare`: exit 1 when the candidate costs
// more than --max-cost-ratio times the baseline (lower bound of the
// interval), may pass more than --max-pass-rate-drop less than the baseline
// (default 2 points: a non-inferiority check), or its pass rate's lower
// bound is below --min-pass-rate.
func runCostCompare(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("brownout cost compare", flag.ContinueOnError)
	fs.SetOutput(stderr)
	f := addEvalFlags(fs)
	baseline := fs.String("baseline", "", "the model in use (provider/model, required)")
	candidate := fs.String("candidate", "", "the model to switch to (provider/model, required)")
	maxRatio := fs.String("max-cost-ratio", "1", "fail when the candidate costs more than this many times the baseline per request")
	minPass := fs.Float64("min-pass-rate", 0, "fail when the candidate's pass rate may be below this (lower bound of its 95% interval)")
	htmlOut := fs.String("html", "", "also write the comparison as one self-contained HTML page with charts to this file")
	maxDrop := fs.Float64("max-pass-rate-drop", evals.DefaultMaxPassRateDrop, "fail when the candidate may pass this much less than the baseline (0.02: 2 points; the lower bound of the 95% interval of the paired difference)")
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	if *baseline == "" || *candidate == "" {
		return usagef("cost compare: --baseline and --candidate are required")
	}
	ratio, err := decimal.NewFromString(*maxRatio)
	if err != nil || !ratio.IsPositive() {
		return usagef("cost compare: --max-cost-ratio %q is not a positive number", *maxRatio)
	}
	if *maxDrop < 0 || *maxDrop > 1 {
		return usagef("cost compare: --max-pass-rate-drop must be in [0, 1]")
	}
	if *minPass < 0 || *minPass > 1 {
		return usagef("cost compare: --min-pass-rate must be in [0, 1]")
	}
	models := []string{*baseline}
	if *candidate != *baseline {
		models = append(models, *candidate)
	}
	suite, target, closeTarget, err := f.setup(models)
	if err != nil {
		return err
	}
	defer closeTarget()
	base, err := evals.Run(ctx, suite, *baseline, target, evals.RunOptions{Progress: progress(stderr)})
	if err != nil {
		return err
	}
	cand, err := evals.Run(ctx, suite, *candidate, target, evals.RunOptions{Progress: progress(stderr)})
	if err != nil {
		return err
	}
	cmp, err := evals.Compare(base, cand, suite.Seed)
	if err != nil {
		return err
	}
	check := evals.RegressionCheck(cmp, ratio, *minPass, *maxDrop)
	if *f.markdown != "" {
		err := writeFile(*f.markdown, func(w io.Writer) error {
			evals.WriteComparisonMarkdown(w, cmp, check)
			return htmlLink(w, *htmlOut)
		})
		if err != nil {
			return err
		}
	}
	if *htmlOut != "" {
		if err := writeFile(*htmlOut, func(w io.Writer) error { return evals.WriteComparisonHTML(w, cmp, check) }); err != nil {
			return err
		}
	}
	if *f.json {
		if err := evals.WriteJSON(stdout, map[string]any{"comparison": cmp, "check": check}); err != nil {
			return err
		}
	} else {
		evals.WriteComparisonText(stdout, cmp, check)
	}
	if !check.Passed() {
		return errCheckFailed
	}
	return nil
}
