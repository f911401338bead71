package scenarios_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brownout-dev/brownout/scenarios"
)

// TestSwitchedOffTwinsFail: every library scenario runs once more with the
// gateway behaviour its expectations guard switched off, and must fail,
// for the reason it exists: the named expectations fail. A scenario whose
// expectations pass without the behaviour proves nothing about it.
func TestSwitchedOffTwinsFail(t *testing.T) {
	twins := []struct {
		scenario string
		off      scenarios.Switches
		failing  []string // checks that must fail, by name prefix
	}{
		{"gemini-outage", scenarios.Switches{Failover: true}, []string{"success rate", "success 5m0s..15m0s", "share anthropic"}},
		{"gemini-outage", scenarios.Switches{Breaker: true}, []string{"breaker gemini"}},
		{"brownout", scenarios.Switches{Breaker: true}, []string{"first open openai"}},
		{"flapping", scenarios.Switches{Breaker: true}, []string{"first open gemini"}},
		{"rate-limit-storm", scenarios.Switches{Failover: true}, []string{"success rate"}},
		{"retry-storm-duplicates", scenarios.Switches{Idempotency: true}, []string{"billed per idempotency key", "duplicates replayed"}},
		{"retry-storm-duplicates", scenarios.Switches{Failover: true}, []string{"success rate"}},
		{"budget-exhaustion", scenarios.Switches{Budget: true}, []string{"budgets held"}},
		{"thinking-tax", scenarios.Switches{Metering: true}, []string{"ledger equals invoices", "reasoning share"}},
		{"partial-stream", scenarios.Switches{Metering: true}, []string{"unmetered spend"}},
		{"brownout", scenarios.Switches{Metering: true}, []string{"unmetered spend"}},
	}
	covered := map[string]bool{}
	for _, tw := range twins {
		covered[tw.scenario] = true
		t.Run(tw.scenario+"/"+offName(tw.off), func(t *testing.T) {
			t.Parallel()
			sc, err := scenarios.LoadLibrary(tw.scenario)
			require.NoError(t, err)
			var rep *scenarios.Report
			synctest.Test(t, func(t *testing.T) {
				rep, err = scenarios.Execute(context.Background(), sc, scenarios.Options{Off: tw.off})
				require.NoError(t, err)
			})
			var b bytes.Buffer
			rep.WriteText(&b)
			assert.False(t, rep.Passed, "passed with %s off:\n%s", offName(tw.off), b.String())
			for _, want := range tw.failing {
				var found bool
				for _, c := range rep.Checks {
					if strings.HasPrefix(c.Name, want) {
						found = true
						assert.False(t, c.Pass, "%q passed with %s off: observed %s", c.Name, offName(tw.off), c.Observed)
					}
				}
				assert.True(t, found, "no check %q in the report", want)
			}
		})
	}
	for _, name := range scenarios.Library() {
		assert.True(t, covered[name], "library scenario %s has no switched-off twin", name)
	}
}

func offName(s scenarios.Switches) string {
	var out []string
	for _, f := range []struct {
		on   bool
		name string
	}{{s.Idempotency, "idempotency"}, {s.Breaker, "breaker"}, {s.Retry, "retry"}, {s.Failover, "failover"}, {s.Budget, "budget"}, {s.Metering, "metering"}} {
		if f.on {
			out = append(out, f.name)
		}
	}
	return strings.Join(out, "+")
}
