package chart

import (
	"bytes"
	"html/template"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brownout-dev/brownout/internal/browsertest"
)

func TestTicksAreRoundAndReadPlainly(t *testing.T) {
	for _, c := range []struct {
		axis   Axis
		lo, hi float64
		n      int
		want   []string
	}{
		{Axis{Suffix: "%"}, 0, 100, 5, []string{"0%", "20%", "40%", "60%", "80%", "100%"}},
		{Axis{Prefix: "$"}, 0, 0.0001, 5, []string{"$0.00000", "$0.00002", "$0.00004", "$0.00006", "$0.00008", "$0.00010"}},
		{Axis{}, -1, 1, 4, []string{"-1.0", "-0.5", "0.0", "0.5", "1.0"}}, // a zero, never -0
		{Axis{}, 0, 20, 8, []string{"0", "5", "10", "15", "20"}},          // a step of 2.5 rounds up to 5
	} {
		_, labels := ticks(c.axis, c.lo, c.hi, c.n)
		assert.Equal(t, c.want, labels, "%v..%v", c.lo, c.hi)
	}
}

func TestNumberHasFourSignificantDigitsInPlainDecimals(t *testing.T) {
	usd := Axis{Prefix: "$"}
	assert.Equal(t, "$0.00003058", usd.Number(3.0581234e-05))
	assert.Equal(t, "$0", usd.Number(0))
	assert.Equal(t, "99.72", Axis{}.Number(99.7249))
	assert.Equal(t, "1500", Axis{}.Number(1500.4))
	assert.Equal(t, "0.3", Axis{}.Number(0.1+0.2))
	assert.Equal(t, "-2.5%", Axis{Suffix: "%"}.Number(-2.5))
}

// TestChartsAreWellFormedAndHoldTheirSeries: every kind of chart, on a
// page, parses as HTML with well-formed SVG, nothing outside it, and one
// series group per series; names are escaped, not markup.
func TestChartsAreWellFormedAndHoldTheirSeries(t *testing.T) {
	hostile := `a</text><script>alert(1)</script>&"`
	minute := Axis{Label: "time (minutes)"}
	charts := []struct {
		id     string
		html   string
		series int
	}{
		{"lines", string(Lines{ID: "lines", Title: "t", X: minute, Y: Axis{Label: "ms"},
			Series: []Series{{Name: hostile, Points: []Point{{0, 1}, {1, 2}}}, {Name: "b", Step: true, Points: []Point{{0, 0}, {1, 3}}}},
			Rules:  []Rule{{Name: "limit", Y: 4}}}.HTML()), 2},
		{"stacked", string(Stacked{ID: "stacked", Title: "t", X: minute, Y: Axis{Max: 100}, At: []float64{0, 1}, Width: 1,
			Series: []Bars{{Name: "a", Values: []float64{40, 0}}, {Name: "b", Values: []float64{60, 100}}, {Name: hostile, Values: []float64{0, 0}}}}.HTML()), 3},
		{"bands", string(Bands{ID: "bands", Title: "t", X: minute, States: []string{"closed", "half_open", "open"},
			Rows: []Row{{Name: "a", Segments: []Segment{{0, 5, "closed"}, {5, 10, "open"}}}}}.HTML()), 1},
		{"estimates", string(Estimates{ID: "estimates", Title: "t", X: Axis{Suffix: "%", Max: 100},
			Rows: []Estimate{{Name: "a", Value: 50, Lo: 40, Hi: 60}, {Name: "b", Value: 70}}}.HTML()), 2},
	}
	var body strings.Builder
	want := map[string]int{}
	for _, c := range charts {
		body.WriteString(c.html)
		want[c.id] = c.series
	}
	var page bytes.Buffer
	require.NoError(t, Page(&page, "charts <&>", templateHTML(body.String())))
	got, err := browsertest.Parse(page.Bytes())
	require.NoError(t, err)
	assert.Equal(t, want, got)
	assert.NotContains(t, page.String(), "<script>")
	assert.Contains(t, page.String(), "a&lt;/text&gt;&lt;script&gt;")
}

// TestSeriesDifferWithoutColour: the first six series of a line chart have
// six dash patterns, and of a bar chart six fill textures, so a greyscale
// print still tells them apart.
func TestSeriesDifferWithoutColour(t *testing.T) {
	var lines []Series
	var bars []Bars
	for i := range 6 {
		name := string(rune('a' + i))
		lines = append(lines, Series{Name: name, Points: []Point{{0, 0}, {1, 1}}})
		bars = append(bars, Bars{Name: name, Values: []float64{1}})
	}
	l := string(Lines{ID: "l", X: Axis{}, Y: Axis{}, Series: lines}.HTML())
	dashesSeen := map[string]bool{}
	for _, m := range regexp.MustCompile(`class="series"[^>]*><path [^>]*stroke-dasharray="([^"]*)"`).FindAllStringSubmatch(l, -1) {
		dashesSeen[m[1]] = true
	}
	assert.Len(t, dashesSeen, 6, "dash patterns")

	s := string(Stacked{ID: "s", X: Axis{}, Y: Axis{}, At: []float64{0}, Width: 1, Series: bars}.HTML())
	textures := map[string]bool{}
	for _, m := range regexp.MustCompile(`<pattern id="s-p\d+"[^>]*><rect [^>]*/>(.*?)</pattern>`).FindAllStringSubmatch(s, -1) {
		textures[m[1]] = true
	}
	assert.Len(t, textures, 6, "fill textures")
}

func templateHTML(s string) template.HTML { return template.HTML(s) }
