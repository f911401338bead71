package scenarios

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/shopspring/decimal"

	"github.com/brownout-dev/brownout/fakeprovider"
	"github.com/brownout-dev/brownout/gateway/ledger"
	"github.com/brownout-dev/brownout/gateway/llm"
	"github.com/brownout-dev/brownout/reconcile"
)

// summarize fills the report from what the traffic saw, the ledger and the
// fakes' invoices.
func summarize(ctx context.Context, rep *Report, sc *Scenario, tr traffic, store ledger.Store, fakes map[string]*fakeprovider.Server, start time.Time, speed float64) error {
	// sim converts a real offset of the run to scenario time; window is a
	// scenario minute in real time.
	sim := func(d time.Duration) time.Duration { return scaleUp(d, speed) }
	window := time.Duration(float64(time.Minute) / speed)
	bucket := func(d time.Duration) time.Duration { return sim(d.Truncate(window)).Round(time.Second) }
	q := &rep.Requests
	q.ByStatus = map[string]int{}
	q.Shed = tr.shed
	var lat []time.Duration
	originals := 0
	for _, r := range tr.results {
		q.ByStatus[strconv.Itoa(r.status)]++
		if r.duplicate {
			q.Duplicates++
			if r.replayed {
				q.Replayed++
			}
			continue
		}
		originals++
		lat = append(lat, sim(r.latency))
		if r.status == 200 {
			q.OK++
		}
	}
	q.Sent = originals
	if originals > 0 {
		q.SuccessRate = float64(q.OK) / float64(originals)
	}
	slices.Sort(lat)
	if len(lat) > 0 {
		rep.Latency = LatencySummary{P50: lat[(len(lat)-1)/2], P99: lat[(len(lat)-1)*99/100], Max: lat[len(lat)-1]}
	}

	var buf bytes.Buffer
	// This run's attempts only: a shared ledger may hold earlier runs.
	if _, err := store.Export(ctx, ledger.Query{From: start, To: time.Now().Add(time.Second)}, &buf); err != nil {
		return err
	}
	var attempts []ledger.Attempt
	dec := json.NewDecoder(&buf)
	for dec.More() {
		var a ledger.Attempt
		if err := dec.Decode(&a); err != nil {
			return err
		}
		attempts = append(attempts, a)
	}

	// Per-minute windows of attempts by provider and outcome.
	windows := map[time.Duration]map[string]AttemptCounts{}
	windowCost := map[time.Duration]decimal.Decimal{}
	total := decimal.Zero
	type acc struct {
		total             decimal.Decimal
		ok                int
		output, reasoning int64
	}
	byTarget := map[string]*acc{}
	var output, reasoning int64
	for _, a := range attempts {
		from := bucket(a.StartedAt.Sub(start))
		if windows[from] == nil {
			windows[from] = map[string]AttemptCounts{}
		}
		c := windows[from][a.Provider]
		switch a.Outcome {
		case ledger.OutcomeOK:
			c.OK++
		case ledger.OutcomeThrottled:
			c.Throttled++
		case ledger.OutcomeServerError, ledger.OutcomeTransportError:
			c.Errors++
		case ledger.OutcomeRejectedBreaker, ledger.OutcomeRejectedBudget:
			c.Rejected++
		case ledger.OutcomeClientError:
			c.Client++
		case ledger.OutcomeCancelled:
			c.Cancelled++
		}
		windows[from][a.Provider] = c
		windowCost[from] = windowCost[from].Add(a.Cost)
		total = total.Add(a.Cost)
		key := a.Provider + "/" + a.Model
		t := byTarget[key]
		if t == nil {
			t = &acc{}
			byTarget[key] = t
		}
		t.total = t.total.Add(a.Cost)
		t.output += a.Tokens.Output
		t.reasoning += a.Tokens.Reasoning
		if a.Outcome == ledger.OutcomeOK {
			t.ok++
		}
		output += a.Tokens.Output
		reasoning += a.Tokens.Reasoning
	}
	// Client requests per window, and requests answered after a failover.
	reqs, oks, failedOver := map[time.Duration]int{}, map[time.Duration]int{}, map[time.Duration]int{}
	latencies := map[time.Duration][]time.Duration{}
	for _, r := range tr.results {
		if r.duplicate {
			continue
		}
		from := bucket(r.at)
		reqs[from]++
		latencies[from] = append(latencies[from], sim(r.latency))
		if r.status == 200 {
			oks[from]++
		}
	}
	firstProvider := map[string]string{}
	firstStart := map[string]time.Time{}
	for _, a := range attempts {
		if _, ok := firstProvider[a.RequestID]; !ok {
			firstProvider[a.RequestID], firstStart[a.RequestID] = a.Provider, a.StartedAt
		}
		if a.Outcome == ledger.OutcomeOK && a.Provider != firstProvider[a.RequestID] {
			failedOver[bucket(firstStart[a.RequestID].Sub(start))]++
		}
	}
	keys := map[time.Duration]bool{}
	for k := range windows {
		keys[k] = true
	}
	for k := range reqs {
		keys[k] = true
	}
	for _, from := range slices.Sorted(maps.Keys(keys)) {
		provs := windows[from]
		if provs == nil {
			provs = map[string]AttemptCounts{}
		}
		lat := latencies[from]
		slices.Sort(lat)
		win := Window{From: from, Requests: reqs[from], OK: oks[from], FailedOver: failedOver[from],
			Cost: windowCost[from].String(), Providers: provs}
		if len(lat) > 0 {
			win.P50, win.P99 = lat[(len(lat)-1)/2], lat[(len(lat)-1)*99/100]
		}
		// Each budgeted tenant's spend in its budget window at the end of
		// the minute (the minute's end in real time: k+1 windows in).
		end := start.Add(time.Duration(from/time.Minute+1) * window)
		for tenant, b := range sc.Gateway.Budgets {
			length := budgetWindow(b, speed)
			opened := end.Add(-1).UTC().Truncate(length)
			spent := decimal.Zero
			for _, a := range attempts {
				if a.Tenant == tenant && !a.StartedAt.Before(opened) && a.StartedAt.Before(end) {
					spent = spent.Add(a.Cost)
				}
			}
			if win.BudgetSpent == nil {
				win.BudgetSpent = map[string]string{}
			}
			win.BudgetSpent[tenant] = spent.String()
		}
		rep.Windows = append(rep.Windows, win)
	}
	rep.Cost = CostSummary{Total: total.String(), PerRequest: "0", ByTarget: map[string]TargetCost{}}
	if q.OK > 0 {
		rep.Cost.PerRequest = total.DivRound(decimal.NewFromInt(int64(q.OK)), 12).String()
	}
	for k, t := range byTarget {
		per := "0"
		if t.ok > 0 {
			per = t.total.DivRound(decimal.NewFromInt(int64(t.ok)), 12).String()
		}
		rep.Cost.ByTarget[k] = TargetCost{Total: t.total.String(), OK: t.ok, PerRequest: per, Output: t.output, Reasoning: t.reasoning}
	}
	if output+reasoning > 0 {
		rep.Cost.ReasoningShare = float64(reasoning) / float64(output+reasoning)
	}

	// Reconciliation: every billed generation against the ledger row with
	// its provider request id. A row whose usage the gateway estimated
	// without a vendor id (a timeout before any answer) cannot be joined to
	// a line: its estimate is set against the lines no row names.
	metered := map[string]ledger.Attempt{}
	rc := &rep.Reconciliation
	invoiced, meteredSum, unmetered, estimated, unjoined := decimal.Zero, decimal.Zero, decimal.Zero, decimal.Zero, decimal.Zero
	for _, a := range attempts {
		if a.UsageSource == ledger.UsageEstimated {
			rc.EstimatedRows++
			estimated = estimated.Add(a.Cost)
			if a.ProviderReqID == "" {
				rc.Unjoined++
				unjoined = unjoined.Add(a.Cost)
				meteredSum = meteredSum.Add(a.Cost)
				continue
			}
		}
		if a.ProviderReqID == "" || (a.Tokens == llm.Usage{}) {
			continue
		}
		if _, dup := metered[a.ProviderReqID]; dup {
			// The second row of one generation: its cost is metered spend
			// the invoice does not have, so the ledger cannot equal it.
			rc.DoubleBilled++
			meteredSum = meteredSum.Add(a.Cost)
		}
		metered[a.ProviderReqID] = a
	}
	missing := decimal.Zero
	billed := map[string]bool{}
	for _, name := range slices.Sorted(maps.Keys(fakes)) {
		for _, l := range fakes[name].Invoice().Lines {
			billed[l.RequestID] = true
			invoiced = invoiced.Add(l.Cost)
			a, ok := metered[l.RequestID]
			if !ok {
				rc.Missing++
				missing = missing.Add(l.Cost)
				continue
			}
			meteredSum = meteredSum.Add(a.Cost)
			same := a.Tokens == llm.Usage{Input: l.InputTokens, Output: l.OutputTokens, Reasoning: l.ReasoningTokens,
				CacheRead: l.CacheReadTokens, CacheWrite: l.CacheWriteTokens} && a.Cost.Equal(l.Cost)
			if same {
				rc.Matched++
			} else {
				rc.Mismatched++
				if l.Cost.GreaterThan(a.Cost) {
					unmetered = unmetered.Add(l.Cost.Sub(a.Cost))
				}
			}
		}
	}
	for id, a := range metered {
		if !billed[id] {
			rc.Extra++
			meteredSum = meteredSum.Add(a.Cost)
		}
	}
	unmetered = unmetered.Add(decimal.Max(decimal.Zero, missing.Sub(unjoined)))
	rc.Invoiced, rc.Metered, rc.Unmetered = invoiced.String(), meteredSum.String(), unmetered.String()

	// Billed generations per logical request: the invoice lines each
	// tenant's Idempotency-Key reaches through the ledger rows.
	perKey := map[[2]string]map[string]bool{}
	for _, a := range attempts {
		if a.IdempotencyKey == "" || !billed[a.ProviderReqID] {
			continue
		}
		k := [2]string{a.Tenant, a.IdempotencyKey}
		if perKey[k] == nil {
			perKey[k] = map[string]bool{}
		}
		perKey[k][a.ProviderReqID] = true
	}
	for _, lines := range perKey {
		rc.MaxBilledPerKey = max(rc.MaxBilledPerKey, len(lines))
		if len(lines) > 1 {
			rc.KeysBilledTwice++
		}
	}
	rc.Reported, rc.Estimated = meteredSum.Sub(estimated).String(), estimated.String()

	// Budgets: metered spend per tenant and window, as the gateway keeps it.
	for _, tenant := range slices.Sorted(maps.Keys(sc.Gateway.Budgets)) {
		window := budgetWindow(sc.Gateway.Budgets[tenant], speed)
		b := sc.Gateway.Budgets[tenant]
		spent := map[time.Time]decimal.Decimal{}
		rejected := map[time.Time]int{}
		for _, a := range attempts {
			if a.Tenant != tenant {
				continue
			}
			w := a.StartedAt.UTC().Truncate(window)
			spent[w] = spent[w].Add(a.Cost)
			if a.Outcome == ledger.OutcomeRejectedBudget {
				rejected[w]++
			}
		}
		for _, w := range slices.SortedFunc(maps.Keys(spent), func(a, b time.Time) int { return a.Compare(b) }) {
			rep.Budgets = append(rep.Budgets, BudgetUse{Tenant: tenant, Window: sim(w.Sub(start.UTC().Truncate(window))),
				Limit: b.USD.String(), Spent: spent[w].String(), Rejected: rejected[w]})
		}
	}
	return nil
}

// budgetWindow is the length of a budget's window in the run's real time:
// its own, or a day (the gateway's default) scaled by the run's speed.
func budgetWindow(b BudgetSpec, speed float64) time.Duration {
	if b.Window != 0 {
		return b.Window
	}
	return time.Duration(float64(24*time.Hour) / speed)
}

// vendorReports reconciles each provider's ledger against its fake
// vendor's own report, as `brownout ledger reconcile` does: OpenAI's and
// Anthropic's admin APIs over the fakes' HTTP, Gemini's billing export.
// The ledger side is this run's attempts only (a shared ledger may hold
// earlier runs); the vendors' side is their daily buckets.
// With ledgerOnly the ledger is reconciled against itself (Switches).
func vendorReports(ctx context.Context, store ledger.Store, fakes map[string]*fakeprovider.Server, start time.Time, ledgerOnly bool) ([]*reconcile.Result, error) {
	end := time.Now().Add(time.Second)
	from, to := start.UTC().Truncate(reconcile.Day), end.UTC().Truncate(reconcile.Day).Add(reconcile.Day)
	var out []*reconcile.Result
	for _, name := range slices.Sorted(maps.Keys(fakes)) {
		f := fakes[name]
		var src reconcile.Source
		switch f.Vendor() {
		case fakeprovider.OpenAI:
			src = reconcile.NewOpenAI(f.URL, "scenario-admin-key", f.Client())
		case fakeprovider.Anthropic:
			src = reconcile.NewAnthropic(f.URL, "scenario-admin-key", f.Client())
		default:
			src = reconcile.CloudBillingExport{R: bytes.NewReader(f.BillingExport(from, to)), Name: name + " billing export"}
		}
		billed := reconcile.Bill{}
		var err error
		if len(f.Invoice().Lines) > 0 { // an empty export is not a file to read
			if billed, err = src.Bill(ctx, from, to); err != nil {
				return nil, fmt.Errorf("scenarios: %s's report: %w", name, err)
			}
		}
		metered, err := reconcile.FromLedger(ctx, store, name, start, end)
		if err != nil {
			return nil, err
		}
		if ledgerOnly {
			billed = metered.Bill
		}
		out = append(out, reconcile.Compare(name, string(f.Vendor()), from, to, billed, metered))
	}
	return out, nil
}
