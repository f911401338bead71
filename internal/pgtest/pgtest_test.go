package pgtest

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestProcessesShareAServer: two test processes on one server (two Servers
// on one maintenance database, as go test's packages or two runs one after
// the other on BROWNOUT_TEST_DATABASE_URL are) each make their own template
// and databases, and each drops its templates at the end, leaving none.
// (Seen red with the template named after the Template alone: the second
// process's CREATE DATABASE failed, "already exists", as a second run on
// one external server did.)
func TestProcessesShareAServer(t *testing.T) {
	srv := Shared(t)
	ctx := context.Background()
	setups := 0
	tmpl := Template{Name: "shared_check", Setup: func(ctx context.Context, url string) error {
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
		conn, err := pgx.Connect(ctx, srv.admin)
		require.NoError(t, err)
		defer conn.Close(ctx)
		rows, err := conn.Query(ctx, `SELECT datname FROM pg_database WHERE datname LIKE 'tmpl_shared_check_%' ORDER BY datname`)
		require.NoError(t, err)
		names, err := pgx.CollectRows(rows, pgx.RowTo[string])
		require.NoError(t, err)
		return names
	}

	a, b := newServer(srv.admin, nil), newServer(srv.admin, nil)
	for _, s := range []*Server{a, b, a} {
		url := s.NewDatabase(t, tmpl)
		conn, err := pgx.Connect(ctx, url)
		require.NoError(t, err)
		_, err = conn.Exec(ctx, `INSERT INTO marks VALUES (1)`)
		require.NoError(t, err, "the database is a copy of the migrated template")
		require.NoError(t, conn.Close(ctx))
	}
	assert.Equal(t, 2, setups, "one template per process, set up once")
	assert.Len(t, templates(), 2)

	require.NoError(t, a.dropTemplates(ctx))
	require.NoError(t, b.dropTemplates(ctx))
	assert.Empty(t, templates(), "each process dropped its own")
}
