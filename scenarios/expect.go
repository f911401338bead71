package scenarios

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/brownout-dev/brownout/gateway/pricing"
	"github.com/brownout-dev/brownout/internal/strictyaml"
	"github.com/brownout-dev/brownout/reconcile"
)

// Expect are a scenario's expectations; each set field is checked.
type Expect struct {
	// Breakers lists, per provider, the breaker states in order from the
	// start, each optionally with the window its transition must fall in:
	// [closed, open in 5m..5m30s, half_open, closed in 15m..16m].
	Breakers map[string][]Transition `yaml:"breakers"`
	// MaxTransitions bounds the number of transitions per provider.
	MaxTransitions map[string]int `yaml:"max_transitions"`
	// FirstOpen is the window a provider's breaker must first open in
	// ("4m..6m"), whatever happens after; FinalState its state at the end.
	FirstOpen  map[string]Span   `yaml:"first_open"`
	FinalState map[string]string `yaml:"final_state"`
	// NoDoubleBilling: no generation is metered twice.
	NoDoubleBilling bool `yaml:"no_double_billing"`
	// MaxBilledPerKey bounds the generations the vendors billed for one
	// logical request: the invoice lines whose ledger rows carry the same
	// tenant and Idempotency-Key. 1 says a duplicate never runs again; a
	// duplicate that does gets a new vendor id, which no_double_billing
	// cannot see.
	MaxBilledPerKey *int `yaml:"max_billed_per_key"`
	// MinReplayedShare is the least share of duplicates (requests sent
	// again with a key already used) answered from the idempotency store.
	MinReplayedShare *float64 `yaml:"min_replayed_share"`
	// BudgetsHeld: no tenant's metered spend in a window exceeds its budget.
	BudgetsHeld bool `yaml:"budgets_held"`
	// SuccessRate is the least share of client requests answered 200.
	SuccessRate *float64 `yaml:"success_rate"`
	// WindowSuccess bounds the success rate of the requests started in a
	// span of the run: [{from: 5m, to: 15m, min: 0.95}].
	WindowSuccess []WindowBound `yaml:"window_success"`
	// ProviderShare bounds the share of successful attempts a provider
	// served in a span: [{provider: anthropic, from: 6m, to: 14m, min: 0.9}].
	ProviderShare []WindowBound `yaml:"provider_share"`
	// LatencyP50 and LatencyP99 bound the client-side latency quantiles.
	LatencyP50 time.Duration `yaml:"latency_p50"`
	LatencyP99 time.Duration `yaml:"latency_p99"`
	// CostMax bounds the total metered cost, CostPerRequestMax its mean per
	// request answered.
	CostMax           *pricing.Rate `yaml:"cost_max"`
	CostPerRequestMax *pricing.Rate `yaml:"cost_per_request_max"`
	// ReasoningShareMin is the least share of reasoning in generated tokens.
	ReasoningShareMin *float64 `yaml:"reasoning_share_min"`
	// LedgerEqualsInvoices: every billed generation metered with the same
	// tokens and cost, nothing metered that was not billed.
	LedgerEqualsInvoices bool `yaml:"ledger_equals_invoices"`
	// MaxUnmetered bounds the spend the vendors billed that the ledger lacks.
	MaxUnmetered *pricing.Rate `yaml:"max_unmetered"`
	// VendorReportDriftMax runs `brownout ledger reconcile` at the end of
	// the run: each provider's ledger against its vendor's own usage and
	// cost report (OpenAI's and Anthropic's admin APIs, Gemini's billing
	// export), per day and model. It bounds the drift as --max-drift does:
	// USD ("0.01"), a share of the bill ("0.5%"), or both ("0.01,0.5%").
	VendorReportDriftMax string `yaml:"vendor_report_drift_max"`
	// VendorReportDriftMin is the least drift, in USD over every provider,
	// the same reconciliation must find: for a scenario that injects spend
	// the responses do not report, that the check sees it.
	VendorReportDriftMin *pricing.Rate `yaml:"vendor_report_drift_min"`
}

// reconciles reports whether an expectation needs the vendors' reports.
func (e *Expect) reconciles() bool {
	return e.VendorReportDriftMax != "" || e.VendorReportDriftMin != nil
}

// Transition is an expected breaker state and, for a transition into it,
// the window it must fall in.
type Transition struct {
	State    string
	From, To time.Duration // To 0: any time
}

// UnmarshalYAML parses "open", or "open in 5m..5m30s".
func (t *Transition) UnmarshalYAML(b []byte) error {
	s := strings.Trim(strings.TrimSpace(string(b)), `"'`)
	state, window, hasWindow := strings.Cut(s, " in ")
	t.State = strings.TrimSpace(state)
	switch t.State {
	case "closed", "open", "half_open":
	default:
		return fmt.Errorf("breaker state %q: want closed, open or half_open", t.State)
	}
	if !hasWindow {
		return nil
	}
	lo, hi, ok := strings.Cut(strings.TrimSpace(window), "..")
	if !ok {
		return fmt.Errorf("window %q: want FROM..TO, like 5m..5m30s", window)
	}
	var err error
	if t.From, err = time.ParseDuration(lo); err != nil {
		return fmt.Errorf("window %q: %v", window, err)
	}
	if t.To, err = time.ParseDuration(hi); err != nil {
		return fmt.Errorf("window %q: %v", window, err)
	}
	if t.To < t.From {
		return fmt.Errorf("window %q ends before it starts", window)
	}
	return nil
}

// WindowBound bounds a share over the minutes in [From, To).
type WindowBound struct {
	Provider string        `yaml:"provider"`
	From     time.Duration `yaml:"from"`
	To       time.Duration `yaml:"to"`
	Min      float64       `yaml:"min"`
	Max      *float64      `yaml:"max"`
}

func (w WindowBound) holds(v float64) bool {
	return v >= w.Min && (w.Max == nil || v <= *w.Max)
}

func (w WindowBound) String() string {
	s := fmt.Sprintf(">= %.3f", w.Min)
	if w.Max != nil {
		s += fmt.Sprintf(" and <= %.3f", *w.Max)
	}
	return s
}

// Span is a span of the run, "FROM..TO" in YAML.
type Span struct{ From, To time.Duration }

// UnmarshalYAML parses "4m..6m".
func (w *Span) UnmarshalYAML(b []byte) error {
	var t Transition
	if err := t.UnmarshalYAML([]byte("open in " + strings.Trim(strings.TrimSpace(string(b)), `"'`))); err != nil {
		return err
	}
	w.From, w.To = t.From, t.To
	return nil
}

func (t Transition) String() string {
	if t.To == 0 {
		return t.State
	}
	return fmt.Sprintf("%s in %s..%s", t.State, t.From, t.To)
}

func (e *Expect) validate() []error {
	var errs []error
	for _, p := range slices.Sorted(maps.Keys(e.Breakers)) {
		if ts := e.Breakers[p]; len(ts) > 0 && ts[0].State != "closed" {
			errs = append(errs, strictyaml.Errorf("$.expect.breakers."+strictyaml.Key(p)+"[0]", "a breaker starts closed"))
		}
	}
	for i, wb := range append(slices.Clone(e.WindowSuccess), e.ProviderShare...) {
		if wb.To <= wb.From || wb.Min < 0 || wb.Min > 1 {
			errs = append(errs, strictyaml.Errorf(fmt.Sprintf("$.expect.window[%d]", i), "a window needs from < to and min in [0, 1]"))
		}
	}
	if e.SuccessRate != nil && (*e.SuccessRate < 0 || *e.SuccessRate > 1) {
		errs = append(errs, strictyaml.Errorf("$.expect.success_rate", "must be in [0, 1]"))
	}
	if e.MinReplayedShare != nil && (*e.MinReplayedShare < 0 || *e.MinReplayedShare > 1) {
		errs = append(errs, strictyaml.Errorf("$.expect.min_replayed_share", "must be in [0, 1]"))
	}
	if e.MaxBilledPerKey != nil && *e.MaxBilledPerKey < 1 {
		errs = append(errs, strictyaml.Errorf("$.expect.max_billed_per_key", "must be at least 1"))
	}
	if e.VendorReportDriftMax != "" {
		if _, err := reconcile.ParseLimit(e.VendorReportDriftMax); err != nil {
			errs = append(errs, strictyaml.Errorf("$.expect.vendor_report_drift_max", "%v", err))
		}
	}
	return errs
}

// Check is one expectation's outcome in a report.
type Check struct {
	Name     string `json:"name"`
	Pass     bool   `json:"pass"`
	Want     string `json:"want"`
	Observed string `json:"observed"`
}

// check evaluates the expectations against a report.
func (e *Expect) check(r *Report) []Check {
	var out []Check
	add := func(name string, pass bool, want, observed string) {
		out = append(out, Check{Name: name, Pass: pass, Want: want, Observed: observed})
	}
	for _, p := range slices.Sorted(maps.Keys(e.Breakers)) {
		want := e.Breakers[p]
		got := r.statesOf(p)
		pass := len(got) == len(want)
		for i := 0; pass && i < len(want); i++ {
			w, g := want[i], got[i]
			pass = w.State == g.State && (w.To == 0 || (g.At >= w.From && g.At <= w.To))
		}
		var ws, gs []string
		for _, w := range want {
			ws = append(ws, w.String())
		}
		for _, g := range got {
			gs = append(gs, g.String())
		}
		add("breaker "+p, pass, strings.Join(ws, ", "), strings.Join(gs, ", "))
	}
	for _, p := range slices.Sorted(maps.Keys(e.MaxTransitions)) {
		n := len(r.statesOf(p)) - 1
		add("transitions "+p, n <= e.MaxTransitions[p], fmt.Sprintf("<= %d", e.MaxTransitions[p]), fmt.Sprint(n))
	}
	for _, p := range slices.Sorted(maps.Keys(e.FirstOpen)) {
		w := e.FirstOpen[p]
		got := "never"
		pass := false
		for _, st := range r.statesOf(p)[1:] {
			if st.State == "open" {
				got, pass = human(st.At), st.At >= w.From && st.At <= w.To
				break
			}
		}
		add("first open "+p, pass, fmt.Sprintf("in %s..%s", w.From, w.To), got)
	}
	for _, p := range slices.Sorted(maps.Keys(e.FinalState)) {
		states := r.statesOf(p)
		final := states[len(states)-1].State
		add("final state "+p, final == e.FinalState[p], e.FinalState[p], final)
	}
	if e.NoDoubleBilling {
		add("no double billing", r.Reconciliation.DoubleBilled == 0, "0 generations metered twice", fmt.Sprint(r.Reconciliation.DoubleBilled))
	}
	if e.MaxBilledPerKey != nil {
		add("billed per idempotency key", r.Reconciliation.MaxBilledPerKey <= *e.MaxBilledPerKey,
			fmt.Sprintf("<= %d generations", *e.MaxBilledPerKey), fmt.Sprintf("%d (keys billed more than once: %d)", r.Reconciliation.MaxBilledPerKey, r.Reconciliation.KeysBilledTwice))
	}
	if e.MinReplayedShare != nil {
		share := 0.0
		if r.Requests.Duplicates > 0 {
			share = float64(r.Requests.Replayed) / float64(r.Requests.Duplicates)
		}
		add("duplicates replayed", r.Requests.Duplicates > 0 && share >= *e.MinReplayedShare,
			fmt.Sprintf(">= %.3f of duplicates", *e.MinReplayedShare), fmt.Sprintf("%.3f (%d of %d)", share, r.Requests.Replayed, r.Requests.Duplicates))
	}
	if e.BudgetsHeld {
		var over []string
		for _, b := range r.Budgets {
			if decimal.RequireFromString(b.Spent).GreaterThan(decimal.RequireFromString(b.Limit)) {
				over = append(over, b.Tenant)
			}
		}
		observed := fmt.Sprintf("%d budget windows, none over", len(r.Budgets))
		if len(over) > 0 {
			observed = fmt.Sprintf("%d budget windows; over: %s", len(r.Budgets), strings.Join(over, ", "))
		}
		add("budgets held", len(over) == 0 && len(r.Budgets) > 0, "every tenant's spend <= its budget", observed)
	}
	if e.SuccessRate != nil {
		add("success rate", r.Requests.SuccessRate >= *e.SuccessRate, fmt.Sprintf(">= %.3f", *e.SuccessRate), fmt.Sprintf("%.3f", r.Requests.SuccessRate))
	}
	for _, wb := range e.WindowSuccess {
		var n, ok int
		for _, w := range r.Windows {
			if w.From >= wb.From && w.From < wb.To {
				n, ok = n+w.Requests, ok+w.OK
			}
		}
		v := 0.0
		if n > 0 {
			v = float64(ok) / float64(n)
		}
		add(fmt.Sprintf("success %s..%s", wb.From, wb.To), n > 0 && wb.holds(v), wb.String(), fmt.Sprintf("%.3f of %d", v, n))
	}
	for _, wb := range e.ProviderShare {
		var all, mine int
		for _, w := range r.Windows {
			if w.From >= wb.From && w.From < wb.To {
				for p, c := range w.Providers {
					all += c.OK
					if p == wb.Provider {
						mine += c.OK
					}
				}
			}
		}
		v := 0.0
		if all > 0 {
			v = float64(mine) / float64(all)
		}
		add(fmt.Sprintf("share %s %s..%s", wb.Provider, wb.From, wb.To), all > 0 && wb.holds(v), wb.String(), fmt.Sprintf("%.3f of %d", v, all))
	}
	if e.LatencyP50 > 0 {
		add("latency p50", r.Latency.P50 <= e.LatencyP50, "<= "+e.LatencyP50.String(), human(r.Latency.P50))
	}
	if e.LatencyP99 > 0 {
		add("latency p99", r.Latency.P99 <= e.LatencyP99, "<= "+e.LatencyP99.String(), human(r.Latency.P99))
	}
	total := decimal.RequireFromString(r.Cost.Total)
	if e.CostMax != nil {
		add("cost", total.LessThanOrEqual(e.CostMax.Decimal), "<= $"+e.CostMax.String(), "$"+total.String())
	}
	if e.CostPerRequestMax != nil {
		per := decimal.RequireFromString(r.Cost.PerRequest)
		add("cost per request", per.LessThanOrEqual(e.CostPerRequestMax.Decimal), "<= $"+e.CostPerRequestMax.String(), "$"+per.String())
	}
	if e.ReasoningShareMin != nil {
		add("reasoning share", r.Cost.ReasoningShare >= *e.ReasoningShareMin, fmt.Sprintf(">= %.3f", *e.ReasoningShareMin), fmt.Sprintf("%.3f", r.Cost.ReasoningShare))
	}
	if e.LedgerEqualsInvoices {
		rc := r.Reconciliation
		// Every line has a row with the vendor's usage and cost; estimates
		// (usage that never came back) are shown apart, never counted as
		// a match.
		pass := rc.Missing == 0 && rc.Extra == 0 && rc.Mismatched == 0 && decimal.RequireFromString(rc.Invoiced).Equal(decimal.RequireFromString(rc.Reported))
		add("ledger equals invoices", pass, "missing 0, extra 0, mismatched 0, invoiced == reported",
			fmt.Sprintf("missing %d, extra %d, mismatched %d, invoiced $%s, reported $%s, estimated $%s over %d attempts", rc.Missing, rc.Extra, rc.Mismatched, rc.Invoiced, rc.Reported, rc.Estimated, rc.EstimatedRows))
	}
	if e.MaxUnmetered != nil {
		un := decimal.RequireFromString(r.Reconciliation.Unmetered)
		add("unmetered spend", un.LessThanOrEqual(e.MaxUnmetered.Decimal), "<= $"+e.MaxUnmetered.String(), "$"+un.String())
	}
	if e.VendorReportDriftMax != "" {
		limit, _ := reconcile.ParseLimit(e.VendorReportDriftMax) // validated on load
		pass := len(r.VendorReports) > 0
		var observed []string
		for _, v := range r.VendorReports {
			pass = v.Check(limit) && pass
			observed = append(observed, fmt.Sprintf("%s $%s (vendor $%s, ledger $%s)", v.Provider, v.Drift, v.Billed, v.Metered))
		}
		add("vendor report drift", pass, "at most "+limit.String()+" a day, model and provider", strings.Join(observed, "; "))
	}
	if e.VendorReportDriftMin != nil {
		total := decimal.Zero
		for _, v := range r.VendorReports {
			total = total.Add(v.Drift.Abs())
		}
		add("vendor report drift seen", total.GreaterThanOrEqual(e.VendorReportDriftMin.Decimal), ">= $"+e.VendorReportDriftMin.String(), "$"+total.String())
	}
	return out
}
