package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/brownout-dev/brownout/gateway/ledger"
)

// runLedger is `brownout ledger export`: the attempts that started in a
// time window, as JSON lines (the input of `brownout replay --from-ledger`),
// optionally only a tenant's or those of a client's X-Request-ID.
func runLedger(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "reconcile" {
		return runReconcile(ctx, args[1:], stdout, stderr)
	}
	if len(args) == 0 || args[0] != "export" {
		return usagef("usage: brownout ledger export --database-url URL [--from RFC3339] [--to RFC3339] [--tenant NAME] [--client-request-id ID]\n" +
			"       brownout ledger reconcile --config FILE --provider NAME --from T --to T [--database-url URL | --ledger FILE] [--export FILE] [--max-drift USD,PCT%%]")
	}
	fs := flag.NewFlagSet("brownout ledger export", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dbURL := fs.String("database-url", "", "the ledger's Postgres (default $DATABASE_URL)")
	from := fs.String("from", "", "start of the window, RFC 3339 (default: the beginning)")
	to := fs.String("to", "", "end of the window, RFC 3339, exclusive (default: now)")
	tenant := fs.String("tenant", "", "only this tenant's attempts")
	clientID := fs.String("client-request-id", "", "only the attempts of requests sent with this X-Request-ID")
	if err := fs.Parse(args[1:]); err != nil {
		return usageError{err}
	}
	if *dbURL == "" {
		*dbURL = os.Getenv("DATABASE_URL") // not the flag's default: -help would print it, password and all
	}
	if *dbURL == "" {
		return usagef("ledger export: --database-url or DATABASE_URL is required")
	}
	var start, end time.Time
	var err error
	if *from != "" {
		if start, err = time.Parse(time.RFC3339, *from); err != nil {
			return usagef("ledger export: --from %q: %v", *from, err)
		}
	}
	if *to != "" {
		if end, err = time.Parse(time.RFC3339, *to); err != nil {
			return usagef("ledger export: --to %q: %v", *to, err)
		}
	}
	pool, err := pgxpool.New(ctx, *dbURL)
	if err != nil {
		return fmt.Errorf("ledger export: %w", err)
	}
	defer pool.Close()
	q := ledger.Query{From: start, To: end, Tenant: *tenant, ClientRequestID: *clientID}
	n, err := ledger.NewPostgresStore(pool).Export(ctx, q, stdout)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "exported %d attempts\n", n)
	return nil
}
