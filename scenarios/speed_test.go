//go:build measure && !race

package scenarios_test

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/brownout-dev/brownout/scenarios"
)

// TestVirtualTimeSpeed measures how fast virtual time runs: gemini-outage
// stretched to 30 minutes at 20 requests/s, in simulated seconds per wall
// second. It is a measurement, written as a test because synctest bubbles
// exist only under *testing.T (a benchmark cannot open one). It is built
// only with the measure tag, on an otherwise idle machine, and without
// -race, whose slowdown is not the figure:
//
//	go test -tags measure -run TestVirtualTimeSpeed -v ./scenarios/
func TestVirtualTimeSpeed(t *testing.T) {
	sc, err := scenarios.LoadLibrary("gemini-outage")
	require.NoError(t, err)
	sc.Duration = 30 * time.Minute
	sc.Traffic.Rate = 20
	for range 2 {
		wall := time.Now()
		var rep *scenarios.Report
		synctest.Test(t, func(t *testing.T) {
			rep, err = scenarios.Execute(context.Background(), sc, scenarios.Options{})
			require.NoError(t, err)
		})
		elapsed := time.Since(wall)
		speed := sc.Duration.Seconds() / elapsed.Seconds()
		t.Logf("gemini-outage, 30m at 20 req/s (%d requests): %s wall, %.0f simulated seconds per wall second", rep.Requests.Sent, elapsed.Round(time.Millisecond), speed)
		require.GreaterOrEqual(t, speed, 200.0, "virtual time runs slower than 200x real time")
	}
}
