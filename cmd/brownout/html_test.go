package main

import (
	"context"
	"flag"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brownout-dev/brownout/evals"
	"github.com/brownout-dev/brownout/internal/browsertest"
	"github.com/brownout-dev/brownout/scenarios"
)

// screenshots is where `make screenshots` has the browser test write the
// README's pictures (docs/).
var screenshots = flag.String("screenshots", "", "write the HTML reports' screenshots at 1280px to this directory")

// TestHTMLReportsInChromium: the pages `brownout replay --html` and
// `brownout cost compare --html` write are shown by a real browser, headless
// Chromium, as intended, on a desktop and on a phone-width screen: no
// console error, no request for anything outside the file, no page wider
// than the screen, every chart laid out with a non-zero box and the series
// the scenario or the comparison has (counted from their definitions, not
// from the page), and a screenshot with something on it.
func TestHTMLReportsInChromium(t *testing.T) {
	browser := browsertest.New(t)
	dir := t.TempDir()
	ctx := context.Background()

	replay := filepath.Join(dir, "replay.html")
	require.NoError(t, run(ctx, []string{"replay", "gemini-outage", "--html", replay}, io.Discard, io.Discard))
	sc, err := scenarios.LoadLibrary("gemini-outage")
	require.NoError(t, err)
	providers := len(sc.Providers)

	// The README's cost check, which fails at 2x: the thinking tax.
	compare := filepath.Join(dir, "compare.html")
	err = run(ctx, []string{"cost", "compare", "--suite", "../../evals/suites/capitals.yaml", "--baseline", "anthropic/claude-haiku-4-5",
		"--candidate", "gemini/gemini-2.5-flash", "--max-cost-ratio", "2", "--html", compare}, io.Discard, io.Discard)
	require.ErrorIs(t, err, errCheckFailed)

	pages := []struct {
		file, screenshot string
		charts           map[string]int // id: series
	}{
		{replay, "replay-gemini-outage.png", map[string]int{
			scenarios.ChartBreakers: providers, scenarios.ChartTraffic: providers,
			scenarios.ChartLatency: 2, scenarios.ChartCost: 1, // no budget in gemini-outage
		}},
		{compare, "cost-compare.png", map[string]int{
			evals.ChartCostECDF: 2, evals.ChartPassRate: 2, evals.ChartCostPerPass: 2, evals.ChartReasoning: 2,
		}},
	}
	for _, pg := range pages {
		for _, screen := range []struct{ width, height int }{{1280, 1500}, {390, 844}} {
			p := browser.Load(t, pg.file, screen.width, screen.height)
			name := filepath.Base(pg.file)
			assert.Empty(t, p.Errors, "%s at %dpx: console errors", name, screen.width)
			assert.Empty(t, p.Requests, "%s at %dpx: a self-contained page fetches nothing", name, screen.width)
			assert.LessOrEqual(t, p.Overflow, 0.0, "%s at %dpx: the page is wider than the screen", name, screen.width)
			assert.Len(t, p.Charts, len(pg.charts), "%s at %dpx: charts %v", name, screen.width, p.Charts)
			for id, series := range pg.charts {
				c, ok := p.Charts[id]
				if !assert.True(t, ok, "%s at %dpx: no chart %q", name, screen.width, id) {
					continue
				}
				assert.Positive(t, c.Width, "%s at %dpx: chart %q", name, screen.width, id)
				assert.Positive(t, c.Height, "%s at %dpx: chart %q", name, screen.width, id)
				assert.Equal(t, series, c.Series, "%s at %dpx: series of chart %q", name, screen.width, id)
			}
			ink, colours, err := browsertest.Ink(p.Screenshot)
			require.NoError(t, err)
			assert.Greater(t, ink, 0.03, "%s at %dpx: the screenshot is next to blank", name, screen.width)
			assert.Greater(t, colours, 16, "%s at %dpx: the screenshot has next to no colours", name, screen.width)
			if *screenshots != "" && screen.width == 1280 {
				require.NoError(t, os.WriteFile(filepath.Join(*screenshots, pg.screenshot), p.Screenshot, 0o644))
			}
		}
	}
}
