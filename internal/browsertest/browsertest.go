// Package browsertest loads the project's HTML reports in a real browser,
// headless Chromium driven through the DevTools protocol by chromedp, and
// returns what a reader would meet: console errors, requests the page
// made, each chart's box and series, whether the page overflows the
// screen's width, and a screenshot.
//
// The browser is Debian's chromium: BROWNOUT_CHROMIUM names another.
// `make test` installs it where it is missing. Under `go test -short` the
// tests that need it skip; in a full run, a missing browser fails the test
// with a message saying how to get one.
package browsertest

import (
	"bytes"
	"context"
	"fmt"
	"image/color"
	"image/png"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// Chart is one <figure> of a page with its <svg class="chart">, as laid out.
type Chart struct {
	ID     string  `json:"id"`
	Width  float64 `json:"width"`
	Height float64 `json:"height"`
	Series int     `json:"series"`
}

// Page is what loading a page at one viewport width showed.
type Page struct {
	Width int
	// Errors are console errors, uncaught exceptions and the browser's own
	// error log entries (a resource that failed to load, say).
	Errors []string
	// Requests are the URLs the page asked for other than itself.
	Requests []string
	Charts   map[string]Chart
	// Overflow is how many CSS pixels the page is wider than the screen.
	Overflow   float64
	Screenshot []byte // PNG of the viewport
}

// Browser is a headless Chromium for one test.
type Browser struct {
	ctx context.Context
}

// Path finds the browser: $BROWNOUT_CHROMIUM, else chromium (Debian's
// package), chromium-browser or google-chrome on the PATH.
func Path() (string, error) {
	if p := os.Getenv("BROWNOUT_CHROMIUM"); p != "" {
		return p, nil
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("no chromium on the PATH")
}

// New starts a browser that the test's cleanup stops. It skips the test
// under -short and fails it when no browser can be found.
func New(t *testing.T) *Browser {
	t.Helper()
	if testing.Short() {
		t.Skip("browsertest: needs Chromium; skipped under -short")
	}
	path, err := Path()
	if err != nil {
		t.Fatalf("browsertest: %v: run `make test`, which installs Debian's chromium, or set BROWNOUT_CHROMIUM to a Chromium or Chrome binary", err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.NoSandbox, // tests run as root in CI
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("hide-scrollbars", true),
	)
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(alloc)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	// Start the browser now, so a failure to start says so.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("browsertest: starting %s: %v", path, err)
	}
	return &Browser{ctx: ctx}
}

// chartsJS measures every chart of the page.
const chartsJS = `Array.from(document.querySelectorAll("figure")).filter(f => f.querySelector("svg.chart")).map(f => {
	const svg = f.querySelector("svg.chart"), box = svg.getBoundingClientRect();
	return {id: f.id, width: box.width, height: box.height, series: svg.querySelectorAll("g.series").length};
})`

// Load opens the file in a new tab of width x height CSS pixels and
// reports what it showed.
func (b *Browser) Load(t *testing.T, file string, width, height int) Page {
	t.Helper()
	abs, err := filepath.Abs(file)
	if err != nil {
		t.Fatal(err)
	}
	page := (&url.URL{Scheme: "file", Path: abs}).String()
	ctx, cancel := chromedp.NewContext(b.ctx)
	defer cancel()
	ctx, cancelTimeout := context.WithTimeout(ctx, 2*time.Minute)
	defer cancelTimeout()

	p := Page{Width: width, Charts: map[string]Chart{}}
	var mu sync.Mutex
	// The listener runs on the tab's reading goroutine: it only records.
	err = chromedp.Listen(ctx, func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch e := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			if e.Type == runtime.ConsoleAPICalledTypeError || e.Type == runtime.ConsoleAPICalledTypeAssert {
				var args []string
				for _, a := range e.Args {
					args = append(args, string(a.Value)+a.Description)
				}
				p.Errors = append(p.Errors, "console: "+strings.Join(args, " "))
			}
		case *runtime.EventExceptionThrown:
			p.Errors = append(p.Errors, "exception: "+e.ExceptionDetails.Text)
		case *cdplog.EventEntryAdded:
			if e.Entry.Level == cdplog.EntryLevelError {
				p.Errors = append(p.Errors, fmt.Sprintf("log (%s): %s %s", e.Entry.Source, e.Entry.Text, e.Entry.URL))
			}
		case *network.EventRequestWillBeSent:
			if e.Request.URL != page {
				p.Requests = append(p.Requests, e.Request.URL)
			}
		}
	})
	if err == nil {
		err = chromedp.Do(ctx, chromedp.EmulateViewport(int64(width), int64(height)), chromedp.Navigate(page))
	}
	var charts []Chart
	if err == nil {
		charts, err = chromedp.Run(ctx, chromedp.Evaluate[[]Chart](chartsJS))
	}
	if err == nil {
		p.Overflow, err = chromedp.Run(ctx, chromedp.Evaluate[float64](`document.documentElement.scrollWidth - window.innerWidth`))
	}
	if err == nil {
		p.Screenshot, err = chromedp.Run(ctx, chromedp.CaptureScreenshot())
	}
	if err != nil {
		t.Fatalf("browsertest: loading %s at %dpx: %v", file, width, err)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, c := range charts {
		p.Charts[c.ID] = c
	}
	p.Errors, p.Requests = slices.Clone(p.Errors), slices.Clone(p.Requests)
	return p
}

// Ink is the share of a PNG's pixels that are not the colour of its top-
// left corner (the page's background), and how many distinct colours it
// has: a blank or failed render has next to none of either.
func Ink(pngBytes []byte) (share float64, colours int, err error) {
	img, err := png.Decode(bytes.NewReader(pngBytes))
	if err != nil {
		return 0, 0, err
	}
	bounds := img.Bounds()
	bg := img.At(bounds.Min.X, bounds.Min.Y)
	seen := map[[4]uint32]bool{}
	var inked, all int
	for y := bounds.Min.Y; y < bounds.Max.Y; y++ {
		for x := bounds.Min.X; x < bounds.Max.X; x++ {
			c := img.At(x, y)
			r, g, b, a := c.RGBA()
			seen[[4]uint32{r, g, b, a}] = true
			all++
			if !sameColour(c, bg) {
				inked++
			}
		}
	}
	if all == 0 {
		return 0, 0, fmt.Errorf("browsertest: empty image")
	}
	return float64(inked) / float64(all), len(seen), nil
}

func sameColour(a, b color.Color) bool {
	r1, g1, b1, a1 := a.RGBA()
	r2, g2, b2, a2 := b.RGBA()
	return r1 == r2 && g1 == g2 && b1 == b2 && a1 == a2
}
