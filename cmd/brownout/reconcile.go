package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/brownout-dev/brownout/gateway"
	"github.com/brownout-dev/brownout/gateway/ledger"
	"github.com/brownout-dev/brownout/reconcile"
)

// errDrift is the exit status 1 of a reconciliation over --max-drift.
var errDrift = errors.New("ledger reconcile: drift over the limit")

// runReconcile is `brownout ledger reconcile`: the provider's attempts in
// the ledger against its vendor's own report of what it billed, per day
// and model, and exit 1 when the drift is over --max-drift.
func runReconcile(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("brownout ledger reconcile", flag.ContinueOnError)
	fs.SetOutput(stderr)
	config := fs.String("config", "", "the gateway's config YAML: the provider's vendor, base_url and admin_key_env (required)")
	provider := fs.String("provider", "", "the provider to reconcile, as named in the config (required)")
	from := fs.String("from", "", "start of the window: RFC 3339 or a date (YYYY-MM-DD, UTC) (required)")
	to := fs.String("to", "", "end of the window, exclusive: RFC 3339 or a date (required)")
	dbURL := fs.String("database-url", "", "the ledger's Postgres (default: the environment's DATABASE_URL)")
	ledgerFile := fs.String("ledger", "", "read the ledger from this `file` (JSON lines, as brownout ledger export writes them) instead of Postgres")
	export := fs.String("export", "", "the vendor's billing export to read instead of its API (required for gemini: a Cloud Billing export, JSON lines)")
	maxDrift := fs.String("max-drift", "", "exit 1 when a day's or the total drift is over this: USD (0.01), a share of the bill (0.5%), or both (0.01,0.5%: over both)")
	jsonOut := fs.Bool("json", false, "print the result as JSON")
	markdown := fs.String("markdown", "", "also write a markdown report to this file")
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	if *config == "" || *provider == "" || *from == "" || *to == "" {
		return usagef("ledger reconcile: --config, --provider, --from and --to are required")
	}
	start, err := parseWhen("--from", *from)
	if err != nil {
		return err
	}
	end, err := parseWhen("--to", *to)
	if err != nil {
		return err
	}
	if !start.Before(end) {
		return usagef("ledger reconcile: --from %s is not before --to %s", *from, *to)
	}
	var limit *reconcile.Limit
	if *maxDrift != "" {
		l, err := reconcile.ParseLimit(*maxDrift)
		if err != nil {
			return usagef("ledger reconcile: --max-drift: %v", err)
		}
		limit = &l
	}
	cfg, err := gateway.LoadConfig(*config)
	if err != nil {
		return usageError{err}
	}
	pc, ok := cfg.Providers[*provider]
	if !ok {
		var names []string
		for n := range cfg.Providers {
			names = append(names, n)
		}
		return usagef("ledger reconcile: %s has no provider %q (it has: %s)", *config, *provider, strings.Join(names, ", "))
	}
	src, closeSrc, err := vendorSource(*config, *provider, pc, *export)
	if err != nil {
		return err
	}
	defer closeSrc()

	store, closeStore, err := reconcileLedger(ctx, *dbURL, *ledgerFile)
	if err != nil {
		return err
	}
	defer closeStore()
	billed, err := src.Bill(ctx, start, end)
	if errors.Is(err, reconcile.ErrMalformed) {
		return usageError{err}
	}
	if err != nil {
		return err
	}
	metered, err := reconcile.FromLedger(ctx, store, *provider, start, end)
	if err != nil {
		return err
	}
	res := reconcile.Compare(*provider, pc.Vendor, start, end, billed, metered)
	passed := limit == nil || res.Check(*limit)
	if *markdown != "" {
		if err := writeFile(*markdown, func(w io.Writer) error { res.WriteMarkdown(w); return nil }); err != nil {
			return err
		}
	}
	if *jsonOut {
		if err := res.WriteJSON(stdout); err != nil {
			return err
		}
	} else {
		res.WriteText(stdout)
	}
	if !passed {
		return errDrift
	}
	return nil
}

// parseWhen reads a window's bound: RFC 3339, or a date at UTC midnight.
func parseWhen(flagName, v string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, v); err == nil {
		return t, nil
	}
	return time.Time{}, usagef("ledger reconcile: %s %q is neither RFC 3339 (2026-11-01T00:00:00Z) nor a date (2026-11-01)", flagName, v)
}

// vendorSource is the provider's vendor's report: its admin API with the
// admin key from the environment variable the config names, or an export
// file.
func vendorSource(config, name string, pc gateway.ProviderConfig, export string) (reconcile.Source, func(), error) {
	nothing := func() {}
	if export != "" {
		if pc.Vendor != "gemini" {
			return nil, nothing, usagef("ledger reconcile: --export reads a Cloud Billing export, Gemini's bill; %s's vendor %s has a report API (drop --export)", name, pc.Vendor)
		}
		f, err := os.Open(export)
		if err != nil {
			return nil, nothing, usageError{fmt.Errorf("ledger reconcile: --export: %w", err)}
		}
		return reconcile.CloudBillingExport{R: f, Name: export}, func() { f.Close() }, nil
	}
	if pc.Vendor == "gemini" {
		return nil, nothing, usagef("ledger reconcile: Google bills the Gemini API through Cloud Billing, which has no usage API: pass its export with --export FILE (JSON lines)")
	}
	if pc.AdminKeyEnv == "" {
		return nil, nothing, usagef("ledger reconcile: %s: providers.%s.admin_key_env is not set: name the environment variable that holds %s's admin key", config, name, pc.Vendor)
	}
	key := os.Getenv(pc.AdminKeyEnv)
	if key == "" {
		return nil, nothing, usagef("ledger reconcile: the environment variable %s (providers.%s.admin_key_env) is empty", pc.AdminKeyEnv, name)
	}
	switch pc.Vendor {
	case "openai":
		return reconcile.NewOpenAI(pc.BaseURL, key, nil), nothing, nil
	case "anthropic":
		return reconcile.NewAnthropic(pc.BaseURL, key, nil), nothing, nil
	}
	return nil, nothing, usagef("ledger reconcile: provider %s: vendor %q has no report to reconcile against", name, pc.Vendor)
}

// reconcileLedger is the ledger to read: Postgres, or an export file loaded
// into memory.
func reconcileLedger(ctx context.Context, dbURL, file string) (ledger.Store, func(), error) {
	if file != "" {
		if dbURL != "" {
			return nil, nil, usagef("ledger reconcile: --ledger and --database-url are two ledgers; pass one")
		}
		f, err := os.Open(file)
		if err != nil {
			return nil, nil, usageError{fmt.Errorf("ledger reconcile: --ledger: %w", err)}
		}
		defer f.Close()
		store := ledger.NewMemoryStore()
		dec := json.NewDecoder(f)
		var batch []ledger.Attempt
		for n := 1; dec.More(); n++ {
			var a ledger.Attempt
			if err := dec.Decode(&a); err != nil {
				return nil, nil, usagef("ledger reconcile: --ledger %s: attempt %d: %v", file, n, err)
			}
			batch = append(batch, a)
		}
		if _, err := store.Insert(ctx, batch); err != nil {
			return nil, nil, usagef("ledger reconcile: --ledger %s: %v", file, err)
		}
		return store, func() {}, nil
	}
	if dbURL == "" {
		dbURL = os.Getenv("DATABASE_URL") // not the flag's default: -help would print it, password and all
	}
	if dbURL == "" {
		return nil, nil, usagef("ledger reconcile: --database-url, DATABASE_URL or --ledger is required")
	}
	pool, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		return nil, nil, fmt.Errorf("ledger reconcile: ledger: %w", err)
	}
	return ledger.NewPostgresStore(pool), pool.Close, nil
}
