package ledger_test

import (
	"context"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/brownout-dev/brownout/gateway/ledger"
	"github.com/brownout-dev/brownout/internal/pgtest"
)

// The ledger benchmarks run against the containerized Postgres:
//
//	go test -run '^$' -bench 'Writer|RawInsert' -benchtime 200000x ./gateway/ledger/
//
// BenchmarkWriter is the saturated rate through the async writer (Record on
// four goroutines as fast as they can, until Close has flushed everything).
// BenchmarkWriterSustained offers a fixed rate, open loop (a burst every
// millisecond), as a gateway under load would, and reports whether the
// writer keeps up: achieved rows/s, how far behind it was when the last
// Record returned, and Record's p50/p99 on the caller's side.
// BenchmarkRawInsert is the same database's raw idempotent batch insert
// rate with no writer in front, both ways the writer could do it.
// BenchmarkRecordSpaced needs no database: what one Record costs the
// request that makes it, at a gateway's pace.

func BenchmarkWriter(b *testing.B) {
	store := ledger.NewPostgresStore(pgtest.NewPool(b, ledgerDB))
	all := attempts(0, b.N)
	w, err := ledger.NewWriter(store, ledger.WriterConfig{QueueSize: b.N + 1, SpoolDir: b.TempDir(), Logger: quietLogger()})
	if err != nil {
		b.Fatal(err)
	}
	const producers = 4
	lat := make([][]time.Duration, producers)
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for p := range producers {
		wg.Go(func() {
			d := make([]time.Duration, 0, b.N/producers+1)
			for i := p; i < b.N; i += producers {
				t := time.Now()
				if err := w.Record(all[i]); err != nil {
					b.Error(err)
					return
				}
				d = append(d, time.Since(t))
			}
			lat[p] = d
		})
	}
	wg.Wait()
	if err := w.Close(context.Background()); err != nil {
		b.Fatal(err)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	st := w.Stats()
	if st.Inserted != uint64(b.N) || st.Spooled != 0 {
		b.Fatalf("lost or spooled attempts: %+v", st)
	}
	all = nil
	d := slices.Concat(lat...)
	slices.Sort(d)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "rows/s")
	b.ReportMetric(float64(d[len(d)*99/100].Nanoseconds())/1e3, "record-p99-us")
	b.ReportMetric(float64(d[len(d)/2].Nanoseconds())/1e3, "record-p50-us")
}

func BenchmarkWriterSustained(b *testing.B) {
	for _, rate := range []int{40_000, 60_000} {
		b.Run(strconv.Itoa(rate)+"-per-s", func(b *testing.B) {
			store := ledger.NewPostgresStore(pgtest.NewPool(b, ledgerDB))
			all := attempts(0, b.N)
			w, err := ledger.NewWriter(store, ledger.WriterConfig{SpoolDir: b.TempDir(), Logger: quietLogger()})
			if err != nil {
				b.Fatal(err)
			}
			perTick := rate / 1000
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			start := time.Now()
			for i := 0; i < b.N; i++ {
				if i%perTick == 0 {
					// Open loop: the i-th record is due at start + i/rate,
					// however long the earlier ones took.
					if wait := time.Until(start.Add(time.Duration(i) * time.Second / time.Duration(rate))); wait > 0 {
						time.Sleep(wait)
					}
				}
				t := time.Now()
				if err := w.Record(all[i]); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(t))
			}
			offered := time.Since(start)
			for w.Stats().Inserted < uint64(b.N) {
				time.Sleep(time.Millisecond)
			}
			elapsed := time.Since(start)
			b.StopTimer()
			if err := w.Close(context.Background()); err != nil {
				b.Fatal(err)
			}
			if st := w.Stats(); st.Inserted != uint64(b.N) || st.Spooled != 0 {
				b.Fatalf("lost or spooled attempts: %+v", st)
			}
			slices.Sort(lat)
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "rows/s")
			b.ReportMetric(float64((elapsed - offered).Milliseconds()), "lag-ms")
			b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds())/1e3, "record-p99-us")
			b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds())/1e3, "record-p50-us")
		})
	}
}

func BenchmarkRawInsert(b *testing.B) {
	b.Run("unnest-1000", func(b *testing.B) {
		store := ledger.NewPostgresStore(pgtest.NewPool(b, ledgerDB))
		all := attempts(0, b.N)
		b.ResetTimer()
		start := time.Now()
		for chunk := range slices.Chunk(all, 1000) {
			if _, err := store.Insert(context.Background(), chunk); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "rows/s")
	})
	b.Run("copy-staging-5000", func(b *testing.B) {
		pool := pgtest.NewPool(b, ledgerDB)
		all := attempts(0, b.N)
		b.ResetTimer()
		start := time.Now()
		for chunk := range slices.Chunk(all, 5000) {
			if err := copyInsert(context.Background(), pool, chunk); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "rows/s")
	})
}

// copyInsert is the alternative the writer was measured against: COPY into a
// temporary staging table, then one idempotent insert-select.
func copyInsert(ctx context.Context, pool *pgxpool.Pool, batch []ledger.Attempt) error {
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `CREATE TEMP TABLE IF NOT EXISTS ledger_staging
			(LIKE ledger_attempts INCLUDING DEFAULTS) ON COMMIT DELETE ROWS`); err != nil {
			return err
		}
		cols := []string{"request_id", "attempt", "idempotency_key", "tenant", "route", "provider", "model", "outcome",
			"http_status", "error_class", "error_message", "input_tokens", "output_tokens", "reasoning_tokens",
			"cache_read_tokens", "cache_write_tokens", "cost", "started_at", "finished_at", "provider_request_id"}
		_, err := tx.CopyFrom(ctx, pgx.Identifier{"ledger_staging"}, cols, pgx.CopyFromSlice(len(batch), func(i int) ([]any, error) {
			a := &batch[i]
			return []any{a.RequestID, int32(a.Attempt), a.IdempotencyKey, a.Tenant, a.Route, a.Provider, a.Model, string(a.Outcome),
				int32(a.HTTPStatus), a.ErrorClass, a.ErrorMessage, a.Tokens.Input, a.Tokens.Output, a.Tokens.Reasoning,
				a.Tokens.CacheRead, a.Tokens.CacheWrite, a.Cost.String(), a.StartedAt, a.FinishedAt, a.ProviderReqID}, nil
		}))
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO ledger_attempts SELECT * FROM ledger_staging ON CONFLICT DO NOTHING`)
		return err
	})
}

// BenchmarkRecordSpaced is Record as a request makes it, one attempt a
// millisecond (a gateway at 1,000 requests a second), to a memory store,
// with and without a spool directory: its p50 and p99 on the caller's
// side, the time a request waits for its attempt to be metered. Between
// two Records the writer's goroutines are parked; a Record that readied
// one would pay for its wake (on Linux, a futex call to start a thread for
// it), on the request path.
//
//	go test -run '^$' -bench RecordSpaced -benchtime 2000x ./gateway/ledger/
func BenchmarkRecordSpaced(b *testing.B) {
	for _, spool := range []bool{false, true} {
		b.Run(map[bool]string{false: "memory-spool", true: "spool-dir"}[spool], func(b *testing.B) {
			cfg := ledger.WriterConfig{Logger: quietLogger()}
			if spool {
				cfg.SpoolDir = b.TempDir()
			}
			store := ledger.NewMemoryStore()
			w, err := ledger.NewWriter(store, cfg)
			if err != nil {
				b.Fatal(err)
			}
			all := attempts(0, b.N)
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for i := range b.N {
				time.Sleep(time.Millisecond)
				t := time.Now()
				if err := w.Record(all[i]); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(t))
			}
			b.StopTimer()
			if err := w.Close(context.Background()); err != nil {
				b.Fatal(err)
			}
			if store.Len() != b.N {
				b.Fatalf("stored %d attempts of %d", store.Len(), b.N)
			}
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds())/1e3, "record-p50-us")
			b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds())/1e3, "record-p99-us")
		})
	}
}
