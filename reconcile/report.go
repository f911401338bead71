package reconcile

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/shopspring/decimal"
)

// WriteJSON writes the result as indented JSON.
func (r *Result) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// percent is drift as a share of billed, for a reader: "+1.25%", or "n/a"
// when nothing was billed.
func percent(drift, billed decimal.Decimal) string {
	if billed.IsZero() {
		if drift.IsZero() {
			return "0%"
		}
		return "n/a"
	}
	return drift.Div(billed).Shift(2).StringFixed(2) + "%"
}

func signed(d decimal.Decimal) string {
	if d.IsNegative() {
		return "-$" + d.Abs().String()
	}
	return "+$" + d.String()
}

// tokens renders a kind of token on both sides: "1200" when they agree,
// "1500 vendor / 1200 ledger" when not.
func tokens(name string, vendor, ledger int64) string {
	if vendor == ledger {
		return fmt.Sprintf("%s %d", name, vendor)
	}
	return fmt.Sprintf("%s %d vendor / %d ledger (%+d)", name, vendor, ledger, vendor-ledger)
}

func (x Row) tokenText() string {
	return strings.Join([]string{
		tokens("input", x.Vendor.Input, x.Ledger.Input), tokens("cache read", x.Vendor.CacheRead, x.Ledger.CacheRead),
		tokens("cache write", x.Vendor.CacheWrite, x.Ledger.CacheWrite), tokens("output", x.Vendor.Output, x.Ledger.Output),
	}, ", ")
}

// WriteText renders the result for a terminal: a line per day and model,
// the totals, and what the check found.
func (r *Result) WriteText(w io.Writer) {
	fmt.Fprintf(w, "ledger reconcile: provider %s (%s's report), %s to %s, in daily buckets\n", r.Provider, r.Vendor,
		r.From.UTC().Format(time.RFC3339), r.To.UTC().Format(time.RFC3339))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  day\tmodel\tvendor\tledger\tof it estimated\tdrift\t\ttokens")
	for _, x := range r.Rows {
		mark := ""
		if !x.Tokens() {
			mark = "  tokens differ:"
		}
		fmt.Fprintf(tw, "  %s\t%s\t$%s\t$%s\t$%s (%d attempts)\t%s\t%s\t%s %s\n", x.Day.Format(time.DateOnly), modelName(x.Model),
			x.Vendor.Cost, x.Ledger.Cost, x.Estimated, x.EstimatedRows, signed(x.Drift), percent(x.Drift, x.Vendor.Cost), mark, x.tokenText())
	}
	tw.Flush()
	if len(r.Rows) == 0 {
		fmt.Fprintln(w, "  nothing billed and nothing metered in the window")
	}
	fmt.Fprintf(w, "  total: vendor $%s, ledger $%s (of it estimated $%s), drift %s (%s)\n",
		r.Billed, r.Metered, r.Estimated, signed(r.Drift), percent(r.Drift, r.Billed))
	for _, f := range r.Failures {
		fmt.Fprintf(w, "  FAIL  %s\n", f)
	}
}

// WriteMarkdown renders the result for a CI job summary.
func (r *Result) WriteMarkdown(w io.Writer) {
	verdict := "PASS"
	if len(r.Failures) > 0 {
		verdict = "FAIL"
	}
	fmt.Fprintf(w, "## Ledger against %s's report: %s\n\nprovider %s, %s to %s; vendor $%s, ledger $%s (of it estimated $%s), drift %s (%s)\n\n",
		r.Vendor, verdict, r.Provider, r.From.UTC().Format(time.RFC3339), r.To.UTC().Format(time.RFC3339),
		r.Billed, r.Metered, r.Estimated, signed(r.Drift), percent(r.Drift, r.Billed))
	fmt.Fprintf(w, "| day | model | vendor | ledger | of it estimated | drift | tokens |\n|---|---|---|---|---|---|---|\n")
	for _, x := range r.Rows {
		fmt.Fprintf(w, "| %s | %s | $%s | $%s | $%s | %s (%s) | %s |\n", x.Day.Format(time.DateOnly), modelName(x.Model),
			x.Vendor.Cost, x.Ledger.Cost, x.Estimated, signed(x.Drift), percent(x.Drift, x.Vendor.Cost), x.tokenText())
	}
	for _, f := range r.Failures {
		fmt.Fprintf(w, "\n**FAIL**: %s\n", f)
	}
}
