package chart

import (
	"html/template"
	"io"
)

// Page writes a self-contained HTML page: title, the body (made by the
// caller's own template, charts included) and the stylesheet every report
// shares. Nothing on it is fetched from elsewhere.
func Page(w io.Writer, title string, body template.HTML) error {
	return page.Execute(w, struct {
		Title string
		Body  template.HTML
	}{title, body})
}

var page = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="brownout">
<title>{{.Title}}</title>
<style>
:root { color-scheme: light; --ink: #1a1a1a; --muted: #555; --rule: #d0d0d0; --pass: #0b6b2e; --fail: #a11a1a; }
* { box-sizing: border-box; }
body { margin: 0 auto; max-width: 1040px; padding: 16px; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Liberation Sans", sans-serif; color: var(--ink); background: #fff; }
h1 { font-size: 1.45rem; margin: .2em 0 .4em; overflow-wrap: anywhere; }
h2 { font-size: 1.15rem; margin: 1.6em 0 .5em; border-bottom: 1px solid var(--rule); padding-bottom: .2em; }
p, li { overflow-wrap: anywhere; }
.verdict { display: inline-block; font-weight: 700; padding: .1em .5em; border: 2px solid; border-radius: 4px; }
.pass { color: var(--pass); }
.fail { color: var(--fail); }
.facts { display: grid; grid-template-columns: repeat(auto-fit, minmax(150px, 1fr)); gap: 8px; margin: 12px 0; padding: 0; list-style: none; }
.facts li { border: 1px solid var(--rule); border-radius: 4px; padding: 6px 10px; }
.facts b { display: block; font-size: 1.1rem; }
.facts span { color: var(--muted); font-size: .85rem; }
figure { margin: 18px 0; }
figcaption { font-weight: 600; margin-bottom: 4px; }
.plot { overflow-x: auto; }
svg.chart { display: block; width: 100%; max-width: 860px; min-width: 440px; height: auto; font: 12px system-ui, -apple-system, "Segoe UI", Roboto, "Liberation Sans", sans-serif; fill: var(--ink); }
svg.chart .grid { stroke: #e4e4e4; stroke-width: 1; }
svg.chart .tick, svg.chart .axis { stroke: #333; stroke-width: 1; }
svg.chart .label { font-size: 12.5px; fill: var(--muted); }
ul.legend { display: flex; flex-wrap: wrap; gap: 4px 16px; margin: 6px 0 0; padding: 0; list-style: none; font-size: .9rem; }
ul.legend li { display: flex; align-items: center; gap: 6px; }
.table { overflow-x: auto; }
table { border-collapse: collapse; font-variant-numeric: tabular-nums; min-width: 100%; }
td:first-child { white-space: nowrap; }
th, td { text-align: left; padding: 4px 10px 4px 0; border-bottom: 1px solid var(--rule); vertical-align: top; }
td.num, th.num { text-align: right; }
th { font-weight: 600; }
.note { color: var(--muted); font-size: .9rem; }
footer { margin-top: 2em; color: var(--muted); font-size: .85rem; }
@media print { body { max-width: none; } .plot { overflow: visible; } svg.chart { min-width: 0; } figure, table { break-inside: avoid; } }
</style>
</head>
<body>
{{.Body}}
<footer>Made by brownout. This page is self-contained: it runs no script and loads nothing from elsewhere.</footer>
</body>
</html>
`))
