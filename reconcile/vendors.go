package reconcile

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/shopspring/decimal"
)

// ErrMalformed is in the chain of every error about a report that does not
// read as the vendor's format: bad input, not a failure to reach the vendor.
var ErrMalformed = errors.New("the report is not in the vendor's format")

// malformed wraps an error about a report's content in ErrMalformed.
func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

// maxPages bounds the pages read of one report: a vendor that always says
// has_more would otherwise hold the command forever.
const maxPages = 1000

// admin is a vendor's admin API: its base URL (the host root, as in the
// gateway's config), its admin key and the HTTP client to reach it.
type admin struct {
	BaseURL  string
	AdminKey string
	Client   *http.Client
}

// get fetches one page of a report into v. The key is sent, never shown:
// an error names the path and the status, and quotes the vendor's message.
func (a admin) get(ctx context.Context, path string, q url.Values, header http.Header, v any) error {
	u := strings.TrimRight(a.BaseURL, "/") + path + "?" + q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("reconcile: %s: %w", path, err)
	}
	req.Header = header
	client := a.Client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("reconcile: %s: %w", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("reconcile: %s: reading the report: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("reconcile: %s: the vendor answered %d: %s", path, resp.StatusCode, vendorMessage(body))
	}
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("reconcile: %s: %w", path, malformed("%v", err))
	}
	return nil
}

// vendorMessage is the message of a vendor's error body, clipped.
func vendorMessage(body []byte) string {
	var e struct {
		Error struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	msg := strings.TrimSpace(string(body))
	if json.Unmarshal(body, &e) == nil && e.Error.Message != "" {
		msg = e.Error.Message
	}
	if len(msg) > 300 {
		msg = msg[:300] + "..."
	}
	return msg
}

// pages reads a report page by page until the vendor says there is no
// more; next returns the next page's token and whether there is one.
func pages(ctx context.Context, fetch func(page string) (next string, more bool, err error)) error {
	page := ""
	for range maxPages {
		next, more, err := fetch(page)
		if err != nil || !more {
			return err
		}
		if next == "" || next == page {
			return malformed("the vendor says there is more but gives no new page token")
		}
		page = next
	}
	return fmt.Errorf("reconcile: more than %d pages; ask for a shorter window", maxPages)
}

// count reads a token count, which a vendor sends as a JSON number (or
// null: none).
func count(n json.Number) (int64, error) {
	if n == "" {
		return 0, nil
	}
	v, err := n.Int64()
	if err != nil || v < 0 {
		return 0, fmt.Errorf("a token count %q is not a non-negative integer", n)
	}
	return v, nil
}

// OpenAI reads the organisation's Usage API (completions, grouped by model)
// and Costs API (grouped by line item, "<model>, input" and
// "<model>, output"), both in daily buckets.
type OpenAI admin

// NewOpenAI is OpenAI's admin API at baseURL (https://api.openai.com when
// empty) with an admin key.
func NewOpenAI(baseURL, adminKey string, client *http.Client) *OpenAI {
	if baseURL == "" {
		baseURL = "https://api.openai.com"
	}
	return &OpenAI{BaseURL: baseURL, AdminKey: adminKey, Client: client}
}

type openaiPage struct {
	Data []struct {
		StartTime json.Number    `json:"start_time"`
		Results   []openaiResult `json:"results"`
	} `json:"data"`
	HasMore  bool    `json:"has_more"`
	NextPage *string `json:"next_page"`
}

// openaiResult is a usage result or a cost result.
type openaiResult struct {
	Model        *string     `json:"model"`
	LineItem     *string     `json:"line_item"`
	InputTokens  json.Number `json:"input_tokens"`
	CachedTokens json.Number `json:"input_cached_tokens"`
	OutputTokens json.Number `json:"output_tokens"`
	Amount       *struct {
		Value    json.Number `json:"value"`
		Currency string      `json:"currency"`
	} `json:"amount"`
}

// Bill implements Source.
func (o *OpenAI) Bill(ctx context.Context, from, to time.Time) (Bill, error) {
	bill := Bill{}
	header := http.Header{"Authorization": {"Bearer " + o.AdminKey}}
	read := func(path, groupBy string, limit int, each func(day time.Time, r openaiResult) error) error {
		return pages(ctx, func(page string) (string, bool, error) {
			q := url.Values{"start_time": {strconv.FormatInt(from.Unix(), 10)}, "end_time": {strconv.FormatInt(to.Unix(), 10)},
				"bucket_width": {"1d"}, "group_by": {groupBy}, "limit": {strconv.Itoa(limit)}}
			if page != "" {
				q.Set("page", page)
			}
			var p openaiPage
			if err := admin(*o).get(ctx, path, q, header, &p); err != nil {
				return "", false, err
			}
			for _, b := range p.Data {
				sec, err := b.StartTime.Int64()
				if err != nil {
					return "", false, fmt.Errorf("reconcile: %s: %w", path, malformed("a bucket's start_time %q is not Unix seconds", b.StartTime))
				}
				day := time.Unix(sec, 0).UTC().Truncate(Day)
				for _, r := range b.Results {
					if err := each(day, r); err != nil {
						return "", false, fmt.Errorf("reconcile: %s: %w", path, malformed("%v", err))
					}
				}
			}
			return deref(p.NextPage), p.HasMore, nil
		})
	}
	err := read("/v1/organization/usage/completions", "model", 31, func(day time.Time, r openaiResult) error {
		in, err1 := count(r.InputTokens)
		cached, err2 := count(r.CachedTokens)
		out, err3 := count(r.OutputTokens)
		if err := errors.Join(err1, err2, err3); err != nil {
			return err
		}
		if cached > in {
			return fmt.Errorf("input_cached_tokens %d is more than input_tokens %d", cached, in)
		}
		bill.add(Key{Day: day, Model: deref(r.Model)}, Usage{Input: in - cached, CacheRead: cached, Output: out})
		return nil
	})
	if err != nil {
		return nil, err
	}
	err = read("/v1/organization/costs", "line_item", 180, func(day time.Time, r openaiResult) error {
		if r.Amount == nil {
			return errors.New("a cost result has no amount")
		}
		if c := strings.ToLower(r.Amount.Currency); c != "usd" {
			return fmt.Errorf("a cost in %q: only USD is reconciled", r.Amount.Currency)
		}
		v, err := decimal.NewFromString(string(r.Amount.Value))
		if err != nil {
			return fmt.Errorf("a cost amount %q is not a number", r.Amount.Value)
		}
		model, _, _ := strings.Cut(deref(r.LineItem), ", ")
		bill.add(Key{Day: day, Model: model}, Usage{Cost: v})
		return nil
	})
	return bill, err
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// Anthropic reads the Admin API's usage report (messages, grouped by model)
// and cost report (grouped by description, so each item names its model;
// amounts in cents), both in daily buckets.
type Anthropic admin

// NewAnthropic is Anthropic's admin API at baseURL
// (https://api.anthropic.com when empty) with an admin key.
func NewAnthropic(baseURL, adminKey string, client *http.Client) *Anthropic {
	if baseURL == "" {
		baseURL = "https://api.anthropic.com"
	}
	return &Anthropic{BaseURL: baseURL, AdminKey: adminKey, Client: client}
}

type anthropicPage struct {
	Data []struct {
		StartingAt string            `json:"starting_at"`
		Results    []anthropicResult `json:"results"`
	} `json:"data"`
	HasMore  bool    `json:"has_more"`
	NextPage *string `json:"next_page"`
}

// anthropicResult is a usage result or a cost result.
type anthropicResult struct {
	Model         *string     `json:"model"`
	Uncached      json.Number `json:"uncached_input_tokens"`
	CacheRead     json.Number `json:"cache_read_input_tokens"`
	Output        json.Number `json:"output_tokens"`
	CacheCreation *struct {
		FiveMinutes json.Number `json:"ephemeral_5m_input_tokens"`
		OneHour     json.Number `json:"ephemeral_1h_input_tokens"`
	} `json:"cache_creation"`
	Amount   *string `json:"amount"`
	Currency string  `json:"currency"`
}

// Bill implements Source.
func (a *Anthropic) Bill(ctx context.Context, from, to time.Time) (Bill, error) {
	bill := Bill{}
	header := http.Header{"X-Api-Key": {a.AdminKey}, "Anthropic-Version": {"2023-06-01"}}
	read := func(path, groupBy string, each func(day time.Time, r *anthropicResult) error) error {
		return pages(ctx, func(page string) (string, bool, error) {
			q := url.Values{"starting_at": {from.UTC().Format(time.RFC3339)}, "ending_at": {to.UTC().Format(time.RFC3339)},
				"bucket_width": {"1d"}, "group_by[]": {groupBy}, "limit": {"31"}}
			if page != "" {
				q.Set("page", page)
			}
			var p anthropicPage
			if err := admin(*a).get(ctx, path, q, header, &p); err != nil {
				return "", false, err
			}
			for _, b := range p.Data {
				start, err := time.Parse(time.RFC3339, b.StartingAt)
				if err != nil {
					return "", false, fmt.Errorf("reconcile: %s: %w", path, malformed("a bucket's starting_at %q is not an RFC 3339 time", b.StartingAt))
				}
				for i := range b.Results {
					if err := each(start.UTC().Truncate(Day), &b.Results[i]); err != nil {
						return "", false, fmt.Errorf("reconcile: %s: %w", path, malformed("%v", err))
					}
				}
			}
			return deref(p.NextPage), p.HasMore, nil
		})
	}
	err := read("/v1/organizations/usage_report/messages", "model", func(day time.Time, r *anthropicResult) error {
		in, err1 := count(r.Uncached)
		read, err2 := count(r.CacheRead)
		out, err3 := count(r.Output)
		var five, hour int64
		var err4, err5 error
		if r.CacheCreation != nil {
			five, err4 = count(r.CacheCreation.FiveMinutes)
			hour, err5 = count(r.CacheCreation.OneHour)
		}
		if err := errors.Join(err1, err2, err3, err4, err5); err != nil {
			return err
		}
		bill.add(Key{Day: day, Model: deref(r.Model)}, Usage{Input: in, CacheRead: read, CacheWrite: five + hour, Output: out})
		return nil
	})
	if err != nil {
		return nil, err
	}
	err = read("/v1/organizations/cost_report", "description", func(day time.Time, r *anthropicResult) error {
		if r.Amount == nil {
			return errors.New("a cost result has no amount")
		}
		if r.Currency != "" && r.Currency != "USD" {
			return fmt.Errorf("a cost in %q: only USD is reconciled", r.Currency)
		}
		cents, err := decimal.NewFromString(*r.Amount)
		if err != nil {
			return fmt.Errorf("a cost amount %q is not a decimal number of cents", *r.Amount)
		}
		bill.add(Key{Day: day, Model: deref(r.Model)}, Usage{Cost: cents.Shift(-2)})
		return nil
	})
	return bill, err
}

// CloudBillingExport reads a Cloud Billing export of the Gemini API, as
// JSON lines (the BigQuery export's columns: sku.description,
// usage_start_time, usage.amount, cost, currency). Google has no usage API
// for the Gemini API; its bill is this export. A SKU's description names
// the model and the kind of token: "Gemini 2.5 Flash Input Tokens",
// "... Cached Input Tokens", "... Output Tokens" (thinking included), or
// with "Token Count" for "Tokens".
type CloudBillingExport struct {
	R    io.Reader
	Name string // the file's name, for errors
}

type billingRow struct {
	Service struct {
		Description string `json:"description"`
	} `json:"service"`
	SKU struct {
		Description string `json:"description"`
	} `json:"sku"`
	UsageStart string `json:"usage_start_time"`
	Usage      struct {
		Amount json.Number `json:"amount"`
		Unit   string      `json:"unit"`
	} `json:"usage"`
	Cost     json.Number `json:"cost"`
	Currency string      `json:"currency"`
}

// skuKinds are the endings of the SKU descriptions read, longest first.
var skuKinds = []struct {
	suffix string
	set    func(*Usage, int64)
}{
	{" cached input tokens", func(u *Usage, n int64) { u.CacheRead += n }},
	{" cached input token count", func(u *Usage, n int64) { u.CacheRead += n }},
	{" input tokens", func(u *Usage, n int64) { u.Input += n }},
	{" input token count", func(u *Usage, n int64) { u.Input += n }},
	{" output tokens", func(u *Usage, n int64) { u.Output += n }},
	{" output token count", func(u *Usage, n int64) { u.Output += n }},
}

// Bill implements Source: the rows whose usage started in [from, to).
func (c CloudBillingExport) Bill(_ context.Context, from, to time.Time) (Bill, error) {
	bill := Bill{}
	sc := bufio.NewScanner(c.R)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" {
			continue
		}
		fail := func(format string, args ...any) error {
			return fmt.Errorf("reconcile: %s:%d: %w", c.Name, line, malformed(format, args...))
		}
		dec := json.NewDecoder(strings.NewReader(text))
		dec.UseNumber()
		var r billingRow
		if err := dec.Decode(&r); err != nil {
			return nil, fail("not a billing export row: %v", err)
		}
		start, err := time.Parse(time.RFC3339, r.UsageStart)
		if err != nil {
			return nil, fail("usage_start_time %q is not an RFC 3339 time", r.UsageStart)
		}
		if start.Before(from) || !start.Before(to) {
			continue
		}
		if r.Currency != "USD" {
			return nil, fail("currency %q: only USD is reconciled", r.Currency)
		}
		cost, err := decimal.NewFromString(string(r.Cost))
		if err != nil {
			return nil, fail("cost %q is not a number", r.Cost)
		}
		tokens, err := count(r.Usage.Amount)
		if err != nil {
			return nil, fail("usage.amount: %v", err)
		}
		desc := strings.ToLower(strings.TrimSpace(r.SKU.Description))
		var u Usage
		model := ""
		for _, k := range skuKinds {
			if m, ok := strings.CutSuffix(desc, k.suffix); ok {
				model = strings.Join(strings.Fields(m), "-")
				k.set(&u, tokens)
				break
			}
		}
		if model == "" {
			return nil, fail("sku.description %q names no model and kind of token (want e.g. \"Gemini 2.5 Flash Output Tokens\")", r.SKU.Description)
		}
		u.Cost = cost
		bill.add(Key{Day: start.UTC().Truncate(Day), Model: model}, u)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reconcile: %s: %w", c.Name, err)
	}
	if line == 0 {
		return nil, fmt.Errorf("reconcile: %s: %w", c.Name, malformed("the export is empty"))
	}
	return bill, nil
}
