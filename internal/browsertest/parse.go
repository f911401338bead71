package browsertest

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"

	"golang.org/x/net/html"
)

// Parse checks a report page's structure without a browser and returns
// its charts' series counts by figure id. It fails when the HTML does not
// parse, a chart's SVG is not well-formed XML, the page has a script or
// refers to anything outside itself (a src or href that is not a fragment,
// a url() or @import in a style), or it has no viewport for phones.
func Parse(page []byte) (map[string]int, error) {
	doc, err := html.Parse(bytes.NewReader(page))
	if err != nil {
		return nil, fmt.Errorf("browsertest: the page does not parse: %w", err)
	}
	charts := map[string]int{}
	var problems []error
	svgs := 0
	viewport := false
	var walk func(n *html.Node, figure string)
	walk = func(n *html.Node, figure string) {
		if n.Type == html.ElementNode {
			switch n.Data {
			case "script":
				problems = append(problems, errors.New("a <script> element"))
			case "figure":
				figure = attr(n, "id")
			case "meta":
				if attr(n, "name") == "viewport" {
					viewport = true
				}
			case "style":
				if n.FirstChild != nil {
					problems = append(problems, externalCSS(n.FirstChild.Data)...)
				}
			case "svg":
				if strings.Contains(" "+attr(n, "class")+" ", " chart ") {
					svgs++
					charts[figure] += 0
				}
			case "g":
				if strings.Contains(" "+attr(n, "class")+" ", " series ") {
					charts[figure]++
				}
			}
			for _, a := range n.Attr {
				switch a.Key {
				case "src", "href", "xlink:href", "srcset", "poster", "action":
					if !strings.HasPrefix(a.Val, "#") {
						problems = append(problems, fmt.Errorf("<%s %s=%q> refers outside the page", n.Data, a.Key, a.Val))
					}
				case "style", "fill", "stroke":
					problems = append(problems, externalCSS(a.Val)...)
				}
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c, figure)
		}
	}
	walk(doc, "")
	// Each chart's source, as written (the HTML parser forgives what an
	// SVG file's reader would not), is well-formed XML.
	sources := chartSVG.FindAll(page, -1)
	if len(sources) != svgs {
		problems = append(problems, fmt.Errorf("%d charts in the document, %d found in its source", svgs, len(sources)))
	}
	for i, src := range sources {
		if err := wellFormed(src); err != nil {
			problems = append(problems, fmt.Errorf("chart %d: the SVG is not well-formed: %w", i+1, err))
		}
	}
	if !viewport {
		problems = append(problems, errors.New("no <meta name=viewport>: phones would show it zoomed out"))
	}
	if err := errors.Join(problems...); err != nil {
		return nil, fmt.Errorf("browsertest: %w", err)
	}
	return charts, nil
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

// A chart's SVG in a page's source: charts hold no other <svg>.
var chartSVG = regexp.MustCompile(`(?s)<svg class="chart".*?</svg>`)

// A url() that is not a fragment, or an @import.
var outside = regexp.MustCompile(`url\(\s*['"]?[^#'"\s)]|@import`)

func externalCSS(css string) []error {
	if m := outside.FindString(css); m != "" {
		return []error{fmt.Errorf("a style refers outside the page: %q", m)}
	}
	return nil
}

// wellFormed parses an SVG as strict XML.
func wellFormed(svg []byte) error {
	d := xml.NewDecoder(bytes.NewReader(svg))
	d.Strict = true
	for {
		_, err := d.Token()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}
