// Package chart draws the charts of brownout's HTML reports as inline SVG,
// and the page they sit in. A page is one self-contained file: no script,
// no font, stylesheet or image from elsewhere, so it reads offline and as
// a CI artifact. Every series differs from its neighbours by dash or fill
// pattern as well as by colour, so a chart survives greyscale printing;
// charts scale with the page's width, down to a phone's.
//
// Each chart is a <figure> holding one <svg class="chart">, in which each
// series is a <g class="series" data-name="...">: what was drawn can be
// counted, by tests and by anyone reading the page's source. The legend
// is HTML beside the SVG, so it stays legible when the chart is scaled
// down.
package chart

import (
	"fmt"
	"html"
	"html/template"
	"math"
	"strconv"
	"strings"
)

// The drawing area, in SVG user units: the viewBox is width x height, and
// the plot sits inside the margins (the axes' labels go in them).
const (
	width                                         = 640.0
	marginLeft, marginRight, marginTop, marginBot = 72.0, 16.0, 10.0, 44.0
)

// Axis is a chart's axis: its label (with the unit: "latency (ms)"), its
// range (Max <= Min means from the data) and what its numbers read with
// ("$" before, "%" after).
type Axis struct {
	Label          string
	Min, Max       float64
	Prefix, Suffix string
}

// Point is a point of a line.
type Point struct{ X, Y float64 }

// Series is a named line.
type Series struct {
	Name   string
	Points []Point
	// Step draws a step function (each value holds until the next point):
	// an empirical distribution function.
	Step bool
}

// Rule is a horizontal reference line, such as a budget's limit.
type Rule struct {
	Name string
	Y    float64
}

// palette: Okabe and Ito's colours, which colour-blind readers tell apart,
// ordered so that neighbours also differ in lightness; each has a dash and
// a fill pattern of its own for greyscale.
var palette = []string{"#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#000000"}
var dashes = []string{"", "7 4", "2 3", "10 3 2 3", "1 4", "12 5"}

func colour(i int) string { return palette[i%len(palette)] }
func dash(i int) string   { return dashes[i%len(dashes)] }

// frame is a plot area with its scales.
type frame struct {
	id             string
	height         float64
	x0, x1, y0, y1 float64 // data ranges
	left, right    float64 // pixel bounds
	top, bottom    float64
}

func newFrame(id string, height float64, x, y Axis, xs, ys []float64) frame {
	f := frame{id: id, height: height, left: marginLeft, right: width - marginRight, top: marginTop, bottom: height - marginBot}
	f.x0, f.x1 = bounds(x, xs)
	f.y0, f.y1 = bounds(y, ys)
	return f
}

// bounds is an axis's range: its own, or the data's widened to nice ends.
func bounds(a Axis, data []float64) (float64, float64) {
	if a.Max > a.Min {
		return a.Min, a.Max
	}
	lo, hi := a.Min, a.Min
	for _, v := range data {
		lo, hi = math.Min(lo, v), math.Max(hi, v)
	}
	if hi <= lo {
		hi = lo + 1
	}
	step := niceStep(hi-lo, 5)
	return math.Floor(lo/step) * step, math.Ceil(hi/step) * step
}

func (f frame) px(x float64) float64 {
	return f.left + (x-f.x0)/(f.x1-f.x0)*(f.right-f.left)
}

func (f frame) py(y float64) float64 {
	return f.bottom - (y-f.y0)/(f.y1-f.y0)*(f.bottom-f.top)
}

// niceStep is a round step (1, 2 or 5 times a power of ten) that cuts span
// into about n parts.
func niceStep(span float64, n int) float64 {
	raw := span / float64(n)
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if raw <= m*mag {
			return m * mag
		}
	}
	return 10 * mag
}

// ticks are the round values in [lo, hi], about n of them, with their
// labels: as many decimals as the step needs, and a zero that reads 0.
func ticks(a Axis, lo, hi float64, n int) ([]float64, []string) {
	step := niceStep(hi-lo, n)
	decimals := max(0, int(-math.Floor(math.Log10(step)+1e-9)))
	var vs []float64
	var labels []string
	for i := math.Ceil(lo/step - 1e-9); i*step <= hi+step*1e-9; i++ {
		v := i * step
		if i == 0 {
			v = 0
		}
		vs = append(vs, v)
		labels = append(labels, a.Prefix+strconv.FormatFloat(v, 'f', decimals, 64)+a.Suffix)
	}
	return vs, labels
}

// Number formats a value for a reader, to 4 significant digits and in
// plain decimals (0.00003058, not 3.058e-05), with the axis's prefix and
// suffix.
func (a Axis) Number(v float64) string {
	s := "0"
	if v != 0 && !math.IsNaN(v) && !math.IsInf(v, 0) {
		decimals := max(0, 3-int(math.Floor(math.Log10(math.Abs(v)))))
		s = strconv.FormatFloat(v, 'f', decimals, 64)
		if strings.Contains(s, ".") {
			s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
		}
	}
	return a.Prefix + s + a.Suffix
}

// svg writes the chart's opening: the viewBox, its accessible title and
// description, and the fill patterns its series use.
func (f frame) open(b *strings.Builder, title, desc string, patterns int) {
	fmt.Fprintf(b, `<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %g %g" role="img" aria-labelledby="%s-t %s-d">`,
		width, f.height, f.id, f.id)
	fmt.Fprintf(b, `<title id="%s-t">%s</title><desc id="%s-d">%s</desc>`, f.id, esc(title), f.id, esc(desc))
	if patterns > 0 {
		b.WriteString("<defs>")
		for i := range patterns {
			b.WriteString(pattern(f.id, i))
		}
		b.WriteString("</defs>")
	}
}

// pattern is series i's fill: its colour under a texture of its own.
func pattern(id string, i int) string {
	textures := []string{
		``,
		`<path d="M0 6 L6 0" stroke="#000" stroke-opacity=".55" stroke-width="1.2"/>`,
		`<circle cx="3" cy="3" r="1.1" fill="#000" fill-opacity=".55"/>`,
		`<path d="M0 6 L6 0 M0 0 L6 6" stroke="#000" stroke-opacity=".5" stroke-width=".9"/>`,
		`<path d="M0 3 H6" stroke="#000" stroke-opacity=".55" stroke-width="1.2"/>`,
		`<path d="M3 0 V6" stroke="#000" stroke-opacity=".55" stroke-width="1.2"/>`,
	}
	return fmt.Sprintf(`<pattern id="%s-p%d" width="6" height="6" patternUnits="userSpaceOnUse"><rect width="6" height="6" fill="%s"/>%s</pattern>`,
		id, i, colour(i), textures[i%len(textures)])
}

func fill(id string, i int) string { return fmt.Sprintf("url(#%s-p%d)", id, i) }

// axes draws the grid, the ticks and the labels of both axes.
func (f frame) axes(b *strings.Builder, x, y Axis) {
	b.WriteString(`<g class="axes">`)
	vs, labels := ticks(y, f.y0, f.y1, 5)
	for i, v := range vs {
		p := f.py(v)
		fmt.Fprintf(b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" class="grid"/>`, f.left, f.right, p, p)
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="end" dominant-baseline="middle">%s</text>`, f.left-6, p, esc(labels[i]))
	}
	f.xTicks(b, x, 8, false)
	fmt.Fprintf(b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" class="axis"/>`, f.left, f.right, f.bottom, f.bottom)
	fmt.Fprintf(b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" class="axis"/>`, f.left, f.left, f.top, f.bottom)
	fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="middle" class="label">%s</text>`, (f.left+f.right)/2, f.height-6, esc(x.Label))
	fmt.Fprintf(b, `<text transform="translate(14 %.1f) rotate(-90)" text-anchor="middle" class="label">%s</text>`, (f.top+f.bottom)/2, esc(y.Label))
	b.WriteString(`</g>`)
}

// xTicks draws the x axis's ticks and their labels, with grid lines up
// the plot when grid is set, and the axis's label under them.
func (f frame) xTicks(b *strings.Builder, x Axis, n int, grid bool) {
	vs, labels := ticks(x, f.x0, f.x1, n)
	for i, v := range vs {
		p := f.px(v)
		from, class := f.bottom, "tick"
		if grid {
			from, class = f.top, "grid"
		}
		fmt.Fprintf(b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" class="%s"/>`, p, p, from, f.bottom+4, class)
		anchor := "middle" // the last label ends at its tick, inside the chart
		if i == len(vs)-1 && f.right-p < 20 {
			anchor = "end"
		}
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="%s">%s</text>`, p, f.bottom+17, anchor, esc(labels[i]))
	}
	if grid {
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="middle" class="label">%s</text>`, (f.left+f.right)/2, f.height-6, esc(x.Label))
	}
}

// item is one entry of a legend.
type item struct {
	name   string
	swatch string // SVG content of a 28x12 swatch
}

func lineItem(name string, i int) item {
	return item{name, fmt.Sprintf(`<line x1="1" x2="27" y1="6" y2="6" stroke="%s" stroke-width="2.5" stroke-dasharray="%s"/>`, colour(i), dash(i))}
}

func fillItem(id, name string, i int) item {
	return item{name, fmt.Sprintf(`<rect x="1" y="1" width="26" height="10" fill="%s" stroke="#333" stroke-width=".5"/>`, fill(id, i))}
}

// figure wraps an SVG and its legend.
func figure(id, title, svg string, legend []item) template.HTML {
	var b strings.Builder
	fmt.Fprintf(&b, `<figure id="%s"><figcaption>%s</figcaption><div class="plot">%s</div>`, id, esc(title), svg)
	if len(legend) > 0 {
		b.WriteString(`<ul class="legend">`)
		for _, it := range legend {
			fmt.Fprintf(&b, `<li><svg class="swatch" viewBox="0 0 28 12" width="28" height="12" aria-hidden="true">%s</svg>%s</li>`, it.swatch, esc(it.name))
		}
		b.WriteString(`</ul>`)
	}
	b.WriteString(`</figure>`)
	return template.HTML(b.String())
}

func esc(s string) string { return html.EscapeString(s) }

// Lines is a line chart over a shared x axis, with optional horizontal
// rules (limits).
type Lines struct {
	ID, Title, Desc string
	X, Y            Axis
	Series          []Series
	Rules           []Rule
	Height          float64 // default 260
}

// HTML draws the chart.
func (c Lines) HTML() template.HTML {
	var xs, ys []float64
	for _, s := range c.Series {
		for _, p := range s.Points {
			xs, ys = append(xs, p.X), append(ys, p.Y)
		}
	}
	for _, r := range c.Rules {
		ys = append(ys, r.Y)
	}
	f := newFrame(c.ID, orDefault(c.Height, 260), c.X, c.Y, xs, ys)
	var b strings.Builder
	f.open(&b, c.Title, c.Desc, 0)
	f.axes(&b, c.X, c.Y)
	var legend []item
	for i, s := range c.Series {
		var d strings.Builder
		for j, p := range s.Points {
			switch {
			case j == 0:
				fmt.Fprintf(&d, "M%.1f %.1f", f.px(p.X), f.py(p.Y))
			case s.Step:
				fmt.Fprintf(&d, " H%.1f V%.1f", f.px(p.X), f.py(p.Y))
			default:
				fmt.Fprintf(&d, " L%.1f %.1f", f.px(p.X), f.py(p.Y))
			}
		}
		fmt.Fprintf(&b, `<g class="series" data-name="%s"><path d="%s" fill="none" stroke="%s" stroke-width="2" stroke-dasharray="%s"/></g>`,
			esc(s.Name), d.String(), colour(i), dash(i))
		legend = append(legend, lineItem(s.Name, i))
	}
	for _, r := range c.Rules {
		p := f.py(r.Y)
		fmt.Fprintf(&b, `<g class="rule" data-name="%s"><line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#000" stroke-width="1.5" stroke-dasharray="4 2 1 2"/>`,
			esc(r.Name), f.left, f.right, p, p)
		at := p - 5 // above the rule, or below it at the top of the chart
		if at < f.top+12 {
			at = p + 15
		}
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="end">%s</text></g>`, f.right-4, at, esc(r.Name))
	}
	b.WriteString(`</svg>`)
	return figure(c.ID, c.Title, b.String(), legend)
}

// Stacked is a bar chart of stacked series: at each x, one bar made of
// every series' value there.
type Stacked struct {
	ID, Title, Desc string
	X, Y            Axis
	At              []float64 // the bars' x positions (their left edges)
	Width           float64   // a bar's width in x units
	Series          []Bars
	Height          float64 // default 260
}

// Bars are one series' values, one for each position in At.
type Bars struct {
	Name   string
	Values []float64
}

// HTML draws the chart.
func (c Stacked) HTML() template.HTML {
	xs := []float64{}
	ys := []float64{0}
	for i, x := range c.At {
		xs = append(xs, x, x+c.Width)
		var top float64
		for _, s := range c.Series {
			top += s.Values[i]
		}
		ys = append(ys, top)
	}
	f := newFrame(c.ID, orDefault(c.Height, 260), c.X, c.Y, xs, ys)
	var b strings.Builder
	f.open(&b, c.Title, c.Desc, len(c.Series))
	f.axes(&b, c.X, c.Y)
	base := make([]float64, len(c.At))
	var legend []item
	for i, s := range c.Series {
		fmt.Fprintf(&b, `<g class="series" data-name="%s" fill="%s">`, esc(s.Name), fill(c.ID, i))
		for j, x := range c.At {
			v := s.Values[j]
			if v <= 0 {
				continue
			}
			top, bot := f.py(base[j]+v), f.py(base[j])
			fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f"><title>%s at %s: %s</title></rect>`,
				f.px(x+c.Width*0.06), top, f.px(x+c.Width*0.94)-f.px(x+c.Width*0.06), bot-top, esc(s.Name), esc(c.X.Number(x)), esc(c.Y.Number(v)))
			base[j] += v
		}
		b.WriteString(`</g>`)
		legend = append(legend, fillItem(c.ID, s.Name, i))
	}
	b.WriteString(`</svg>`)
	return figure(c.ID, c.Title, b.String(), legend)
}

// Bands is a row per series of segments over the x axis, each in one of a
// few states (a circuit breaker's closed, half-open, open).
type Bands struct {
	ID, Title, Desc string
	X               Axis
	States          []string // in the order of their fills: the first lightest
	Rows            []Row
}

// Row is one series of Bands.
type Row struct {
	Name     string
	Segments []Segment
}

// Segment is a stretch of a row in one state.
type Segment struct {
	From, To float64
	State    string
}

// HTML draws the chart.
func (c Bands) HTML() template.HTML {
	const rowHeight = 26.0
	height := marginTop + marginBot + rowHeight*float64(max(len(c.Rows), 1))
	xs := []float64{}
	for _, r := range c.Rows {
		for _, s := range r.Segments {
			xs = append(xs, s.From, s.To)
		}
	}
	f := newFrame(c.ID, height, c.X, Axis{Min: 0, Max: 1}, xs, nil)
	var b strings.Builder
	f.open(&b, c.Title, c.Desc, 0)
	// The states' fills: light, hatched, dark, so that greyscale keeps them.
	fills := []string{"#dcefd6", fmt.Sprintf("url(#%s-h)", c.ID), "#8c1b1b", "#555"}
	fmt.Fprintf(&b, `<defs><pattern id="%s-h" width="6" height="6" patternUnits="userSpaceOnUse"><rect width="6" height="6" fill="#f2c14e"/><path d="M0 6 L6 0" stroke="#000" stroke-opacity=".6" stroke-width="1.4"/></pattern></defs>`, c.ID)
	stateFill := func(s string) string {
		for i, name := range c.States {
			if name == s {
				return fills[min(i, len(fills)-1)]
			}
		}
		return fills[len(fills)-1]
	}
	b.WriteString(`<g class="axes">`)
	f.xTicks(&b, c.X, 8, true)
	b.WriteString(`</g>`)
	for i, r := range c.Rows {
		y := f.top + float64(i)*rowHeight
		fmt.Fprintf(&b, `<g class="series" data-name="%s"><text x="%.1f" y="%.1f" text-anchor="end" dominant-baseline="middle">%s</text>`,
			esc(r.Name), f.left-6, y+rowHeight/2, esc(r.Name))
		for _, s := range r.Segments {
			fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s" stroke="#333" stroke-width=".4"><title>%s: %s from %s to %s</title></rect>`,
				f.px(s.From), y+3, math.Max(f.px(s.To)-f.px(s.From), 0.8), rowHeight-6, stateFill(s.State),
				esc(r.Name), esc(s.State), esc(c.X.Number(s.From)), esc(c.X.Number(s.To)))
		}
		b.WriteString(`</g>`)
	}
	b.WriteString(`</svg>`)
	var legend []item
	for _, s := range c.States {
		legend = append(legend, item{s, fmt.Sprintf(`<rect x="1" y="1" width="26" height="10" fill="%s" stroke="#333" stroke-width=".5"/>`, stateFill(s))})
	}
	// The legend's swatches refer to the hatch defined in the chart.
	return figure(c.ID, c.Title, b.String(), legend)
}

// Estimates is a row per series: a value with its interval (a dot and a
// whisker), or a bar from zero when Bars is set.
type Estimates struct {
	ID, Title, Desc string
	X               Axis
	Rows            []Estimate
	Bars            bool
}

// Estimate is one row of Estimates; Lo and Hi are ignored when equal.
type Estimate struct {
	Name          string
	Value, Lo, Hi float64
}

// HTML draws the chart.
func (c Estimates) HTML() template.HTML {
	const rowHeight = 46.0 // the row's name above its mark
	height := marginTop + marginBot + rowHeight*float64(max(len(c.Rows), 1))
	xs := []float64{0}
	for _, r := range c.Rows {
		xs = append(xs, r.Value, r.Lo, r.Hi)
	}
	f := newFrame(c.ID, height, c.X, Axis{Min: 0, Max: 1}, xs, nil)
	var b strings.Builder
	f.open(&b, c.Title, c.Desc, len(c.Rows))
	b.WriteString(`<g class="axes">`)
	f.xTicks(&b, c.X, 6, true)
	b.WriteString(`</g>`)
	for i, r := range c.Rows {
		y := f.top + float64(i)*rowHeight + 30
		label := c.X.Number(r.Value)
		if r.Hi > r.Lo {
			label = fmt.Sprintf("%s [%s, %s]", label, c.X.Number(r.Lo), c.X.Number(r.Hi))
		}
		fmt.Fprintf(&b, `<g class="series" data-name="%s"><title>%s: %s</title><text x="%.1f" y="%.1f">%s: %s</text>`,
			esc(r.Name), esc(r.Name), esc(label), f.left, y-14, esc(r.Name), esc(label))
		if c.Bars {
			fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="16" fill="%s" stroke="#333" stroke-width=".5"/>`,
				f.px(0), y-8, math.Max(f.px(r.Value)-f.px(0), 0.8), fill(c.ID, i))
		}
		if r.Hi > r.Lo {
			fmt.Fprintf(&b, `<path d="M%.1f %.1f V%.1f M%.1f %.1f H%.1f M%.1f %.1f V%.1f" stroke="#222" stroke-width="1.6" fill="none"/>`,
				f.px(r.Lo), y-6, y+6, f.px(r.Lo), y, f.px(r.Hi), f.px(r.Hi), y-6, y+6)
		}
		if !c.Bars {
			fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="5" fill="%s" stroke="#000" stroke-width="1"/>`, f.px(r.Value), y, fill(c.ID, i))
		}
		b.WriteString(`</g>`)
	}
	b.WriteString(`</svg>`)
	var legend []item
	if !c.Bars {
		legend = append(legend, item{"95% interval", `<path d="M3 2 V10 M3 6 H25 M25 2 V10" stroke="#222" stroke-width="1.6" fill="none"/>`})
	}
	return figure(c.ID, c.Title, b.String(), legend)
}

func orDefault(v, d float64) float64 {
	if v > 0 {
		return v
	}
	return d
}
