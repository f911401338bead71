package scenarios

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/brownout-dev/brownout/reconcile"
)

// Report is what a scenario run observed. Its JSON form (field names in
// the tags) is stable: the same scenario and seed give the same bytes.
// Times are offsets from the start of the run.
type Report struct {
	Scenario       string              `json:"scenario"`
	Seed           uint64              `json:"seed"`
	Duration       time.Duration       `json:"duration_ns"`
	Requests       RequestSummary      `json:"requests"`
	Latency        LatencySummary      `json:"latency"`
	Timeline       []BreakerTransition `json:"breaker_timeline"`
	Windows        []Window            `json:"windows"` // per minute
	Cost           CostSummary         `json:"cost"`
	Reconciliation Reconciliation      `json:"reconciliation"`
	Budgets        []BudgetUse         `json:"budgets,omitempty"`
	// VendorReports are each provider's ledger against its vendor's own
	// usage and cost report, when an expectation asks for them.
	VendorReports []*reconcile.Result `json:"vendor_reports,omitempty"`
	Checks        []Check             `json:"expectations"`
	Passed        bool                `json:"passed"`
}

// RequestSummary counts client requests.
type RequestSummary struct {
	Sent        int            `json:"sent"`
	OK          int            `json:"ok"`
	Shed        int            `json:"shed"`       // not sent: the client's concurrency cap was reached
	Duplicates  int            `json:"duplicates"` // sent again with the same Idempotency-Key
	Replayed    int            `json:"replayed"`   // answered from the idempotency store
	ByStatus    map[string]int `json:"by_status"`
	SuccessRate float64        `json:"success_rate"`
}

// LatencySummary is client-side latency, in virtual time under synctest.
type LatencySummary struct {
	P50 time.Duration `json:"p50_ns"`
	P99 time.Duration `json:"p99_ns"`
	Max time.Duration `json:"max_ns"`
}

// BreakerTransition is one breaker state change.
type BreakerTransition struct {
	At       time.Duration `json:"at_ns"`
	Provider string        `json:"provider"`
	From     string        `json:"from"`
	To       string        `json:"to"`
}

// state is a breaker state entered at At.
type state struct {
	State string
	At    time.Duration
}

func (s state) String() string {
	if s.At == 0 {
		return s.State
	}
	return fmt.Sprintf("%s at %s", s.State, human(s.At))
}

// human renders d as a reader of a report needs it: milliseconds under a
// second (502ms), tenths of a second under a minute (2.3s), and minutes
// and seconds above (5m00.7s, 1h05m00.0s).
func human(d time.Duration) string {
	switch {
	case d < time.Second && d > -time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return fmt.Sprintf("%.1fs", d.Seconds())
	}
	d = d.Round(100 * time.Millisecond)
	h, m := d/time.Hour, (d%time.Hour)/time.Minute
	s := (d % time.Minute).Seconds()
	if h > 0 {
		return fmt.Sprintf("%dh%02dm%04.1fs", h, m, s)
	}
	return fmt.Sprintf("%dm%04.1fs", m, s)
}

// statusCounts renders counts by HTTP status, in order: "200: 1201, 503: 40".
func statusCounts(by map[string]int) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(by)) {
		parts = append(parts, fmt.Sprintf("%s: %d", k, by[k]))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

// statesOf returns a provider's breaker states in order, from closed at 0.
func (r *Report) statesOf(provider string) []state {
	out := []state{{State: "closed"}}
	for _, t := range r.Timeline {
		if t.Provider == provider {
			out = append(out, state{State: t.To, At: t.At})
		}
	}
	return out
}

// Window is one minute of the run: client requests that started in it,
// their latency, and upstream attempts per provider with what they cost.
type Window struct {
	From       time.Duration            `json:"from_ns"`
	Requests   int                      `json:"requests"`
	OK         int                      `json:"ok"`
	FailedOver int                      `json:"failed_over"` // answered by a target after the route's first
	P50        time.Duration            `json:"p50_ns"`      // latency of the requests that started in the minute
	P99        time.Duration            `json:"p99_ns"`
	Cost       string                   `json:"cost"` // metered cost of the attempts that started in the minute
	Providers  map[string]AttemptCounts `json:"providers"`
	// BudgetSpent is each budgeted tenant's metered spend in its current
	// budget window at the end of the minute.
	BudgetSpent map[string]string `json:"budget_spent,omitempty"`
}

// AttemptCounts are a provider's attempts by outcome in a window.
type AttemptCounts struct {
	OK        int `json:"ok"`
	Throttled int `json:"throttled"`
	Errors    int `json:"errors"`   // server and transport errors
	Rejected  int `json:"rejected"` // breaker or budget rejections
	Client    int `json:"client_errors"`
	Cancelled int `json:"cancelled"`
}

// CostSummary is the metered cost.
type CostSummary struct {
	Total          string                `json:"total"`
	PerRequest     string                `json:"per_request"` // per request answered 200
	ByTarget       map[string]TargetCost `json:"by_target"`   // provider/model
	ReasoningShare float64               `json:"reasoning_share"`
}

// TargetCost is the metered cost of one provider/model.
type TargetCost struct {
	Total      string `json:"total"`
	OK         int    `json:"ok"`          // successful attempts
	PerRequest string `json:"per_request"` // total / ok
	Reasoning  int64  `json:"reasoning_tokens"`
	Output     int64  `json:"output_tokens"`
}

// BudgetUse is a tenant's metered spend against its budget, per window.
type BudgetUse struct {
	Tenant   string        `json:"tenant"`
	Window   time.Duration `json:"window_from_ns"`
	Limit    string        `json:"limit"`
	Spent    string        `json:"spent"`
	Rejected int           `json:"rejected"`
}

// Reconciliation is the ledger against the fakes' invoices.
type Reconciliation struct {
	Invoiced  string `json:"invoiced"`
	Metered   string `json:"metered"`   // the ledger's spend: reported and estimated
	Reported  string `json:"reported"`  // the part of Metered from the vendors' usage
	Estimated string `json:"estimated"` // the part of Metered the gateway estimated
	// EstimatedRows are the rows whose usage the gateway estimated; Unjoined
	// of them have no vendor id to join a line on (their estimate offsets
	// the Missing lines in Unmetered).
	EstimatedRows int    `json:"estimated_rows"`
	Unjoined      int    `json:"unjoined"`
	Matched       int    `json:"matched"`
	Missing       int    `json:"missing"`    // billed, not metered
	Extra         int    `json:"extra"`      // metered with tokens, not billed
	Mismatched    int    `json:"mismatched"` // both, with different tokens or cost
	Unmetered     string `json:"unmetered"`  // billed spend the ledger lacks or undercounts
	DoubleBilled  int    `json:"double_billed"`
	// MaxBilledPerKey is the most invoice lines one tenant's Idempotency-Key
	// has (through the ledger rows that name them); KeysBilledTwice counts
	// the keys with more than one.
	MaxBilledPerKey int `json:"max_billed_per_key"`
	KeysBilledTwice int `json:"keys_billed_twice"`
}

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteText renders the report for a terminal: a timeline chart of breaker
// states per provider (one column per minute: . closed, # open, ~ half
// open), traffic shares, cost, reconciliation and the expectations.
func (r *Report) WriteText(w io.Writer) {
	fmt.Fprintf(w, "scenario %s (seed %d, %s)\n", r.Scenario, r.Seed, r.Duration)
	q := r.Requests
	fmt.Fprintf(w, "  requests  %d sent, %d ok (%.1f%%), %d shed, %d duplicates (%d replayed); by status %s\n",
		q.Sent, q.OK, 100*q.SuccessRate, q.Shed, q.Duplicates, q.Replayed, statusCounts(q.ByStatus))
	fmt.Fprintf(w, "  latency   p50 %s, p99 %s, max %s\n", human(r.Latency.P50), human(r.Latency.P99), human(r.Latency.Max))
	providers := map[string]bool{}
	for _, win := range r.Windows {
		for p := range win.Providers {
			providers[p] = true
		}
	}
	fmt.Fprintf(w, "  timeline  (one column a minute; . closed  # open  ~ half-open; digits: share of ok attempts in tenths)\n")
	for _, p := range slices.Sorted(maps.Keys(providers)) {
		var states, share strings.Builder
		var total int
		for _, win := range r.Windows {
			total += win.Providers[p].OK
		}
		for _, win := range r.Windows {
			states.WriteByte(r.stateMark(p, win.From))
			var all int
			for _, c := range win.Providers {
				all += c.OK
			}
			c := win.Providers[p]
			if all == 0 {
				share.WriteByte(' ')
			} else {
				share.WriteByte("0123456789X"[c.OK*10/all])
			}
		}
		fmt.Fprintf(w, "    %-10s breaker %s\n    %-10s traffic %s\n", p, states.String(), "", share.String())
	}
	for _, t := range r.Timeline {
		fmt.Fprintf(w, "    %9s  %s: %s -> %s\n", human(t.At), t.Provider, t.From, t.To)
	}
	fmt.Fprintf(w, "  cost      total $%s, $%s per request, reasoning share %.1f%%\n", r.Cost.Total, r.Cost.PerRequest, 100*r.Cost.ReasoningShare)
	for _, k := range slices.Sorted(maps.Keys(r.Cost.ByTarget)) {
		c := r.Cost.ByTarget[k]
		fmt.Fprintf(w, "            %-32s $%s over %d answers: $%s per request (output %d, reasoning %d tokens)\n",
			k, c.Total, c.OK, c.PerRequest, c.Output, c.Reasoning)
	}
	rc := r.Reconciliation
	fmt.Fprintf(w, "  ledger    invoiced $%s, metered $%s (reported $%s, estimated $%s over %d attempts, %d without a vendor id); %d matched, %d missing, %d extra, %d mismatched; unmetered $%s\n",
		rc.Invoiced, rc.Metered, rc.Reported, rc.Estimated, rc.EstimatedRows, rc.Unjoined, rc.Matched, rc.Missing, rc.Extra, rc.Mismatched, rc.Unmetered)
	for _, v := range r.VendorReports {
		fmt.Fprintf(w, "  vendor    %s's own report: billed $%s, ledger $%s (estimated $%s), drift $%s%s\n",
			v.Provider, v.Billed, v.Metered, v.Estimated, v.Drift, tokensNote(v))
	}
	for _, b := range r.Budgets {
		fmt.Fprintf(w, "  budget    %s: spent $%s of $%s (window from %s), %d requests refused\n", b.Tenant, b.Spent, b.Limit, b.Window, b.Rejected)
	}
	for _, c := range r.Checks {
		mark := "PASS"
		if !c.Pass {
			mark = "FAIL"
		}
		fmt.Fprintf(w, "  %s  %-24s want %s; observed %s\n", mark, c.Name, c.Want, c.Observed)
	}
}

// stateMark is a provider's breaker state at the end of the minute from.
func (r *Report) stateMark(p string, from time.Duration) byte {
	s := "closed"
	for _, t := range r.Timeline {
		if t.Provider == p && t.At < from+time.Minute {
			s = t.To
		}
	}
	return map[string]byte{"closed": '.', "open": '#', "half_open": '~'}[s]
}

// WriteMarkdown renders the report for a CI job summary.
func (r *Report) WriteMarkdown(w io.Writer) {
	verdict := "PASS"
	if !r.Passed {
		verdict = "FAIL"
	}
	fmt.Fprintf(w, "## Scenario %s: %s\n\nseed %d, %s of traffic; %d requests, %.1f%% ok; latency p50 %s, p99 %s; cost $%s\n\n",
		r.Scenario, verdict, r.Seed, r.Duration, r.Requests.Sent, 100*r.Requests.SuccessRate, human(r.Latency.P50), human(r.Latency.P99), r.Cost.Total)
	fmt.Fprintf(w, "| expectation | result | want | observed |\n|---|---|---|---|\n")
	for _, c := range r.Checks {
		mark := "pass"
		if !c.Pass {
			mark = "**FAIL**"
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s |\n", c.Name, mark, c.Want, c.Observed)
	}
	if len(r.Timeline) > 0 {
		fmt.Fprintf(w, "\n| at | provider | transition |\n|---|---|---|\n")
		for _, t := range r.Timeline {
			fmt.Fprintf(w, "| %s | %s | %s → %s |\n", human(t.At), t.Provider, t.From, t.To)
		}
	}
	if len(r.VendorReports) > 0 {
		fmt.Fprintf(w, "\n| provider | vendor's report | ledger | of it estimated | drift |\n|---|---|---|---|---|\n")
		for _, v := range r.VendorReports {
			fmt.Fprintf(w, "| %s | $%s | $%s | $%s | $%s%s |\n", v.Provider, v.Billed, v.Metered, v.Estimated, v.Drift, tokensNote(v))
		}
	}
	rc := r.Reconciliation
	fmt.Fprintf(w, "\nLedger: invoiced $%s, metered $%s (reported $%s, estimated $%s over %d attempts, %d without a vendor id); %d matched, %d missing, %d extra, %d mismatched; unmetered $%s.\n",
		rc.Invoiced, rc.Metered, rc.Reported, rc.Estimated, rc.EstimatedRows, rc.Unjoined, rc.Matched, rc.Missing, rc.Extra, rc.Mismatched, rc.Unmetered)
}

// tokensNote says where a vendor's report and the ledger count tokens
// differently: "; output tokens 9945 vendor / 945 ledger".
func tokensNote(v *reconcile.Result) string {
	var notes []string
	for _, x := range v.Rows {
		if x.Tokens() {
			continue
		}
		for _, k := range []struct {
			name           string
			vendor, ledger int64
		}{{"input", x.Vendor.Input, x.Ledger.Input}, {"cache read", x.Vendor.CacheRead, x.Ledger.CacheRead},
			{"cache write", x.Vendor.CacheWrite, x.Ledger.CacheWrite}, {"output", x.Vendor.Output, x.Ledger.Output}} {
			if k.vendor != k.ledger {
				notes = append(notes, fmt.Sprintf("%s %s tokens %d vendor / %d ledger", x.Model, k.name, k.vendor, k.ledger))
			}
		}
	}
	if len(notes) == 0 {
		return ""
	}
	return "; " + strings.Join(notes, ", ")
}
