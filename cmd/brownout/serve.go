package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/brownout-dev/brownout/gateway"
	"github.com/brownout-dev/brownout/gateway/ledger"
)

// On SIGTERM serve stops taking requests and lets those in flight finish
// for --drain-timeout; then it cuts what is left (long streams), whose
// attempts the gateway meters as cancelled with their partial usage, waits
// up to cutGrace for those handlers to return, and only then flushes the
// ledger, within flushTimeout. No attempt is recorded after the writer
// closed.
const (
	cutGrace     = 10 * time.Second
	flushTimeout = 30 * time.Second
)

// runServe runs the gateway until ctx ends, then drains requests and
// flushes the ledger.
func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("brownout serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	config := fs.String("config", "", "gateway config YAML (required)")
	addr := fs.String("addr", "127.0.0.1:0", "host:port to listen on (port 0 picks a free one)")
	dbURL := fs.String("database-url", "", "Postgres URL of the ledger (default $DATABASE_URL; empty: in-memory ledger)")
	spoolDir := fs.String("spool-dir", "", "the ledger writer's durable spool, over the config's ledger.spool_dir (one per process)")
	metricsAddr := fs.String("metrics-addr", "127.0.0.1:0", "host:port of the /metrics listener, its own and never the API's (port 0 picks a free one; \"off\": no metrics)")
	drainTimeout := fs.Duration("drain-timeout", 30*time.Second, "on SIGTERM, how long requests in flight may finish before the rest are cut (and metered as cancelled)")
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	if *config == "" {
		return usagef("serve: --config is required")
	}
	if *drainTimeout < 0 {
		return usagef("serve: --drain-timeout must not be negative")
	}
	if *dbURL == "" {
		*dbURL = os.Getenv("DATABASE_URL") // not the flag's default: -help would print it, password and all
	}
	cfg, err := gateway.LoadConfig(*config)
	if err != nil {
		return usageError{err}
	}
	if *spoolDir != "" {
		cfg.Ledger.SpoolDir = *spoolDir
	}
	built, err := cfg.Build(os.Getenv, nil)
	if err != nil {
		return usageError{fmt.Errorf("serve: %s: %w", *config, err)}
	}
	log := slog.New(slog.NewJSONHandler(stderr, nil))

	var store ledger.Store
	var idem gateway.IdempotencyStore = gateway.NewMemoryIdempotency(cfg.Idempotency, nil)
	var budgets gateway.BudgetStore = gateway.NewMemoryBudgets()
	var behind *gateway.WriteBehind // the keys' and budgets' writes after a response, in Postgres
	if *dbURL != "" {
		if err := ledger.Migrate(ctx, *dbURL); err != nil {
			return fmt.Errorf("serve: %w", err) // "ledger: migrate: ..."
		}
		poolConfig, err := gateway.PoolConfig(*dbURL)
		if err != nil {
			return fmt.Errorf("serve: %w", err)
		}
		pool, err := gateway.OpenPool(ctx, poolConfig)
		if err != nil {
			return fmt.Errorf("serve: %w", err)
		}
		defer pool.Close()
		store = ledger.NewPostgresStore(pool)
		// A request waits for one round trip, its key's claim with its
		// budget's reservation; the writes after its response go behind.
		behind = gateway.NewWriteBehind(pool, gateway.WriteBehindSettings{Logger: log})
		defer func() {
			ctx, cancel := context.WithTimeout(context.Background(), flushTimeout)
			defer cancel()
			if err := behind.Close(ctx); err != nil {
				log.Error("shutting down: idempotency and budget writes not flushed", "error", err)
			}
		}()
		idem = gateway.NewPostgresIdempotency(pool, cfg.Idempotency).WritingBehind(behind)
		budgets = gateway.NewPostgresBudgets(pool).WritingBehind(behind)
		log.Info("ledger, idempotency keys and budgets: Postgres")
	} else {
		store = ledger.NewMemoryStore()
		log.Warn("ledger: in memory; metering is not durable, and memory grows with every attempt until the process exits (set --database-url or DATABASE_URL)")
	}
	if cfg.Ledger.SpoolDir == "" && *dbURL != "" {
		log.Warn("ledger: no spool_dir; attempts spooled during a database outage are lost if the process dies")
	}
	writer, err := ledger.NewWriter(store, ledger.WriterConfig{SpoolDir: cfg.Ledger.SpoolDir, GroupCommit: cfg.Ledger.GroupCommit, Logger: log})
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics := gateway.NewMetrics(reg, func() float64 { return float64(writer.Stats().Queued) })
	if behind != nil {
		for _, c := range []struct {
			name, help string
			count      func(gateway.WriteBehindStats) uint64
		}{
			{"brownout_write_behind_lost_total", "Idempotency completions and releases and budget settlements given up (logged): refused by the database through their retries, or left when shutting down gave up waiting for it; a key then waits for its lease, a reservation for its window.",
				func(s gateway.WriteBehindStats) uint64 { return s.Lost }},
			{"brownout_write_behind_lease_lost_total", "Idempotency completions and releases of a lease another request had taken over.",
				func(s gateway.WriteBehindStats) uint64 { return s.LeaseLost }},
			{"brownout_write_behind_waits_total", "Waits of the write-behind for a database out of reach (a restart, a failover): its writes wait, however long, until the database is back or the gateway shuts down (the first of each outage logged).",
				func(s gateway.WriteBehindStats) uint64 { return s.Waits }},
			{"brownout_write_behind_resolved_total", "Write-behind round trips that failed after they went out (a connection lost, a timeout) and were found to have committed, or fenced so they never will, before anything was sent again (logged).",
				func(s gateway.WriteBehindStats) uint64 { return s.Resolved }},
			{"brownout_write_behind_unknown_total", "Write-behind writes whose outcome could not be found out, the database refusing to say every try or the gateway shutting down first (logged): budget settlements, not sent again so as never to count one twice (a reservation then waits for its window if it did not commit), and completions and releases sent again that found their claim gone.",
				func(s gateway.WriteBehindStats) uint64 { return s.Unknown }},
		} {
			reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: c.name, Help: c.help},
				func() float64 { return float64(c.count(behind.Stats())) }))
		}
	}
	opts := cfg.Options(built)
	opts.Ledger, opts.Metrics, opts.Logger, opts.BudgetStore = writer, metrics, log, budgets
	// An attempt's row goes to the ledger before its call too, so that a
	// crash during the call leaves what the vendor may bill; in memory the
	// crash takes the ledger with it.
	opts.Unfinished = *dbURL != ""
	gw, err := gateway.New(opts)
	if err != nil {
		_ = writer.Close(context.Background())
		return usageError{fmt.Errorf("serve: %w", err)}
	}
	var draining atomic.Bool
	defer gw.Close()
	purgeCtx, stopPurge := context.WithCancel(ctx)
	defer stopPurge()
	go gateway.PurgeEvery(purgeCtx, idem, time.Minute, log)
	// The API listener serves no /metrics: the metrics name every tenant,
	// route and provider, and they are for the operator's scraper only.
	handler := gw.Handler(gateway.HandlerOptions{Tenants: built.Tenants, MaxBodyBytes: cfg.MaxBodyBytes, Idempotency: idem,
		Ready: func() error {
			if draining.Load() {
				return errors.New("draining")
			}
			return nil
		}})

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		_ = writer.Close(context.Background())
		return fmt.Errorf("serve: listen on %s: %w", *addr, err)
	}
	first := map[string]string{"addr": "http://" + ln.Addr().String()}
	var metricsSrv *http.Server
	if *metricsAddr != "off" {
		mln, err := net.Listen("tcp", *metricsAddr)
		if err != nil {
			_ = ln.Close()
			_ = writer.Close(context.Background())
			return fmt.Errorf("serve: listen for metrics on %s: %w", *metricsAddr, err)
		}
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		metricsSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = metricsSrv.Serve(mln) }()
		defer metricsSrv.Close()
		first["metrics"] = "http://" + mln.Addr().String() + "/metrics"
	}
	line, _ := json.Marshal(first)
	fmt.Fprintf(stdout, "%s\n", line)
	// Every request's context descends from reqCtx: cutting it ends the
	// requests still running after the drain. inflight counts handlers, so
	// the writer closes only after the last one has metered its attempts.
	reqCtx, cutRequests := context.WithCancel(context.Background())
	defer cutRequests()
	var inflight sync.WaitGroup
	counted := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		inflight.Add(1)
		defer inflight.Done()
		handler.ServeHTTP(w, r)
	})
	srv := &http.Server{Handler: counted, ReadHeaderTimeout: 10 * time.Second,
		BaseContext: func(net.Listener) context.Context { return reqCtx }}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	log.Info("serving", "addr", ln.Addr().String(), "routes", gw.Routes())

	select {
	case <-ctx.Done():
	case err := <-served:
		_ = writer.Close(context.Background())
		return fmt.Errorf("serve: %w", err)
	}
	draining.Store(true)
	log.Info("shutting down: draining requests, then flushing the ledger", "drain_timeout", drainTimeout.String())
	var errs []error
	dctx, cancel := context.WithTimeout(context.Background(), *drainTimeout)
	defer cancel()
	if err := srv.Shutdown(dctx); err != nil {
		log.Warn("shutting down: requests still running after the drain; cutting them (metered as cancelled)", "error", err)
	}
	cutRequests()
	if !waitTimeout(&inflight, cutGrace) {
		errs = append(errs, fmt.Errorf("serve: requests still running %s after they were cut; attempts they record now are lost", cutGrace))
	}
	_ = srv.Close()
	fctx, cancelFlush := context.WithTimeout(context.Background(), flushTimeout)
	defer cancelFlush()
	if err := writer.Close(fctx); err != nil {
		errs = append(errs, fmt.Errorf("serve: ledger flush: %w", err))
	}
	st := writer.Stats()
	log.Info("ledger flushed", "recorded", st.Recorded, "inserted", st.Inserted, "spooled", st.Spooled)
	return errors.Join(errs...)
}

// waitTimeout waits for wg up to d, and reports whether it finished.
func waitTimeout(wg *sync.WaitGroup, d time.Duration) bool {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-done:
		return true
	case <-t.C:
		return false
	}
}
