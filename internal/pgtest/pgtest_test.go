package pgtest_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brownout-dev/brownout/internal/pgtest"
)

// TestProcessesShareAServer: two test processes on one server (two Servers
// on one maintenance database, as go test's packages or two runs one after
// the other on BROWNOUT_TEST_DATABASE_URL are) each make their own template
// and databases, and each drops its templates at the end, leaving none.
// (Seen red with the template named after the Template alone: the second
// process's CREATE DATABASE failed, "already exists", as a second run on
// one external server did.)
func TestProcessesShareAServer(t *testing.T) {
	srv := pgtest.Shared(t)
	ctx := context.Background()
	setups := 0
	tmpl := pgtest.Template{Name: "shared_check", Setup: func(ctx context.Context, url string) error {
		setups++
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			return err
		}
		defer conn.Close(ctx)
		_, err = conn.Exec(ctx, `CREATE TABLE marks (n int)`)
		return err
	}}
	templates := func() []string {
		conn, err := pgx.Connect(ctx, pgtest.Admin(srv))
		require.NoError(t, err)
		defer conn.Close(ctx)
		rows, err := conn.Query(ctx, `SELECT datname FROM pg_database WHERE datname LIKE 'tmpl_shared_check_%' ORDER BY datname`)
		require.NoError(t, err)
		names, err := pgx.CollectRows(rows, pgx.RowTo[string])
		require.NoError(t, err)
		return names
	}

	before := templates() // another run's, if it ended before dropping them
	a, b := pgtest.OtherProcess(srv), pgtest.OtherProcess(srv)
	for _, s := range []*pgtest.Server{a, b, a} {
		url := s.NewDatabase(t, tmpl)
		conn, err := pgx.Connect(ctx, url)
		require.NoError(t, err)
		_, err = conn.Exec(ctx, `INSERT INTO marks VALUES (1)`)
		require.NoError(t, err, "the database is a copy of the migrated template")
		require.NoError(t, conn.Close(ctx))
	}
	assert.Equal(t, 2, setups, "one template per process, set up once")
	assert.Len(t, templates(), len(before)+2)

	require.NoError(t, pgtest.DropTemplates(ctx, a))
	require.NoError(t, pgtest.DropTemplates(ctx, b))
	assert.Equal(t, before, templates(), "each process dropped its own")
}
