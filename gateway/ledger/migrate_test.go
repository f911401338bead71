package ledger_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brownout-dev/brownout/gateway/ledger"
	"github.com/brownout-dev/brownout/internal/pgtest"
)

func TestMigrateTwiceAndConcurrently(t *testing.T) {
	ctx := context.Background()
	url := pgtest.New(t, pgtest.Template{Name: "empty"})

	// Eight processes' worth of Migrate at once, then once more.
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() { assert.NoError(t, ledger.Migrate(ctx, url)) })
	}
	wg.Wait()
	require.NoError(t, ledger.Migrate(ctx, url))

	migrations, err := ledger.Migrations()
	require.NoError(t, err)
	require.NotEmpty(t, migrations)
	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, "SELECT version FROM schema_migrations ORDER BY version")
	require.NoError(t, err)
	versions, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	require.NoError(t, err)
	want := make([]int32, len(migrations))
	for i, m := range migrations {
		want[i] = int32(m.Version)
	}
	assert.Equal(t, want, versions, "each migration is applied exactly once")

	// The schema works after all that.
	s := ledger.NewPostgresStore(pgtest.Pool(t, url))
	n, err := s.Insert(ctx, attempts(0, 3))
	require.NoError(t, err)
	assert.Equal(t, 3, n)
}

func TestMigrationsAreOrderedAndUnique(t *testing.T) {
	migrations, err := ledger.Migrations()
	require.NoError(t, err)
	for i, m := range migrations {
		assert.Equal(t, i+1, m.Version, "migration %s: versions must run 1, 2, 3...", m.Name)
		assert.NotEmpty(t, m.SQL)
	}
}

// TestUsageSourceOfRowsWrittenBefore: migration 5 says how the usage of
// existing rows is known as far as it can: successes reported, rejections
// none, failures (whose usage the old gateway may have dropped) unknown.
func TestUsageSourceOfRowsWrittenBefore(t *testing.T) {
	ctx := context.Background()
	url := pgtest.New(t, pgtest.Template{Name: "empty"})
	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	defer conn.Close(ctx)
	migrations, err := ledger.Migrations()
	require.NoError(t, err)
	_, err = conn.Exec(ctx, `CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`)
	require.NoError(t, err)
	require.Equal(t, "usage_source", migrations[4].Name)
	for _, m := range migrations[:4] {
		_, err := conn.Exec(ctx, m.SQL)
		require.NoError(t, err, m.Name)
		_, err = conn.Exec(ctx, "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", m.Version, m.Name)
		require.NoError(t, err)
	}
	for i, outcome := range []string{"ok", "rejected_budget", "server_error", "transport_error"} {
		_, err := conn.Exec(ctx, `INSERT INTO ledger_attempts (request_id, attempt, tenant, route, provider, model, outcome,
			input_tokens, output_tokens, reasoning_tokens, cache_read_tokens, cache_write_tokens, cost, started_at, finished_at)
			VALUES ($1, 1, 't', 'chat', 'p', 'm', $2, 0, 0, 0, 0, 0, 0, now(), now())`, fmt.Sprint("old-", i), outcome)
		require.NoError(t, err)
	}
	require.NoError(t, ledger.MigrateConn(ctx, conn))
	rows, err := conn.Query(ctx, "SELECT outcome || ':' || usage_source FROM ledger_attempts ORDER BY request_id")
	require.NoError(t, err)
	got, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	assert.Equal(t, []string{"ok:reported", "rejected_budget:none", "server_error:unknown", "transport_error:unknown"}, got)
}
