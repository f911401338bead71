// Package reconcile checks the gateway's ledger against what the vendors
// say they billed: their own usage and cost reports (OpenAI's organisation
// Usage and Costs APIs, Anthropic's Admin API usage and cost reports) or,
// for Gemini, a Cloud Billing export. Both sides are summed the same way,
// per day (the vendors' cost reports are daily) and model: tokens by kind
// and cost. The difference is drift: spend the ledger missed (a vendor
// billing what its response did not report) or counted twice.
//
// A vendor's report is a number the gateway did not compute, so a ledger
// that matches it is right about the bill, not only self-consistent. The
// ledger's estimated spend (attempts whose usage never arrived) is shown
// apart: a ledger that matches only thanks to estimates says so.
package reconcile

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/brownout-dev/brownout/gateway/ledger"
)

// Day is the width of a bucket: the vendors' cost reports are daily.
const Day = 24 * time.Hour

// Usage is what one model was billed in one bucket.
type Usage struct {
	Input      int64           `json:"input_tokens"` // uncached input
	CacheRead  int64           `json:"cache_read_tokens"`
	CacheWrite int64           `json:"cache_write_tokens"`
	Output     int64           `json:"output_tokens"` // reasoning included: vendors bill and report it as output
	Cost       decimal.Decimal `json:"cost"`
}

func (u Usage) add(v Usage) Usage {
	return Usage{u.Input + v.Input, u.CacheRead + v.CacheRead, u.CacheWrite + v.CacheWrite, u.Output + v.Output, u.Cost.Add(v.Cost)}
}

// Key is a bucket: a day (UTC midnight) and a model ("" where the vendor
// did not say which).
type Key struct {
	Day   time.Time
	Model string
}

// Bill is what was billed per bucket.
type Bill map[Key]Usage

func (b Bill) add(k Key, u Usage) { b[k] = b[k].add(u) }

// Source is a vendor's account of what it billed between two instants,
// summed per day and model.
type Source interface {
	Bill(ctx context.Context, from, to time.Time) (Bill, error)
}

// LedgerBill is the ledger's account of what provider was billed for the
// attempts that started in [from, to), summed as a vendor sums it, with the
// part whose usage the gateway estimated.
type LedgerBill struct {
	Bill      Bill
	Estimated map[Key]Estimate
}

// Estimate is the estimated part of a ledger bucket.
type Estimate struct {
	Cost decimal.Decimal
	Rows int
}

// FromLedger reads the provider's attempts in [from, to) from the store.
func FromLedger(ctx context.Context, store ledger.Store, provider string, from, to time.Time) (LedgerBill, error) {
	pr, pw := io.Pipe()
	go func() {
		_, err := store.Export(ctx, ledger.Query{Provider: provider, From: from, To: to}, pw)
		pw.CloseWithError(err)
	}()
	defer pr.Close()
	out := LedgerBill{Bill: Bill{}, Estimated: map[Key]Estimate{}}
	dec := json.NewDecoder(pr)
	for dec.More() {
		var a ledger.Attempt
		if err := dec.Decode(&a); err != nil {
			return LedgerBill{}, fmt.Errorf("reconcile: reading the ledger: %w", err)
		}
		k := Key{Day: a.StartedAt.UTC().Truncate(Day), Model: a.Model}
		t := a.Tokens
		u := Usage{Input: t.Input, CacheRead: t.CacheRead, CacheWrite: t.CacheWrite + t.CacheWrite1h, Output: t.Output + t.Reasoning, Cost: a.Cost}
		if u.Input == 0 && u.CacheRead == 0 && u.CacheWrite == 0 && u.Output == 0 && u.Cost.IsZero() {
			continue // an attempt nothing was billed for
		}
		out.Bill.add(k, u)
		if a.UsageSource == ledger.UsageEstimated {
			e := out.Estimated[k]
			out.Estimated[k] = Estimate{Cost: e.Cost.Add(a.Cost), Rows: e.Rows + 1}
		}
	}
	return out, nil
}

// Row is one bucket of a reconciliation.
type Row struct {
	Day    time.Time `json:"day"`
	Model  string    `json:"model"`
	Vendor Usage     `json:"vendor"`
	Ledger Usage     `json:"ledger"`
	// Estimated is the part of Ledger.Cost whose usage the gateway
	// estimated (EstimatedRows attempts).
	Estimated     decimal.Decimal `json:"ledger_estimated"`
	EstimatedRows int             `json:"ledger_estimated_rows"`
	// Drift is the vendor's cost less the ledger's: positive when the
	// ledger is short of the bill.
	Drift decimal.Decimal `json:"drift"`
}

// Tokens reports whether the vendor's and the ledger's token counts agree.
func (r Row) Tokens() bool {
	v, l := r.Vendor, r.Ledger
	return v.Input == l.Input && v.CacheRead == l.CacheRead && v.CacheWrite == l.CacheWrite && v.Output == l.Output
}

// Result is the ledger against a vendor's report over a window.
type Result struct {
	Provider  string          `json:"provider"`
	Vendor    string          `json:"vendor"`
	From      time.Time       `json:"from"`
	To        time.Time       `json:"to"`
	Rows      []Row           `json:"rows"`
	Billed    decimal.Decimal `json:"vendor_cost"`
	Metered   decimal.Decimal `json:"ledger_cost"`
	Estimated decimal.Decimal `json:"ledger_estimated"`
	Drift     decimal.Decimal `json:"drift"`
	// Failures say which drift is over the limit checked (Check).
	Failures []string `json:"failures,omitempty"`
}

// Compare puts the vendor's bill beside the ledger's, bucket by bucket. A
// vendor's model name that is a ledger model's with a date snapshot after
// it (gpt-4o-mini-2024-07-18 for gpt-4o-mini) is that ledger model's.
func Compare(provider, vendor string, from, to time.Time, billed Bill, metered LedgerBill) *Result {
	r := &Result{Provider: provider, Vendor: vendor, From: from, To: to}
	ledgerModels := map[string]bool{}
	for k := range metered.Bill {
		ledgerModels[k.Model] = true
	}
	rows := map[Key]*Row{}
	row := func(k Key) *Row {
		if rows[k] == nil {
			rows[k] = &Row{Day: k.Day, Model: k.Model}
		}
		return rows[k]
	}
	for k, u := range billed {
		k.Model = snapshotOf(k.Model, ledgerModels)
		row(k).Vendor = row(k).Vendor.add(u)
	}
	for k, u := range metered.Bill {
		row(k).Ledger = u
		e := metered.Estimated[k]
		row(k).Estimated, row(k).EstimatedRows = e.Cost, e.Rows
	}
	keys := slices.SortedFunc(maps.Keys(rows), func(a, b Key) int {
		if c := a.Day.Compare(b.Day); c != 0 {
			return c
		}
		return strings.Compare(a.Model, b.Model)
	})
	for _, k := range keys {
		x := rows[k]
		x.Drift = x.Vendor.Cost.Sub(x.Ledger.Cost)
		r.Rows = append(r.Rows, *x)
		r.Billed, r.Metered, r.Estimated = r.Billed.Add(x.Vendor.Cost), r.Metered.Add(x.Ledger.Cost), r.Estimated.Add(x.Estimated)
	}
	r.Drift = r.Billed.Sub(r.Metered)
	return r
}

var snapshot = regexp.MustCompile(`^-(\d{4}-\d{2}-\d{2}|\d{8})$`)

// snapshotOf maps a vendor's dated model name to the ledger's model it is
// a snapshot of, when the ledger has it under the undated name.
func snapshotOf(model string, ledgerModels map[string]bool) string {
	if ledgerModels[model] {
		return model
	}
	for l := range ledgerModels {
		if l != "" && strings.HasPrefix(model, l) && snapshot.MatchString(model[len(l):]) {
			return l
		}
	}
	return model
}

// Limit is how much drift a reconciliation tolerates: at most USD in
// absolute value, or at most Percent of the vendor's cost; with both set,
// drift fails only past both (the larger tolerance holds).
type Limit struct {
	USD     *decimal.Decimal
	Percent *float64
}

// ParseLimit reads a limit: "0.01" (USD), "0.5%", or both, comma-separated
// ("0.01,0.5%").
func ParseLimit(s string) (Limit, error) {
	var l Limit
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if p, ok := strings.CutSuffix(part, "%"); ok {
			v, err := strconv.ParseFloat(p, 64)
			if err != nil || v < 0 || math.IsNaN(v) || math.IsInf(v, 0) || l.Percent != nil {
				return Limit{}, fmt.Errorf("max drift %q: %q is not one non-negative percentage", s, part)
			}
			l.Percent = &v
			continue
		}
		v, err := decimal.NewFromString(strings.TrimPrefix(part, "$"))
		if err != nil || v.IsNegative() || l.USD != nil {
			return Limit{}, fmt.Errorf("max drift %q: %q is not one non-negative USD amount (or a percentage, with %%)", s, part)
		}
		l.USD = &v
	}
	return l, nil
}

func (l Limit) String() string {
	var parts []string
	if l.USD != nil {
		parts = append(parts, "$"+l.USD.String())
	}
	if l.Percent != nil {
		parts = append(parts, strconv.FormatFloat(*l.Percent, 'f', -1, 64)+"%")
	}
	return strings.Join(parts, " or ")
}

// over reports whether drift against billed is past the limit.
func (l Limit) over(drift, billed decimal.Decimal) bool {
	abs := drift.Abs()
	if abs.IsZero() {
		return false
	}
	overUSD := l.USD == nil || abs.GreaterThan(*l.USD)
	overPct := l.Percent == nil || billed.IsZero() ||
		abs.Div(billed).Shift(2).GreaterThan(decimal.NewFromFloat(*l.Percent))
	return overUSD && overPct
}

// Check sets r.Failures to the buckets, and the total, whose drift is past
// the limit, and reports whether there are none.
func (r *Result) Check(l Limit) bool {
	r.Failures = nil
	for _, x := range r.Rows {
		if l.over(x.Drift, x.Vendor.Cost) {
			r.Failures = append(r.Failures, fmt.Sprintf("%s %s: vendor $%s, ledger $%s: drift $%s, over %s",
				x.Day.Format(time.DateOnly), modelName(x.Model), x.Vendor.Cost, x.Ledger.Cost, x.Drift, l))
		}
	}
	if l.over(r.Drift, r.Billed) {
		r.Failures = append(r.Failures, fmt.Sprintf("total: vendor $%s, ledger $%s: drift $%s, over %s", r.Billed, r.Metered, r.Drift, l))
	}
	return len(r.Failures) == 0
}

func modelName(m string) string {
	if m == "" {
		return "(no model named)"
	}
	return m
}
