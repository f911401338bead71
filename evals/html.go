package evals

import (
	"bytes"
	"fmt"
	"html/template"
	"io"
	"slices"
	"time"

	"github.com/brownout-dev/brownout/internal/chart"
)

// The comparison page's charts, by id.
const (
	ChartCostECDF    = "cost-ecdf"
	ChartPassRate    = "pass-rate"
	ChartCostPerPass = "cost-per-pass"
	ChartReasoning   = "reasoning-share"
)

// WriteComparisonHTML renders a comparison and its check as one
// self-contained HTML page (inline SVG and CSS, no script): the cost per
// request of both models as distribution functions on one axis, the pass
// rates and the costs per passing answer with their 95% intervals, the
// reasoning shares, and the verdict.
func WriteComparisonHTML(w io.Writer, c *Comparison, ch *Check) error {
	results := []*Result{c.Baseline, c.Candidate}
	names := []string{"baseline " + c.Baseline.Model, "candidate " + c.Candidate.Model}

	ecdf := chart.Lines{ID: ChartCostECDF, Title: "Cost per request: share of requests at or below each cost",
		Desc: "The empirical distribution function of each model's cost per request, every sample counted, failed calls included.",
		X:    chart.Axis{Label: "cost per request (USD)", Prefix: "$"}, Y: chart.Axis{Label: "share of requests (%)", Min: 0, Max: 100, Suffix: "%"}}
	pass := chart.Estimates{ID: ChartPassRate, Title: "Pass rate with its 95% interval (Wilson)",
		Desc: "The share of samples that passed the suite's assertions.", X: chart.Axis{Label: "pass rate (%)", Min: 0, Max: 100, Suffix: "%"}}
	perPass := chart.Estimates{ID: ChartCostPerPass, Title: "Cost per passing answer with its 95% interval (bootstrap)",
		Desc: "Every sample's cost over the samples that passed.", X: chart.Axis{Label: "cost per passing answer (USD)", Prefix: "$"}}
	reasoning := chart.Estimates{ID: ChartReasoning, Title: "Reasoning share of output tokens", Bars: true,
		Desc: "Reasoning tokens over output and reasoning tokens: billed as output, never shown.", X: chart.Axis{Label: "reasoning share (%)", Min: 0, Max: 100, Suffix: "%"}}
	for i, r := range results {
		costs := make([]float64, 0, len(r.Samples))
		for _, s := range r.Samples {
			costs = append(costs, s.Cost.InexactFloat64())
		}
		slices.Sort(costs)
		line := chart.Series{Name: names[i], Step: true}
		if len(costs) > 0 {
			line.Points = append(line.Points, chart.Point{X: costs[0], Y: 0})
		}
		for j, x := range costs {
			// One point per distinct cost: the share at or below it.
			if j+1 < len(costs) && costs[j+1] == x {
				continue
			}
			line.Points = append(line.Points, chart.Point{X: x, Y: 100 * float64(j+1) / float64(len(costs))})
		}
		ecdf.Series = append(ecdf.Series, line)
		s := r.Stats
		pass.Rows = append(pass.Rows, chart.Estimate{Name: names[i], Value: 100 * s.PassRate.Value, Lo: 100 * s.PassRate.Lo, Hi: 100 * s.PassRate.Hi})
		perPass.Rows = append(perPass.Rows, chart.Estimate{Name: names[i], Value: s.CostPerPass.Value.InexactFloat64(),
			Lo: s.CostPerPass.Lo.InexactFloat64(), Hi: s.CostPerPass.Hi.InexactFloat64()})
		reasoning.Rows = append(reasoning.Rows, chart.Estimate{Name: names[i], Value: 100 * s.ReasoningShare})
	}
	view := struct {
		C                              *Comparison
		Check                          *Check
		Results                        []*Result
		ECDF, Pass, PerPass, Reasoning template.HTML
	}{c, ch, results, ecdf.HTML(), pass.HTML(), perPass.HTML(), reasoning.HTML()}
	var body bytes.Buffer
	if err := comparisonBody.Execute(&body, view); err != nil {
		return err
	}
	return chart.Page(w, fmt.Sprintf("brownout cost compare: %s against %s", c.Candidate.Model, c.Baseline.Model), template.HTML(body.String()))
}

var comparisonBody = template.Must(template.New("comparison").Funcs(template.FuncMap{
	"pct":     func(x float64) string { return fmt.Sprintf("%.1f%%", 100*x) },
	"points":  func(x float64) string { return fmt.Sprintf("%+.1f points", 100*x) },
	"latency": func(d time.Duration) string { return d.Round(time.Microsecond).String() },
}).Parse(`
<header>
<h1>Cost regression check: {{.C.Candidate.Model}} against {{.C.Baseline.Model}}
{{with .Check}}<span class="verdict {{if .Passed}}pass{{else}}fail{{end}}">{{if .Passed}}PASS{{else}}FAIL{{end}}</span>{{end}}</h1>
<p class="note">suite {{.C.Suite}}, {{.C.Baseline.Stats.N}} samples per model, seed {{.C.Baseline.Seed}}.</p>
<p><b>Verdict:</b> {{.C.Verdict}}</p>
{{with .Check}}<ul>{{range .Failures}}<li class="fail">✗ {{.}}</li>{{end}}
{{if .Passed}}<li class="pass">✓ The candidate costs at most {{.MaxCostRatio}}x the baseline per request, passes at most {{pct .MaxPassRateDrop}} less, and its pass rate is shown at or above {{pct .MinPassRate}}.</li>{{end}}</ul>{{end}}
</header>

<h2>Cost per request</h2>
{{.ECDF}}
<p class="note">A curve further left is cheaper; where the curves cross, one model is cheaper for some requests and dearer for others. Cost ratio, candidate over baseline: {{.C.CostRatio.Value.StringFixed 3}} (95% interval {{.C.CostRatio.Lo.StringFixed 3}} to {{.C.CostRatio.Hi.StringFixed 3}}).</p>

<h2>Quality and what it costs</h2>
{{.Pass}}
<p class="note">Pass rate difference, candidate minus baseline: {{points .C.PassRateDiff.Value}} (95% interval {{points .C.PassRateDiff.Lo}} to {{points .C.PassRateDiff.Hi}}, paired by case).</p>
{{.PerPass}}
{{.Reasoning}}

<h2>Both models</h2>
<div class="table"><table>
<thead><tr><th>model</th><th class="num">samples (errors)</th><th class="num">pass rate [95% CI]</th><th class="num">cost / request [95% CI]</th><th class="num">cost / passing answer [95% CI]</th><th class="num">reasoning share</th><th class="num">latency p50</th></tr></thead>
<tbody>{{range .Results}}<tr><td>{{.Model}}</td>{{with .Stats}}<td class="num">{{.N}} ({{.Errors}})</td>
<td class="num">{{pct .PassRate.Value}} [{{pct .PassRate.Lo}}, {{pct .PassRate.Hi}}]</td>
<td class="num">${{.CostPerRequest.Value.StringFixed 9}} [${{.CostPerRequest.Lo.StringFixed 9}}, ${{.CostPerRequest.Hi.StringFixed 9}}]</td>
<td class="num">${{.CostPerPass.Value.StringFixed 9}} [${{.CostPerPass.Lo.StringFixed 9}}, ${{.CostPerPass.Hi.StringFixed 9}}]</td>
<td class="num">{{pct .ReasoningShare}}</td><td class="num">{{latency .LatencyP50}}</td>{{end}}</tr>
{{end}}</tbody></table></div>
`))
