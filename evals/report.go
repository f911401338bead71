package evals

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

func sortStrings(s []string) { slices.Sort(s) }

// bars draws a histogram as a row of block characters.
func bars(h Histogram) string {
	blocks := []rune(" ▁▂▃▄▅▆▇█")
	top := 0
	for _, c := range h.Counts {
		top = max(top, c)
	}
	var b strings.Builder
	for _, c := range h.Counts {
		i := 0
		if top > 0 {
			i = (c*(len(blocks)-1) + top - 1) / top
		}
		b.WriteRune(blocks[i])
	}
	return b.String()
}

// WriteText renders a result for a terminal.
func WriteText(w io.Writer, r *Result) {
	s := r.Stats
	fmt.Fprintf(w, "%s on %s: %d samples (%d errors), seed %d\n", r.Suite, r.Model, s.N, s.Errors, r.Seed)
	fmt.Fprintf(w, "  pass rate        %.3f  95%% CI [%.3f, %.3f] (Wilson)\n", s.PassRate.Value, s.PassRate.Lo, s.PassRate.Hi)
	fmt.Fprintf(w, "  mean score       %.3f  95%% CI [%.3f, %.3f] (bootstrap)\n", s.MeanScore.Value, s.MeanScore.Lo, s.MeanScore.Hi)
	fmt.Fprintf(w, "  cost / request   $%s  95%% CI [$%s, $%s]; p50 $%s, p95 $%s; total $%s\n",
		s.CostPerRequest.Value.StringFixed(9), s.CostPerRequest.Lo.StringFixed(9), s.CostPerRequest.Hi.StringFixed(9), s.CostP50, s.CostP95, s.TotalCost)
	fmt.Fprintf(w, "  cost / pass      $%s  95%% CI [$%s, $%s] (every sample's cost over the %d that passed)\n",
		s.CostPerPass.Value.StringFixed(9), s.CostPerPass.Lo.StringFixed(9), s.CostPerPass.Hi.StringFixed(9), s.Passed)
	fmt.Fprintf(w, "  tokens           input %d, output %d, reasoning %d (reasoning share %.1f%%)\n",
		s.Tokens.Input, s.Tokens.Output, s.Tokens.Reasoning, 100*s.ReasoningShare)
	fmt.Fprintf(w, "  latency          p50 %s, p95 %s, p99 %s\n", s.LatencyP50.Round(time.Microsecond), s.LatencyP95.Round(time.Microsecond), s.LatencyP99.Round(time.Microsecond))
	fmt.Fprintf(w, "  cost histogram   %s  [$%.6f .. $%.6f]\n", bars(s.CostHistogram), s.CostHistogram.Lo/1e6, s.CostHistogram.Hi/1e6)
	io.WriteString(w, Distribution(r))
}

// WriteComparisonText renders a comparison and its check.
func WriteComparisonText(w io.Writer, c *Comparison, ch *Check) {
	WriteText(w, c.Baseline)
	fmt.Fprintln(w)
	WriteText(w, c.Candidate)
	fmt.Fprintln(w)
	fmt.Fprintf(w, "verdict: %s\n", c.Verdict)
	fmt.Fprintf(w, "reasoning share: %s %.1f%%, %s %.1f%%\n", c.Baseline.Model, 100*c.Baseline.Stats.ReasoningShare,
		c.Candidate.Model, 100*c.Candidate.Stats.ReasoningShare)
	if ch != nil {
		if ch.Passed() {
			fmt.Fprintf(w, "check: PASS (max cost ratio %s, pass rate at most %.1f points below the baseline, min pass rate %.2f)\n", ch.MaxCostRatio, 100*ch.MaxPassRateDrop, ch.MinPassRate)
		}
		for _, f := range ch.Failures {
			fmt.Fprintf(w, "check: FAIL: %s\n", f)
		}
	}
}

// WriteComparisonMarkdown renders a comparison for a CI job summary.
func WriteComparisonMarkdown(w io.Writer, c *Comparison, ch *Check) {
	fmt.Fprintf(w, "## Cost regression check: %s\n\n", c.Suite)
	fmt.Fprintf(w, "| model | pass rate (95%% CI) | cost / request (95%% CI) | cost / passing answer (95%% CI) | reasoning share | latency p50 |\n|---|---|---|---|---|---|\n")
	for _, r := range []*Result{c.Baseline, c.Candidate} {
		s := r.Stats
		fmt.Fprintf(w, "| %s | %.3f [%.3f, %.3f] | $%s [$%s, $%s] | $%s [$%s, $%s] | %.1f%% | %s |\n", r.Model, s.PassRate.Value, s.PassRate.Lo, s.PassRate.Hi,
			s.CostPerRequest.Value.StringFixed(9), s.CostPerRequest.Lo.StringFixed(9), s.CostPerRequest.Hi.StringFixed(9),
			s.CostPerPass.Value.StringFixed(9), s.CostPerPass.Lo.StringFixed(9), s.CostPerPass.Hi.StringFixed(9),
			100*s.ReasoningShare, s.LatencyP50.Round(time.Microsecond))
	}
	fmt.Fprintf(w, "\n**Verdict:** %s\n\n", c.Verdict)
	if ch != nil {
		if ch.Passed() {
			fmt.Fprintf(w, "**Check: PASS** (max cost ratio %s, pass rate at most %.1f points below the baseline, min pass rate %.2f)\n", ch.MaxCostRatio, 100*ch.MaxPassRateDrop, ch.MinPassRate)
		}
		for _, f := range ch.Failures {
			fmt.Fprintf(w, "**Check: FAIL**: %s\n\n", f)
		}
	}
}

// WriteJSON writes v as indented JSON.
func WriteJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
