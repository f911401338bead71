package fakeprovider

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/shopspring/decimal"
)

// The vendors' own accounts of what they billed, served as each vendor
// serves them and built from the fake's invoice: whatever the fake billed,
// whether or not the client ever saw it (FaultUnreportedUsage). The times
// are the wall clock's (virtual under synctest) when the line was billed,
// as a vendor buckets its usage by its own clock.
//
//	OpenAI     GET /v1/organization/usage/completions   token usage, 1m, 1h or 1d buckets
//	           GET /v1/organization/costs               cost, 1d buckets, by line item
//	Anthropic  GET /v1/organizations/usage_report/messages  token usage, 1m, 1h or 1d buckets
//	           GET /v1/organizations/cost_report        cost in cents, 1d buckets, by description
//	Gemini     GET /_fake/billing_export                a Cloud Billing export: JSON lines, one a day, model and SKU
//
// The admin endpoints take the admin key (Config.AdminKey when set, any
// key otherwise) as the vendor's API does; pages follow the vendors'
// has_more and next_page.

// usageTotals is what one model was billed in one bucket.
type usageTotals struct {
	requests                             int64
	input, cacheRead, cacheWrite, output int64 // output: reasoning included, as the vendors bill it
	charge                               charge
}

func (u *usageTotals) add(l InvoiceLine, c charge) {
	u.requests++
	u.input += l.InputTokens
	u.cacheRead += l.CacheReadTokens
	u.cacheWrite += l.CacheWriteTokens
	u.output += l.OutputTokens + l.ReasoningTokens
	u.charge = charge{u.charge.input.Add(c.input), u.charge.cacheRead.Add(c.cacheRead),
		u.charge.cacheWrite.Add(c.cacheWrite), u.charge.output.Add(c.output)}
}

// usageByModel sums the lines billed in [from, to) by model.
func (s *Server) usageByModel(from, to time.Time) map[string]*usageTotals {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]*usageTotals{}
	for i, l := range s.invoice {
		at := s.start.Add(l.At)
		if at.Before(from) || !at.Before(to) {
			continue
		}
		if out[l.Model] == nil {
			out[l.Model] = &usageTotals{}
		}
		out[l.Model].add(l, s.charges[i])
	}
	return out
}

// page is one page of buckets of a report query.
type page struct {
	starts []time.Time
	width  time.Duration
	next   string // "" on the last page
}

// bucketPage reads a report's window, bucket width and page, and returns
// the page's buckets: aligned to the width in UTC, from the page's start,
// at most limit of them, up to end (or now).
func bucketPage(start, end time.Time, width string, widths map[string][2]int, limitArg, pageArg string) (page, error) {
	limits, ok := widths[width]
	if !ok {
		return page{}, fmt.Errorf("bucket_width: %q is not one of %s", width, strings.Join(slices.Sorted(maps.Keys(widths)), ", "))
	}
	d := map[string]time.Duration{"1m": time.Minute, "1h": time.Hour, "1d": 24 * time.Hour}[width]
	limit := limits[0]
	if limitArg != "" {
		n, err := strconv.Atoi(limitArg)
		if err != nil || n < 1 || n > limits[1] {
			return page{}, fmt.Errorf("limit: %q is not a number from 1 to %d", limitArg, limits[1])
		}
		limit = n
	}
	from := start.UTC().Truncate(d)
	if pageArg != "" {
		b, err := base64.RawURLEncoding.DecodeString(pageArg)
		at, perr := strconv.ParseInt(string(b), 10, 64)
		if err != nil || perr != nil {
			return page{}, fmt.Errorf("page: %q is not a page token this API gave", pageArg)
		}
		from = time.Unix(at, 0).UTC()
	}
	if end.IsZero() {
		end = time.Now()
	}
	p := page{width: d}
	for t := from; t.Before(end); t = t.Add(d) {
		if len(p.starts) == limit {
			p.next = base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(t.Unix(), 10)))
			break
		}
		p.starts = append(p.starts, t)
	}
	return p, nil
}

var (
	usageWidths = map[string][2]int{"1m": {60, 1440}, "1h": {24, 168}, "1d": {7, 31}} // default and most buckets a page
	openaiCosts = map[string][2]int{"1d": {7, 180}}
	claudeCosts = map[string][2]int{"1d": {7, 31}}
)

// groupedBy reports whether a report query groups by dimension (group_by
// or group_by[], repeated or comma-separated).
func groupedBy(r *http.Request, dimension string) bool {
	q := r.URL.Query()
	for _, v := range append(q["group_by"], q["group_by[]"]...) {
		if slices.Contains(strings.Split(v, ","), dimension) {
			return true
		}
	}
	return false
}

// serveReport answers the vendor's usage and cost report endpoints; it
// reports whether the request was for one.
func (s *Server) serveReport(w http.ResponseWriter, r *http.Request) bool {
	route := r.Method + " " + r.URL.Path
	var serve func(http.ResponseWriter, *http.Request) error
	switch {
	case s.cfg.Vendor == OpenAI && route == "GET /v1/organization/usage/completions":
		serve = s.openaiUsage
	case s.cfg.Vendor == OpenAI && route == "GET /v1/organization/costs":
		serve = s.openaiCosts
	case s.cfg.Vendor == Anthropic && route == "GET /v1/organizations/usage_report/messages":
		serve = s.anthropicUsage
	case s.cfg.Vendor == Anthropic && route == "GET /v1/organizations/cost_report":
		serve = s.anthropicCosts
	default:
		return false
	}
	key := r.Header.Get("x-api-key")
	if s.cfg.Vendor == OpenAI {
		key = strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	}
	if key == "" || (s.cfg.AdminKey != "" && key != s.cfg.AdminKey) {
		writeJSON(w, http.StatusUnauthorized, s.reportError("authentication_error", "an admin API key is required for the usage and cost reports"))
		return true
	}
	if err := serve(w, r); err != nil {
		writeJSON(w, http.StatusBadRequest, s.reportError("invalid_request_error", err.Error()))
	}
	return true
}

func (s *Server) reportError(kind, msg string) any {
	if s.cfg.Vendor == Anthropic {
		return map[string]any{"type": "error", "error": map[string]string{"type": kind, "message": msg}}
	}
	return map[string]any{"error": map[string]any{"type": kind, "message": msg, "param": nil, "code": nil}}
}

// unixParam reads a Unix-seconds parameter; required or zero when absent.
func unixParam(r *http.Request, name string, required bool) (time.Time, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		if required {
			return time.Time{}, fmt.Errorf("%s: required (Unix seconds)", name)
		}
		return time.Time{}, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s: %q is not Unix seconds", name, v)
	}
	return time.Unix(n, 0).UTC(), nil
}

// rfc3339Param reads an RFC 3339 parameter; required or zero when absent.
func rfc3339Param(r *http.Request, name string, required bool) (time.Time, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		if required {
			return time.Time{}, fmt.Errorf("%s: required (RFC 3339)", name)
		}
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s: %q is not an RFC 3339 time", name, v)
	}
	return t.UTC(), nil
}

// money is an exact amount as a JSON number.
func money(d decimal.Decimal) json.Number { return json.Number(d.String()) }

// reportPage reads a report query: its window (the start and end
// parameters, read by param: Unix seconds for OpenAI, RFC 3339 for
// Anthropic), bucket width (default 1d), limit and page.
func reportPage(r *http.Request, startName, endName string, param func(*http.Request, string, bool) (time.Time, error), widths map[string][2]int) (page, error) {
	start, err := param(r, startName, true)
	if err != nil {
		return page{}, err
	}
	end, err := param(r, endName, false)
	if err != nil {
		return page{}, err
	}
	q := r.URL.Query()
	width := q.Get("bucket_width")
	if width == "" {
		width = "1d"
	}
	return bucketPage(start, end, width, widths, q.Get("limit"), q.Get("page"))
}

// writeBuckets answers a page of report buckets as the vendor does: each
// bucket's results (from results), its bounds (Unix seconds and object
// "bucket" for OpenAI, RFC 3339 for Anthropic), then has_more, next_page
// and OpenAI's object "page".
func writeBuckets(w http.ResponseWriter, p page, openai bool, results func(from, to time.Time) []map[string]any) error {
	data := []map[string]any{}
	for _, from := range p.starts {
		to := from.Add(p.width)
		b := map[string]any{"starting_at": from.Format(time.RFC3339), "ending_at": to.Format(time.RFC3339), "results": results(from, to)}
		if openai {
			b = map[string]any{"object": "bucket", "start_time": from.Unix(), "end_time": to.Unix(), "results": b["results"]}
		}
		data = append(data, b)
	}
	var next any
	if p.next != "" {
		next = p.next
	}
	out := map[string]any{"data": data, "has_more": p.next != "", "next_page": next}
	if openai {
		out["object"] = "page"
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// usageIn is usageByModel over [from, to), or all models summed under ""
// when the report is not grouped by model.
func (s *Server) usageIn(from, to time.Time, byModel bool) map[string]*usageTotals {
	usage := s.usageByModel(from, to)
	if byModel || len(usage) == 0 {
		return usage
	}
	all := &usageTotals{}
	for _, u := range usage {
		all.requests += u.requests
		all.input, all.cacheRead, all.cacheWrite, all.output = all.input+u.input, all.cacheRead+u.cacheRead, all.cacheWrite+u.cacheWrite, all.output+u.output
	}
	return map[string]*usageTotals{"": all}
}

// modelOrNull is a model's name, or JSON null for "" (not grouped by model).
func modelOrNull(m string) any {
	if m == "" {
		return nil
	}
	return m
}

// openaiUsage is GET /v1/organization/usage/completions.
func (s *Server) openaiUsage(w http.ResponseWriter, r *http.Request) error {
	p, err := reportPage(r, "start_time", "end_time", unixParam, usageWidths)
	if err != nil {
		return err
	}
	byModel := groupedBy(r, "model")
	return writeBuckets(w, p, true, func(from, to time.Time) []map[string]any {
		results := []map[string]any{}
		usage := s.usageIn(from, to, byModel)
		for _, m := range slices.Sorted(maps.Keys(usage)) {
			u := usage[m]
			results = append(results, map[string]any{
				"object": "organization.usage.completions.result", "input_tokens": u.input + u.cacheRead,
				"output_tokens": u.output, "input_cached_tokens": u.cacheRead, "input_audio_tokens": 0, "output_audio_tokens": 0,
				"num_model_requests": u.requests, "project_id": nil, "user_id": nil, "api_key_id": nil, "model": modelOrNull(m), "batch": nil,
			})
		}
		return results
	})
}

// openaiCosts is GET /v1/organization/costs: by line item, "<model>,
// input" (cached input included) and "<model>, output", when grouped so.
func (s *Server) openaiCosts(w http.ResponseWriter, r *http.Request) error {
	p, err := reportPage(r, "start_time", "end_time", unixParam, openaiCosts)
	if err != nil {
		return err
	}
	byItem := groupedBy(r, "line_item")
	result := func(item any, amount decimal.Decimal) map[string]any {
		return map[string]any{"object": "organization.costs.result", "amount": map[string]any{"value": money(amount), "currency": "usd"},
			"line_item": item, "project_id": nil}
	}
	return writeBuckets(w, p, true, func(from, to time.Time) []map[string]any {
		results := []map[string]any{}
		usage := s.usageByModel(from, to)
		total := decimal.Zero
		for _, m := range slices.Sorted(maps.Keys(usage)) {
			c := usage[m].charge
			total = total.Add(c.total())
			if byItem {
				results = append(results, result(m+", input", c.input.Add(c.cacheRead).Add(c.cacheWrite)), result(m+", output", c.output))
			}
		}
		if !byItem && len(usage) > 0 {
			results = append(results, result(nil, total))
		}
		return results
	})
}

// anthropicUsage is GET /v1/organizations/usage_report/messages. The fakes
// write no cache entries with a one-hour life: every cache write is a
// five-minute one.
func (s *Server) anthropicUsage(w http.ResponseWriter, r *http.Request) error {
	p, err := reportPage(r, "starting_at", "ending_at", rfc3339Param, usageWidths)
	if err != nil {
		return err
	}
	byModel := groupedBy(r, "model")
	return writeBuckets(w, p, false, func(from, to time.Time) []map[string]any {
		results := []map[string]any{}
		usage := s.usageIn(from, to, byModel)
		for _, m := range slices.Sorted(maps.Keys(usage)) {
			u := usage[m]
			results = append(results, map[string]any{
				"uncached_input_tokens": u.input, "cache_read_input_tokens": u.cacheRead, "output_tokens": u.output,
				"cache_creation":  map[string]any{"ephemeral_5m_input_tokens": u.cacheWrite, "ephemeral_1h_input_tokens": 0},
				"server_tool_use": map[string]any{"web_search_requests": 0},
				"api_key_id":      nil, "workspace_id": nil, "model": modelOrNull(m), "service_tier": nil, "context_window": nil,
			})
		}
		return results
	})
}

// anthropicCosts is GET /v1/organizations/cost_report: amounts in cents,
// as decimal strings; grouped by description, one item per model and kind
// of token.
func (s *Server) anthropicCosts(w http.ResponseWriter, r *http.Request) error {
	p, err := reportPage(r, "starting_at", "ending_at", rfc3339Param, claudeCosts)
	if err != nil {
		return err
	}
	byDescription := groupedBy(r, "description")
	item := func(model, tokenType, what string, usd decimal.Decimal) map[string]any {
		res := map[string]any{"currency": "USD", "amount": usd.Shift(2).String(), "workspace_id": nil,
			"description": nil, "cost_type": nil, "context_window": nil, "model": nil, "service_tier": nil, "token_type": nil}
		if model != "" {
			res["description"], res["cost_type"], res["model"], res["service_tier"], res["token_type"] =
				model+" Usage - "+what, "tokens", model, "standard", tokenType
		}
		return res
	}
	return writeBuckets(w, p, false, func(from, to time.Time) []map[string]any {
		results := []map[string]any{}
		usage := s.usageByModel(from, to)
		total := decimal.Zero
		for _, m := range slices.Sorted(maps.Keys(usage)) {
			c := usage[m].charge
			total = total.Add(c.total())
			if !byDescription {
				continue
			}
			for _, part := range []struct {
				tokenType, what string
				usd             decimal.Decimal
			}{
				{"uncached_input_tokens", "Input Tokens", c.input},
				{"cache_read_input_tokens", "Cache Read", c.cacheRead},
				{"cache_creation.ephemeral_5m_input_tokens", "Cache Write", c.cacheWrite},
				{"output_tokens", "Output Tokens", c.output},
			} {
				if !part.usd.IsZero() {
					results = append(results, item(m, part.tokenType, part.what, part.usd))
				}
			}
		}
		if !byDescription && len(usage) > 0 {
			results = append(results, item("", "", "", total))
		}
		return results
	})
}

// BillingExport writes what the fake billed in [from, to) as a Cloud
// Billing export does, one JSON object a line: per day, model and kind of
// token (a SKU), the usage in tokens and its cost. Google bills the Gemini
// API this way, with no usage API of its own; a SKU's description is the
// model's name and the kind ("Gemini 2.5 Flash Output Tokens", thinking
// included).
func (s *Server) BillingExport(from, to time.Time) []byte {
	var out []byte
	for day := from.UTC().Truncate(24 * time.Hour); day.Before(to); day = day.Add(24 * time.Hour) {
		usage := s.usageByModel(maxTime(day, from), minTime(day.Add(24*time.Hour), to))
		for _, m := range slices.Sorted(maps.Keys(usage)) {
			u := usage[m]
			for _, sku := range []struct {
				what   string
				tokens int64
				usd    decimal.Decimal
			}{
				{"Input Tokens", u.input, u.charge.input},
				{"Cached Input Tokens", u.cacheRead, u.charge.cacheRead},
				{"Output Tokens", u.output, u.charge.output},
			} {
				if sku.tokens == 0 {
					continue
				}
				name := displayName(m) + " " + sku.what
				row := map[string]any{
					"billing_account_id": "000000-FA4E00-000000",
					"service":            map[string]any{"id": "AEFD-7695-64FA", "description": "Gemini API"},
					"sku":                map[string]any{"id": skuID(name), "description": name},
					"usage_start_time":   day.Format(time.RFC3339), "usage_end_time": day.Add(24 * time.Hour).Format(time.RFC3339),
					"usage": map[string]any{"amount": sku.tokens, "unit": "count",
						"amount_in_pricing_units": money(decimal.NewFromInt(sku.tokens).Shift(-6)), "pricing_unit": "count * 10^6"},
					"cost": money(sku.usd), "currency": "USD", "cost_type": "regular",
				}
				b, _ := json.Marshal(row)
				out = append(append(out, b...), '\n')
			}
		}
	}
	return out
}

// displayName is a model's name as a SKU shows it: gemini-2.5-flash is
// "Gemini 2.5 Flash".
func displayName(model string) string {
	words := strings.Split(model, "-")
	for i, w := range words {
		if w != "" {
			words[i] = strings.ToUpper(w[:1]) + w[1:]
		}
	}
	return strings.Join(words, " ")
}

// skuID is a stable id for a SKU name, in the shape of Cloud Billing's.
func skuID(name string) string {
	var h uint32 = 2166136261
	for i := range len(name) {
		h = (h ^ uint32(name[i])) * 16777619
	}
	x := fmt.Sprintf("%012X", uint64(h)*40503)
	return x[:4] + "-" + x[4:8] + "-" + x[8:12]
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
