package gateway_test

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brownout-dev/brownout/gateway"
	"github.com/brownout-dev/brownout/gateway/ledger"
	"github.com/brownout-dev/brownout/internal/pgtest"
)

// TestOpenPoolHoldsItsConnectionsFromTheStart: the pool serve opens has
// every connection it may use established when OpenPool returns, as the
// database itself counts them, so its first requests wait for none; a URL
// that sets pool_min_conns keeps its own; a pool that cannot connect fails
// OpenPool, saying so, without the password.
func TestOpenPoolHoldsItsConnectionsFromTheStart(t *testing.T) {
	url := pgtest.New(t, pgtest.Template{Name: "ledger", Setup: ledger.Migrate})
	ctx := context.Background()

	cfg, err := gateway.PoolConfig(url)
	require.NoError(t, err)
	pool, err := gateway.OpenPool(ctx, cfg)
	require.NoError(t, err)
	assert.Equal(t, int(cfg.MaxConns), pgtest.Connections(t, url), "connections the database has from the pool")
	assert.Equal(t, cfg.MaxConns, pool.Stat().IdleConns(), "idle in the pool, for the first requests")
	pool.Close()

	own := url + " pool_min_conns=1"
	if strings.Contains(url, "://") {
		own = url + map[bool]string{false: "?", true: "&"}[strings.Contains(url, "?")] + "pool_min_conns=1"
	}
	cfg, err = gateway.PoolConfig(own)
	require.NoError(t, err)
	assert.EqualValues(t, 1, cfg.MinConns, "the URL's pool_min_conns")
	pool, err = gateway.OpenPool(ctx, cfg)
	require.NoError(t, err)
	assert.GreaterOrEqual(t, pgtest.Connections(t, url), 1)
	pool.Close()

	cfg, err = gateway.PoolConfig(url)
	require.NoError(t, err)
	cfg.ConnConfig.Password = "not-the-password-3141"
	_, err = gateway.OpenPool(ctx, cfg)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "opening the database pool's")
	assert.NotContains(t, err.Error(), "not-the-password-3141")
}
