package ledger_test

import (
	"context"
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
