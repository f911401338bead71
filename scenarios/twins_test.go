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
		{"thinking-tax", scenarios.Switches{Metering: true}, []string{"ledger equals invoices", "reasoning share", "vendor report drift"}},
		{"partial-stream", scenarios.Switches{Metering: true}, []string{"unmetered spend"}},
		{"partial-stream", scenarios.Switches{MeterTwice: true}, []string{"no double billing"}},
		{"retry-storm-duplicates", scenarios.Switches{MeterTwice: true}, []string{"no double billing", "ledger equals invoices"}},
		{"flapping", scenarios.Switches{BreakerHold: true}, []string{"transitions gemini"}},
		{"thinking-tax", scenarios.Switches{MeterTwice: true}, []string{"cost per request", "ledger equals invoices", "vendor report drift"}},
		{"hidden-reasoning", scenarios.Switches{VendorReports: true}, []string{"vendor report drift seen"}},
		{"budget-exhaustion", scenarios.Switches{Budget: true}, []string{"cost"}},
		{"stall", scenarios.Switches{Timeouts: true}, []string{"latency p50", "latency p99", "final state slow"}},
		{"stall", scenarios.Switches{Breaker: true}, []string{"final state slow"}},
		{"brownout", scenarios.Switches{Metering: true}, []string{"unmetered spend"}},
		{"stalled-streams", scenarios.Switches{Timeouts: true}, []string{"latency p99", "first open openai"}},
		{"stalled-streams", scenarios.Switches{Continuation: true}, []string{"success rate"}},
		{"long-prompts", scenarios.Switches{Fallbacks: true}, []string{"success rate"}},
	}
	covered := map[string]bool{}
	for _, tw := range twins {
		covered[tw.scenario] = true
		t.Run(tw.scenario+"/"+offName(tw.off), func(t *testing.T) {
			t.Parallel()
			sc, err := load(tw.scenario)
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

// stall is a scenario for the expectations no library scenario states
// with a behaviour to switch off: a provider that stops answering (30 s a
// call) must be timed out and failed over (latency), and its breaker must
// stay open to the end (final state).
const stall = `name: stall
seed: 3
duration: 4m
providers:
  slow: {vendor: openai, models: {gpt-4o-mini: {answers: [{text: "Paris", tokens: 1}]}}}
  spare: {vendor: anthropic, models: {claude-haiku-4-5: {answers: [{text: "Paris.", tokens: 2}]}}}
gateway:
  routes: {chat: [slow/gpt-4o-mini, spare/claude-haiku-4-5]}
  breaker: {consecutive_failures: 3, open_for: 10m}
  retry: {max_attempts: 1, attempt_timeout: 2s, deadline: 10s}
traffic: {rate: 2, route: chat}
faults:
  - {provider: slow, kind: latency, delay: 30s, at: 1m}
expect:
  success_rate: 0.99
  latency_p50: 1s
  latency_p99: 3s
  final_state: {slow: open}
`

func load(name string) (*scenarios.Scenario, error) {
	if name == "stall" {
		return scenarios.Parse("stall.yaml", []byte(stall))
	}
	return scenarios.LoadLibrary(name)
}

// TestStallPasses: the stall scenario holds with every behaviour on, so
// its twins fail for the behaviour they switch off.
func TestStallPasses(t *testing.T) {
	sc, err := load("stall")
	require.NoError(t, err)
	scenarios.Run(t, sc)
}

func offName(s scenarios.Switches) string {
	var out []string
	for _, f := range []struct {
		on   bool
		name string
	}{{s.Idempotency, "idempotency"}, {s.Breaker, "breaker"}, {s.Retry, "retry"}, {s.Failover, "failover"}, {s.Budget, "budget"}, {s.Metering, "metering"},
		{s.MeterTwice, "meter-twice"}, {s.Timeouts, "timeouts"}, {s.BreakerHold, "breaker-hold"}, {s.VendorReports, "vendor-reports"}, {s.Fallbacks, "fallbacks"}, {s.Continuation, "continuation"}} {
		if f.on {
			out = append(out, f.name)
		}
	}
	return strings.Join(out, "+")
}
