package gateway_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/shopspring/decimal"

	"github.com/brownout-dev/brownout/fakeprovider"
	"github.com/brownout-dev/brownout/gateway"
	"github.com/brownout-dev/brownout/gateway/gatewaytest"
	"github.com/brownout-dev/brownout/gateway/ledger"
	"github.com/brownout-dev/brownout/gateway/pricing"
	"github.com/brownout-dev/brownout/internal/pgtest"
)

// BenchmarkOverhead measures what the gateway adds to a call, as
// shared/BENCHMARKS.md describes: the same chat request to a zero-latency
// fake, three ways, interleaved (direct, gateway, reverse proxy, direct,
// ...) in one open-loop run at 1,000 requests/s, then one at a time
// (unloaded). The ledger is on: the async writer over memory or Postgres.
//
//	go test -run '^$' -bench Overhead -benchtime 1x ./gateway/
func BenchmarkOverhead(b *testing.B) {
	// Breakers and retry bookkeeping are always on; the variants add
	// Idempotency-Keys (a new key per request) and a tenant budget, kept in
	// memory or, with the ledger, in Postgres.
	variants := []struct {
		name         string
		postgres     bool
		idem, budget bool
	}{
		{"memory/policies", false, false, false},
		{"memory/idempotency-key", false, true, false},
		{"memory/budget", false, false, true},
		{"memory/all", false, true, true},
		{"postgres/policies", true, false, false},
		{"postgres/all", true, true, true},
	}
	for _, v := range variants {
		b.Run(v.name, func(b *testing.B) {
			var st ledger.Store = ledger.NewMemoryStore()
			var x overheadExtras
			if v.idem {
				x.idem = gateway.NewMemoryIdempotency(gateway.IdempotencySettings{}, nil)
			}
			if v.budget {
				x.budgets = map[string]gateway.Budget{"t": {Limit: decimal.RequireFromString("1000000"), Window: 24 * time.Hour}}
				x.budgetStore = gateway.NewMemoryBudgets()
			}
			if v.postgres {
				url := pgtest.New(b, pgtest.Template{Name: "ledger", Setup: ledger.Migrate})
				st = ledger.NewPostgresStore(pgtest.Pool(b, url))
				// Keys and budgets on a pool of their own, whose round trips are
				// counted: they are the ones a request waits for (the ledger's
				// writer inserts in batches, off the request path).
				x.trips = &roundTrips{}
				pool := countedPool(b, url, x.trips)
				if v.idem {
					x.idem = gateway.NewPostgresIdempotency(pool, gateway.IdempotencySettings{})
				}
				if v.budget {
					x.budgetStore = gateway.NewPostgresBudgets(pool)
				}
			}
			for range b.N {
				runOverhead(b, st, x)
			}
		})
	}
}

type overheadExtras struct {
	idem        gateway.IdempotencyStore
	budgets     map[string]gateway.Budget
	budgetStore gateway.BudgetStore
	trips       *roundTrips // nil: keys and budgets are not in Postgres
}

// roundTrips counts the statements and batches sent to Postgres: one round
// trip each (a pipelined batch is one).
type roundTrips struct{ n atomic.Int64 }

func (r *roundTrips) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	r.n.Add(1)
	return ctx
}
func (r *roundTrips) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}
func (r *roundTrips) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	r.n.Add(1)
	return ctx
}
func (r *roundTrips) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {}
func (r *roundTrips) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData)     {}

// countedPool is a pool on url whose round trips r counts.
func countedPool(b *testing.B, url string, r *roundTrips) *pgxpool.Pool {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		b.Fatal(err)
	}
	cfg.ConnConfig.Tracer = r
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pool.Close)
	return pool
}

const (
	overheadRate     = 1000 // requests per second, all paths together
	overheadLoaded   = 9000 // requests in the loaded run (3,000 per path)
	overheadUnloaded = 1500 // requests in the sequential run (500 per path)
)

func runOverhead(b *testing.B, store ledger.Store, x overheadExtras) {
	w, err := ledger.NewWriter(store, ledger.WriterConfig{SpoolDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	tenant := gateway.TenantConfig{Name: "t", APIKeySHA256: fmt.Sprintf("%x", gateway.HashKey("key"))}
	if bg, ok := x.budgets["t"]; ok {
		tenant.BudgetUSD, tenant.BudgetWindow = &pricing.Rate{Decimal: bg.Limit}, bg.Window
	}
	g, err := gatewaytest.New(gatewaytest.Config{Loopback: true, Store: store, Ledger: w, BudgetStore: x.budgetStore, Idempotency: x.idem,
		Fakes: map[string]fakeprovider.Config{"openai": {Vendor: fakeprovider.OpenAI, Seed: 1,
			Models: map[string]fakeprovider.Model{"gpt-4o-mini": {Answers: []fakeprovider.Answer{{Text: "Paris"}}}}}},
		Gateway: gateway.Config{Routes: map[string][]string{"chat": {"openai/gpt-4o-mini"}}, Tenants: []gateway.TenantConfig{tenant}},
	})
	if err != nil {
		b.Fatal(err)
	}
	defer g.Close()
	fake := g.Fakes["openai"]
	gwSrv := httptest.NewServer(g.Handler)
	defer gwSrv.Close()
	target, _ := url.Parse(fake.URL)
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.Transport = &http.Transport{MaxIdleConnsPerHost: 512}
	proxySrv := httptest.NewServer(proxy)
	defer proxySrv.Close()

	paths := []struct {
		name, url, model string
	}{
		{"direct", fake.URL, "gpt-4o-mini"},
		{"gateway", gwSrv.URL, "chat"},
		{"proxy", proxySrv.URL, "gpt-4o-mini"},
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 512}}
	do := func(i int) (int, time.Duration) {
		p := paths[i%len(paths)]
		body := fmt.Sprintf(`{"model":%q,"messages":[{"role":"user","content":"What is the capital of France? One word."}]}`, p.model)
		req, _ := http.NewRequest("POST", p.url+"/v1/chat/completions", bytes.NewReader([]byte(body)))
		req.Header.Set("Authorization", "Bearer key")
		if p.name == "gateway" && x.idem != nil {
			req.Header.Set("Idempotency-Key", fmt.Sprintf("k%d-%d", time.Now().UnixNano(), i))
		}
		start := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			b.Error(err)
			return i % len(paths), 0
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		d := time.Since(start)
		if resp.StatusCode != 200 {
			b.Errorf("%s: status %d", p.name, resp.StatusCode)
		}
		return i % len(paths), d
	}

	// Warm up connections on every path.
	for i := range 300 {
		do(i)
	}

	// Unloaded: one request at a time.
	seq := make([][]time.Duration, len(paths))
	for i := range overheadUnloaded {
		k, d := do(i)
		seq[k] = append(seq[k], d)
	}

	// Loaded: open loop, request i due at start + i/rate, each on its own goroutine.
	var tripsBefore int64
	if x.trips != nil {
		tripsBefore = x.trips.n.Load()
	}
	loaded := make([][]time.Duration, len(paths))
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := time.Now()
	for i := range overheadLoaded {
		if wait := time.Until(start.Add(time.Duration(i) * time.Second / overheadRate)); wait > 0 {
			time.Sleep(wait)
		}
		wg.Go(func() {
			k, d := do(i)
			mu.Lock()
			loaded[k] = append(loaded[k], d)
			mu.Unlock()
		})
	}
	wg.Wait()
	b.StopTimer()
	if x.trips != nil {
		// Requests to the gateway are every third of the loaded run.
		b.ReportMetric(float64(x.trips.n.Load()-tripsBefore)/float64(overheadLoaded/len(paths)), "pg-roundtrips/req")
	}
	if err := w.Close(context.Background()); err != nil {
		b.Fatal(err)
	}
	if st := w.Stats(); st.Inserted < uint64(overheadLoaded/3) {
		b.Fatalf("ledger wrote %d attempts; want at least %d", st.Inserted, overheadLoaded/3)
	}

	report := func(prefix string, lat [][]time.Duration) {
		q := func(k int, p float64) float64 {
			d := slices.Clone(lat[k])
			slices.Sort(d)
			return float64(d[int(p*float64(len(d)-1))].Microseconds())
		}
		for _, p := range []struct {
			name string
			q    float64
		}{{"p50", 0.50}, {"p99", 0.99}} {
			direct, gwv, px := q(0, p.q), q(1, p.q), q(2, p.q)
			b.ReportMetric(direct, prefix+"direct-"+p.name+"-us")
			b.ReportMetric(gwv, prefix+"gateway-"+p.name+"-us")
			b.ReportMetric(px, prefix+"proxy-"+p.name+"-us")
			b.ReportMetric(gwv-direct, prefix+"gateway-overhead-"+p.name+"-us")
			b.ReportMetric(px-direct, prefix+"proxy-overhead-"+p.name+"-us")
			if px-direct > 0 {
				b.ReportMetric((gwv-direct)/(px-direct), prefix+"ratio-"+p.name)
			}
		}
	}
	report("loaded-", loaded)
	report("seq-", seq)
}

// BenchmarkHandlerInMemory is one chat request through the HTTP front to an
// in-memory fake, one at a time, with the ledger's async writer over the
// memory store: the gateway's own CPU and allocations per request, for
// profiling (-benchmem, -cpuprofile, -memprofile).
//
//	go test -run '^$' -bench HandlerInMemory -benchmem ./gateway/
func BenchmarkHandlerInMemory(b *testing.B) {
	w, err := ledger.NewWriter(ledger.NewMemoryStore(), ledger.WriterConfig{})
	if err != nil {
		b.Fatal(err)
	}
	g, err := gatewaytest.New(gatewaytest.Config{Ledger: w,
		Fakes: map[string]fakeprovider.Config{"openai": {Vendor: fakeprovider.OpenAI, Seed: 1,
			Models: map[string]fakeprovider.Model{"gpt-4o-mini": {Answers: []fakeprovider.Answer{{Text: "Paris"}}}}}},
		Gateway: gateway.Config{Routes: map[string][]string{"chat": {"openai/gpt-4o-mini"}}},
	})
	if err != nil {
		b.Fatal(err)
	}
	defer g.Close()
	body := []byte(`{"model":"chat","messages":[{"role":"user","content":"What is the capital of France? One word."}]}`)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		req := httptest.NewRequest("POST", "/v1/chat/completions", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+gatewaytest.DefaultKey)
		rec := httptest.NewRecorder()
		g.Handler.ServeHTTP(rec, req)
		if rec.Code != 200 {
			b.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
	}
	b.StopTimer()
	_ = w.Close(context.Background())
}
