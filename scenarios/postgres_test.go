package scenarios_test

import (
	"context"
	"testing"
	"testing/synctest"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brownout-dev/brownout/gateway/ledger"
	"github.com/brownout-dev/brownout/internal/pgtest"
	"github.com/brownout-dev/brownout/scenarios"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// TestLibraryScenariosPassOnPostgres runs every library scenario in virtual
// time with the ledger in the containerized Postgres: the expectations,
// reconciliation included, hold against the real database too. (Queries
// are real network I/O: virtual time waits for them.)
func TestLibraryScenariosPassOnPostgres(t *testing.T) {
	for _, name := range scenarios.Library() {
		t.Run(name, func(t *testing.T) {
			url := pgtest.New(t, pgtest.Template{Name: "ledger", Setup: ledger.Migrate})
			sc, err := scenarios.LoadLibrary(name)
			require.NoError(t, err)
			var rep *scenarios.Report
			synctest.Test(t, func(t *testing.T) {
				pool, err := pgxpool.New(context.Background(), url)
				require.NoError(t, err)
				defer pool.Close()
				rep, err = scenarios.Execute(context.Background(), sc, scenarios.Options{Store: ledger.NewPostgresStore(pool)})
				require.NoError(t, err)
			})
			for _, c := range rep.Checks {
				assert.True(t, c.Pass, "%s: want %s; observed %s", c.Name, c.Want, c.Observed)
			}
			assert.True(t, rep.Passed)
		})
	}
}
