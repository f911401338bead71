package scenarios

import (
	"bytes"
	"fmt"
	"html/template"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/brownout-dev/brownout/internal/chart"
	"github.com/brownout-dev/brownout/reconcile"
)

// WriteHTML renders the report as one self-contained HTML page (inline SVG
// and CSS, no script): breaker states per provider over time, each minute's
// traffic share per provider, latency and cost over time (against the
// budgets, where set), the reconciliation and every expectation. It is
// drawn from the report alone, so the page says what the JSON says.
func (r *Report) WriteHTML(w io.Writer) error {
	var body bytes.Buffer
	if err := reportBody.Execute(&body, r.htmlView()); err != nil {
		return err
	}
	return chart.Page(w, fmt.Sprintf("brownout replay: %s (seed %d)", r.Scenario, r.Seed), template.HTML(body.String()))
}

// Providers are the providers the report saw, sorted: those with attempts
// and those whose breaker moved.
func (r *Report) Providers() []string {
	seen := map[string]bool{}
	for _, win := range r.Windows {
		for p := range win.Providers {
			seen[p] = true
		}
	}
	for _, t := range r.Timeline {
		seen[t.Provider] = true
	}
	return slices.Sorted(maps.Keys(seen))
}

// The charts' ids, which the page's tests look up.
const (
	ChartBreakers = "breakers"
	ChartTraffic  = "traffic"
	ChartLatency  = "latency"
	ChartCost     = "cost"
)

type reportView struct {
	R                                   *Report
	Breakers, Traffic, Latency, Costs   template.HTML
	Verdict                             string
	Duration, P50, P99, Max, SuccessPct string
	ByStatus                            string
	Targets                             []targetRow
}

type targetRow struct {
	Name string
	TargetCost
}

func minutes(d time.Duration) float64 { return d.Minutes() }

func (r *Report) htmlView() reportView {
	v := reportView{R: r, Verdict: "PASS", Duration: human(r.Duration), P50: human(r.Latency.P50), P99: human(r.Latency.P99),
		Max: human(r.Latency.Max), SuccessPct: fmt.Sprintf("%.1f%%", 100*r.Requests.SuccessRate), ByStatus: statusCounts(r.Requests.ByStatus)}
	if !r.Passed {
		v.Verdict = "FAIL"
	}
	for _, k := range slices.Sorted(maps.Keys(r.Cost.ByTarget)) {
		v.Targets = append(v.Targets, targetRow{k, r.Cost.ByTarget[k]})
	}
	end := minutes(r.Duration)
	timeAxis := chart.Axis{Label: "scenario time (minutes)", Min: 0, Max: end}
	providers := r.Providers()

	bands := chart.Bands{ID: ChartBreakers, Title: "Circuit breaker state per provider",
		Desc: "Each provider's breaker over the run: closed (light), half-open (hatched), open (dark).",
		X:    timeAxis, States: []string{"closed", "half_open", "open"}}
	for _, p := range providers {
		row := chart.Row{Name: p}
		states := r.statesOf(p)
		for i, s := range states {
			to := end
			if i+1 < len(states) {
				to = minutes(states[i+1].At)
			}
			row.Segments = append(row.Segments, chart.Segment{From: minutes(s.At), To: to, State: s.State})
		}
		bands.Rows = append(bands.Rows, row)
	}
	v.Breakers = bands.HTML()

	traffic := chart.Stacked{ID: ChartTraffic, Title: "Traffic share: successful attempts per provider, each minute",
		Desc: "For each minute, the share of the attempts answered with success that each provider served.",
		X:    timeAxis, Y: chart.Axis{Label: "share of answers (%)", Min: 0, Max: 100}, Width: 1}
	for _, win := range r.Windows {
		traffic.At = append(traffic.At, minutes(win.From))
	}
	for _, p := range providers {
		bars := chart.Bars{Name: p}
		for _, win := range r.Windows {
			var all int
			for _, c := range win.Providers {
				all += c.OK
			}
			share := 0.0
			if all > 0 {
				share = 100 * float64(win.Providers[p].OK) / float64(all)
			}
			bars.Values = append(bars.Values, share)
		}
		traffic.Series = append(traffic.Series, bars)
	}
	v.Traffic = traffic.HTML()

	// Latency in milliseconds, or in seconds where the slowest is above two.
	unit, name := time.Millisecond, "ms"
	for _, win := range r.Windows {
		if win.P99 >= 2*time.Second {
			unit, name = time.Second, "s"
		}
	}
	p50, p99 := chart.Series{Name: "p50"}, chart.Series{Name: "p99"}
	for _, win := range r.Windows {
		if win.Requests == 0 {
			continue
		}
		x := minutes(win.From) + 0.5
		p50.Points = append(p50.Points, chart.Point{X: x, Y: float64(win.P50) / float64(unit)})
		p99.Points = append(p99.Points, chart.Point{X: x, Y: float64(win.P99) / float64(unit)})
	}
	v.Latency = chart.Lines{ID: ChartLatency, Title: "Client latency per minute (p50 and p99)",
		Desc: "The median and 99th percentile latency of the requests that started in each minute, in scenario time.",
		X:    timeAxis, Y: chart.Axis{Label: "latency (" + name + ")"}, Series: []chart.Series{p50, p99}}.HTML()

	dollars := chart.Axis{Label: "metered cost (USD)", Prefix: "$"}
	total := chart.Series{Name: "all tenants, cumulative", Points: []chart.Point{{X: 0, Y: 0}}}
	sum := decimal.Zero
	for _, win := range r.Windows {
		c, _ := decimal.NewFromString(win.Cost)
		sum = sum.Add(c)
		total.Points = append(total.Points, chart.Point{X: minutes(win.From) + 1, Y: sum.InexactFloat64()})
	}
	costs := chart.Lines{ID: ChartCost, Title: "Cost over time", X: timeAxis, Y: dollars, Series: []chart.Series{total},
		Desc: "The ledger's metered spend, cumulative; for each budgeted tenant, its spend in the current budget window against its limit."}
	for _, tenant := range r.budgetedTenants() {
		s := chart.Series{Name: tenant + ", in its budget window", Points: []chart.Point{{X: 0, Y: 0}}}
		for _, win := range r.Windows {
			c, _ := decimal.NewFromString(win.BudgetSpent[tenant])
			s.Points = append(s.Points, chart.Point{X: minutes(win.From) + 1, Y: c.InexactFloat64()})
		}
		costs.Series = append(costs.Series, s)
		for _, b := range r.Budgets {
			if b.Tenant == tenant {
				limit, _ := decimal.NewFromString(b.Limit)
				costs.Rules = append(costs.Rules, chart.Rule{Name: fmt.Sprintf("%s budget $%s", tenant, b.Limit), Y: limit.InexactFloat64()})
				break
			}
		}
	}
	v.Costs = costs.HTML()
	return v
}

// budgetedTenants are the tenants with a budget, sorted.
func (r *Report) budgetedTenants() []string {
	seen := map[string]bool{}
	for _, b := range r.Budgets {
		seen[b.Tenant] = true
	}
	return slices.Sorted(maps.Keys(seen))
}

var reportBody = template.Must(template.New("report").Funcs(template.FuncMap{"human": human,
	"tokensNote": func(v *reconcile.Result) string { return strings.TrimPrefix(tokensNote(v), "; ") }}).Parse(`
<header>
<h1>Scenario {{.R.Scenario}} <span class="verdict {{if .R.Passed}}pass{{else}}fail{{end}}">{{.Verdict}}</span></h1>
<p class="note">seed {{.R.Seed}}, {{.Duration}} of traffic in scenario time. The same scenario and seed give the same report.</p>
<ul class="facts">
<li><b>{{.R.Requests.Sent}}</b><span>requests sent</span></li>
<li><b>{{.SuccessPct}}</b><span>answered 200 ({{.R.Requests.OK}})</span></li>
<li><b>{{.P50}} / {{.P99}}</b><span>latency p50 / p99 (max {{.Max}})</span></li>
<li><b>${{.R.Cost.Total}}</b><span>metered cost</span></li>
<li><b>${{.R.Cost.PerRequest}}</b><span>per answered request</span></li>
</ul>
</header>

<h2>Expectations</h2>
<div class="table"><table>
<thead><tr><th>result</th><th>expectation</th><th>want</th><th>observed</th></tr></thead>
<tbody>{{range .R.Checks}}<tr><td class="{{if .Pass}}pass{{else}}fail{{end}}">{{if .Pass}}✓ pass{{else}}✗ FAIL{{end}}</td><td>{{.Name}}</td><td>{{.Want}}</td><td>{{.Observed}}</td></tr>
{{else}}<tr><td colspan="4">none</td></tr>{{end}}</tbody>
</table></div>

<h2>Breakers and traffic</h2>
{{.Breakers}}
{{if .R.Timeline}}<div class="table"><table>
<thead><tr><th>at</th><th>provider</th><th>transition</th></tr></thead>
<tbody>{{range .R.Timeline}}<tr><td>{{human .At}}</td><td>{{.Provider}}</td><td>{{.From}} → {{.To}}</td></tr>
{{end}}</tbody></table></div>{{else}}<p class="note">No breaker moved.</p>{{end}}
{{.Traffic}}

<h2>Latency</h2>
{{.Latency}}
<p class="note">Requests by status: {{.ByStatus}}; {{.R.Requests.Shed}} shed at the client's concurrency cap, {{.R.Requests.Duplicates}} duplicates ({{.R.Requests.Replayed}} replayed from the idempotency store).</p>

<h2>Cost</h2>
{{.Costs}}
<div class="table"><table>
<thead><tr><th>target</th><th class="num">metered</th><th class="num">successful attempts</th><th class="num">per success</th><th class="num">output tokens</th><th class="num">reasoning tokens</th></tr></thead>
<tbody>{{range .Targets}}<tr><td>{{.Name}}</td><td class="num">${{.Total}}</td><td class="num">{{.OK}}</td><td class="num">${{.PerRequest}}</td><td class="num">{{.Output}}</td><td class="num">{{.Reasoning}}</td></tr>
{{end}}</tbody></table></div>
{{if .R.Budgets}}<div class="table"><table>
<thead><tr><th>tenant</th><th>budget window from</th><th class="num">limit</th><th class="num">spent</th><th class="num">requests refused</th></tr></thead>
<tbody>{{range .R.Budgets}}<tr><td>{{.Tenant}}</td><td>{{human .Window}}</td><td class="num">${{.Limit}}</td><td class="num">${{.Spent}}</td><td class="num">{{.Rejected}}</td></tr>
{{end}}</tbody></table></div>{{end}}

<h2>The ledger against the vendors' invoices</h2>
{{with .R.Reconciliation}}<div class="table"><table>
<tbody>
<tr><th>invoiced by the fake vendors</th><td class="num">${{.Invoiced}}</td></tr>
<tr><th>metered by the gateway</th><td class="num">${{.Metered}}</td></tr>
<tr><th>of it, from the vendors' reported usage</th><td class="num">${{.Reported}}</td></tr>
<tr><th>of it, estimated (usage never reported)</th><td class="num">${{.Estimated}} over {{.EstimatedRows}} attempts, {{.Unjoined}} without a vendor id</td></tr>
<tr><th>invoice lines matched / missing / extra / mismatched</th><td class="num">{{.Matched}} / {{.Missing}} / {{.Extra}} / {{.Mismatched}}</td></tr>
<tr><th>billed spend the ledger lacks</th><td class="num">${{.Unmetered}}</td></tr>
<tr><th>generations metered twice</th><td class="num">{{.DoubleBilled}}</td></tr>
<tr><th>most invoice lines for one Idempotency-Key</th><td class="num">{{.MaxBilledPerKey}} ({{.KeysBilledTwice}} keys billed twice)</td></tr>
</tbody></table></div>{{end}}
{{if .R.VendorReports}}
<h2>The ledger against the vendors' own reports</h2>
<p class="note">Each provider's usage and cost report (OpenAI's and Anthropic's admin APIs, Gemini's billing export), per day and model, as <code>brownout ledger reconcile</code> reads it.</p>
<div class="table"><table>
<thead><tr><th>provider</th><th class="num">vendor's report</th><th class="num">ledger</th><th class="num">of it estimated</th><th class="num">drift</th><th>tokens</th></tr></thead>
<tbody>{{range .R.VendorReports}}<tr><td>{{.Provider}}</td><td class="num">${{.Billed}}</td><td class="num">${{.Metered}}</td><td class="num">${{.Estimated}}</td><td class="num">${{.Drift}}</td><td>{{with tokensNote .}}{{.}}{{else}}agree{{end}}</td></tr>
{{end}}</tbody></table></div>{{end}}
`))
