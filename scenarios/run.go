package scenarios

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/brownout-dev/brownout/fakeprovider"
	"github.com/brownout-dev/brownout/gateway"
	"github.com/brownout-dev/brownout/gateway/gatewaytest"
	"github.com/brownout-dev/brownout/gateway/ledger"
	"github.com/brownout-dev/brownout/gateway/llm"
)

// Run executes sc in virtual time inside a testing/synctest bubble: an hour
// of traffic takes seconds, and the same seed gives the same report. It
// fails t for each expectation that does not hold, printing the report.
func Run(t *testing.T, sc *Scenario) *Report {
	t.Helper()
	var rep *Report
	synctest.Test(t, func(t *testing.T) {
		var err error
		rep, err = Execute(context.Background(), sc, Options{})
		if err != nil {
			t.Fatalf("scenario %s: %v", sc.Name, err)
		}
	})
	if !rep.Passed {
		var b bytes.Buffer
		rep.WriteText(&b)
		t.Errorf("scenario %s (seed %d): expectations failed\n%s", sc.Name, sc.Seed, b.String())
	}
	return rep
}

// Options configure Execute.
type Options struct {
	// Store is the ledger (default: a new MemoryStore).
	Store ledger.Store
	// Logger receives the gateway's logs (default: discarded; the report
	// has the breaker timeline).
	Logger *slog.Logger
	// RunID prefixes the X-Request-ID of the run's requests, which the
	// ledger keeps as client_request_id (default "<name>-<seed>"); the
	// ledger's own keys are minted by the gateway.
	RunID string
	// Progress, when set, is called as each request is sent with the time
	// into the run and the number sent so far.
	Progress func(at time.Duration, sent int)
	// Speed is the factor the scenario was Scaled by (default 1): the
	// report's times are multiplied back, so it speaks scenario time.
	Speed float64
	// Original is the unscaled scenario whose name, duration and
	// expectations the report uses (default: the one run).
	Original *Scenario
	// Off switches behaviours of the gateway off for the run, while the
	// scenario's expectations stay as written: a scenario whose
	// expectations still pass without the behaviour they guard proves
	// nothing about it.
	Off Switches
}

// Switches name the gateway behaviours a run can do without.
type Switches struct {
	Idempotency bool // duplicates run again (no idempotency store)
	Breaker     bool // breakers never open
	Retry       bool // one attempt per target
	Failover    bool // only the route's first target
	Budget      bool // no tenant budgets (the expectations keep theirs)
	Metering    bool // the ledger drops every attempt
	MeterTwice  bool // the ledger counts every attempt twice, under a second key
	Timeouts    bool // no attempt, first-token or idle timeout and no deadline (an hour each)
	BreakerHold bool // an open breaker turns half-open at once (open_for 1ms)
	Fallbacks   bool // no context-length fallbacks
	// Continuation: a stream that fails mid-way is not carried on to a
	// target that continues a prefill; it ends with its error.
	Continuation bool
	// VendorReports reconciles the ledger against itself instead of the
	// vendors' own reports: what a gateway that trusts its metering sees.
	VendorReports bool
}

const tenantKey = "scenario-key"

// Execute runs sc on the clock it is called under: virtual time inside a
// synctest bubble, real time outside.
func Execute(ctx context.Context, sc *Scenario, opts Options) (*Report, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Speed <= 0 {
		opts.Speed = 1
	}
	orig := opts.Original
	if orig == nil {
		orig = sc
	}
	store := opts.Store
	if store == nil {
		store = ledger.NewMemoryStore()
	}
	g, err := gatewaytest.New(sc.gatewaytest(store, opts.Logger, opts.Off))
	if err != nil {
		return nil, err
	}
	defer g.Close()
	gw, fakes := g.Gateway, g.Fakes
	start := time.Now()
	events := make(chan gateway.BreakerEvent, 4096)
	gw.SubscribeBreakers(events)
	var timeline []BreakerTransition
	var tlMu sync.Mutex
	evDone := make(chan struct{})
	go func() { // exits when events is closed, after the run
		defer close(evDone)
		for ev := range events {
			tlMu.Lock()
			timeline = append(timeline, BreakerTransition{At: scaleUp(ev.Time.Sub(start), opts.Speed), Provider: ev.Provider, From: ev.From, To: ev.To})
			tlMu.Unlock()
		}
	}()

	handler := g.Handler

	if opts.RunID == "" {
		opts.RunID = fmt.Sprintf("%s-%d", sc.Name, sc.Seed)
	}
	results := drive(ctx, sc, handler, start, opts)

	// Let stragglers (breaker events, fakes' last bills) land, then stop.
	time.Sleep(time.Second)
	gw.Close()
	close(events)
	<-evDone
	rep := &Report{Scenario: orig.Name, Seed: sc.Seed, Duration: orig.Duration, Timeline: timeline}
	if err := summarize(ctx, rep, sc, results, store, fakes, start, opts.Speed); err != nil {
		return nil, err
	}
	if orig.Expect.reconciles() {
		if rep.VendorReports, err = vendorReports(ctx, store, fakes, start, opts.Off.VendorReports); err != nil {
			return nil, err
		}
	}
	rep.Checks = orig.Expect.check(rep)
	rep.Passed = true
	for _, c := range rep.Checks {
		rep.Passed = rep.Passed && c.Pass
	}
	return rep, nil
}

// gatewaytest is the scenario's gateway as `brownout serve` would build it
// from a config: the scenario's routes, breaker, retry and prices, a tenant
// per traffic tenant with its budget, and a fake per provider, seeded from
// the scenario's seed, with its slice of the fault timeline.
func (sc *Scenario) gatewaytest(store ledger.Store, log *slog.Logger, off Switches) gatewaytest.Config {
	fakes := map[string]fakeprovider.Config{}
	for i, name := range slices.Sorted(maps.Keys(sc.Providers)) {
		cfg := sc.Providers[name]
		cfg.Seed = sc.Seed*1000 + uint64(i) + 1
		cfg.Faults = sc.faultsOf(name)
		fakes[name] = cfg
	}
	gc := gateway.Config{Routes: sc.Gateway.Routes, Fallbacks: sc.Gateway.Fallbacks, Breaker: sc.Gateway.Breaker, Retry: sc.Gateway.Retry,
		Prices: gateway.PricesConfig{Models: sc.Gateway.Prices}}
	if gc.Retry.Seed == 0 {
		gc.Retry.Seed = sc.Seed
	}
	for _, name := range sc.Traffic.Tenants {
		t := gateway.TenantConfig{Name: name, APIKeySHA256: fmt.Sprintf("%x", gateway.HashKey(tenantKey+"-"+name))}
		if b, ok := sc.Gateway.Budgets[name]; ok && !off.Budget {
			t.BudgetUSD, t.BudgetWindow = &b.USD, b.Window
		}
		gc.Tenants = append(gc.Tenants, t)
	}
	cfg := gatewaytest.Config{Fakes: fakes, Gateway: gc, Store: store, Logger: log,
		Idempotency: gateway.NewMemoryIdempotency(gateway.IdempotencySettings{}, nil)}
	if off.Idempotency {
		cfg.Idempotency = nil
	}
	if off.Breaker {
		cfg.Gateway.Breaker = gateway.BreakerConfig{BreakerSettings: gateway.BreakerSettings{ConsecutiveFailures: math.MaxUint32}}
	}
	if off.BreakerHold {
		cfg.Gateway.Breaker.OpenFor = time.Millisecond
		cfg.Gateway.Breaker.Providers = maps.Clone(cfg.Gateway.Breaker.Providers)
		for name, b := range cfg.Gateway.Breaker.Providers {
			b.OpenFor = time.Millisecond
			cfg.Gateway.Breaker.Providers[name] = b
		}
	}
	if off.Timeouts {
		r := &cfg.Gateway.Retry
		r.AttemptTimeout, r.FirstTokenTimeout, r.IdleTimeout, r.Deadline, r.Providers = time.Hour, time.Hour, time.Hour, time.Hour, nil
	}
	if off.Fallbacks {
		cfg.Gateway.Fallbacks = nil
	}
	if off.Continuation {
		cfg.Options = func(o *gateway.Options) {
			for name, p := range o.Providers {
				o.Providers[name] = noPrefill{p} // hides llm.Continuer
			}
		}
	}
	if off.Retry {
		cfg.Gateway.Retry.MaxAttempts = 1
	}
	if off.Failover {
		cfg.Gateway.Routes = map[string][]string{}
		for alias, targets := range sc.Gateway.Routes {
			cfg.Gateway.Routes[alias] = targets[:1]
		}
	}
	if off.Metering {
		cfg.Ledger = dropAll{}
	}
	if off.MeterTwice {
		cfg.Ledger = twice{&ledger.Immediate{Store: store}}
	}
	return cfg
}

// noPrefill is a provider that does not say it continues a prefill.
type noPrefill struct{ llm.Provider }

// dropAll is a ledger that records nothing: metering switched off.
type dropAll struct{}

func (dropAll) Record(ledger.Attempt) error { return nil }

// twice is a ledger that counts each attempt twice, the second time under
// a key of its own: exactly-once metering switched off.
type twice struct{ gateway.Recorder }

func (t twice) Record(a ledger.Attempt) error {
	if err := t.Recorder.Record(a); err != nil {
		return err
	}
	a.RequestID += "-again"
	return t.Recorder.Record(a)
}

// result is one client request as the traffic generator saw it.
type result struct {
	index     int
	at        time.Duration
	status    int
	latency   time.Duration
	duplicate bool
	replayed  bool
}

// traffic is what the generator sent.
type traffic struct {
	results []result
	shed    int
}

// drive sends the traffic: an open loop, each request on its own
// goroutine, every random choice drawn in the loop from the seeded source.
func drive(ctx context.Context, sc *Scenario, h http.Handler, start time.Time, opts Options) (out traffic) {
	rng := rand.New(rand.NewPCG(sc.Seed, 0x74726166666963))
	sem := make(chan struct{}, sc.Traffic.Concurrency)
	var mu sync.Mutex
	var wg sync.WaitGroup
	tr := sc.Traffic
	i := 0
	for at := time.Duration(0); at < sc.Duration; {
		rate := tr.rateAt(at)
		if d := time.Until(start.Add(at)); d > 0 {
			time.Sleep(d)
		}
		if ctx.Err() != nil {
			break
		}
		i++
		idx := i
		if opts.Progress != nil {
			opts.Progress(at, i)
		}
		route := tr.Routes[rng.IntN(len(tr.Routes))]
		prompt := tr.Prompts[rng.IntN(len(tr.Prompts))]
		tenant := tr.Tenants[rng.IntN(len(tr.Tenants))]
		stream := rng.Float64() < tr.StreamShare
		dup := rng.Float64() < tr.DuplicateShare
		select {
		case sem <- struct{}{}:
			sent := at
			wg.Go(func() {
				defer func() { <-sem }()
				body := chatBody(route, prompt, stream, tr.MaxTokens)
				key := "k" + strconv.Itoa(idx)
				r := send(h, body, tenant, key, opts.RunID, idx, false)
				r.at = sent
				rs := []result{r}
				if dup {
					d := send(h, body, tenant, key, opts.RunID, idx, true)
					d.at, d.duplicate = time.Since(start), true
					rs = append(rs, d)
				}
				mu.Lock()
				out.results = append(out.results, rs...)
				mu.Unlock()
			})
		default:
			out.shed++
		}
		if rate <= 0 {
			at += time.Second
		} else {
			at += time.Duration(float64(time.Second) / rate)
		}
	}
	wg.Wait()
	slices.SortFunc(out.results, func(a, b result) int {
		if a.index != b.index {
			return a.index - b.index
		}
		if a.duplicate == b.duplicate {
			return 0
		}
		if a.duplicate {
			return 1
		}
		return -1
	})
	return out
}

func chatBody(route, prompt string, stream bool, maxTokens int) []byte {
	m := map[string]any{"model": route, "stream": stream, "messages": []any{map[string]any{"role": "user", "content": prompt}}}
	if maxTokens > 0 {
		m["max_tokens"] = maxTokens
	}
	b, _ := json.Marshal(m)
	return b
}

// send runs one request through the handler, in process.
func send(h http.Handler, body []byte, tenant, key, runID string, idx int, dup bool) result {
	req := httptest.NewRequest(http.MethodPost, "/v1/chat/completions", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+tenantKey+"-"+tenant)
	req.Header.Set("Idempotency-Key", runID+"-"+key)
	id := runID + "-" + strconv.Itoa(idx)
	if dup {
		id += "-dup"
	}
	req.Header.Set("X-Request-ID", id)
	rec := httptest.NewRecorder()
	start := time.Now()
	h.ServeHTTP(rec, req)
	status := rec.Code
	if status == http.StatusOK && bytes.Contains(rec.Body.Bytes(), []byte(`data: {"error"`)) {
		status = 599 // a stream that failed after its first byte
	}
	return result{index: idx, status: status, latency: time.Since(start), replayed: rec.Header().Get("Idempotent-Replayed") == "true"}
}

// scaleUp converts a real duration of a sped-up run to scenario time.
func scaleUp(d time.Duration, speed float64) time.Duration {
	if speed == 1 {
		return d
	}
	return time.Duration(float64(d) * speed)
}
