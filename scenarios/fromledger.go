package scenarios

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/brownout-dev/brownout/fakeprovider"
	"github.com/brownout-dev/brownout/gateway/ledger"
)

// FromLedger turns a ledger export (JSON lines of ledger.Attempt, as
// `Store.Export` writes them) into a scenario that replays the incident:
//
//   - traffic: the observed request rate, minute by minute (a rate curve),
//     on each route in the mix observed;
//   - routes: each route's targets in the order requests tried them;
//   - providers: per model, the median output tokens, the reasoning tokens
//     (normal, with the observed mean and spread) and the time to answer
//     (lognormal around the observed median) of successful attempts;
//   - faults: per provider and minute, the observed shares of server
//     errors (503), throttling (429) and transport failures (resets, or an
//     outage when nearly every attempt failed), as probabilities on the
//     timeline; equal neighbouring minutes are merged.
//
// The gateway settings (breakers, retries, budgets) are not in the ledger:
// they come from settings, the scenario whose gateway recorded the
// incident or the one to try instead (nil: the defaults).
func FromLedger(r io.Reader, name string, settings *Scenario) (*Scenario, error) {
	var attempts []ledger.Attempt
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for line := 1; sc.Scan(); line++ {
		if len(strings.TrimSpace(sc.Text())) == 0 {
			continue
		}
		var a ledger.Attempt
		if err := json.Unmarshal(sc.Bytes(), &a); err != nil {
			return nil, fmt.Errorf("scenarios: ledger export line %d: %w", line, err)
		}
		attempts = append(attempts, a)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("scenarios: ledger export: %w", err)
	}
	if len(attempts) == 0 {
		return nil, fmt.Errorf("scenarios: ledger export is empty")
	}
	slices.SortFunc(attempts, func(a, b ledger.Attempt) int { return a.StartedAt.Compare(b.StartedAt) })
	t0 := attempts[0].StartedAt
	minute := func(t time.Time) int { return int(t.Sub(t0) / time.Minute) }
	last := minute(attempts[len(attempts)-1].StartedAt)

	out := &Scenario{Name: name, Seed: 1, Duration: time.Duration(last+1) * time.Minute, Providers: map[string]fakeprovider.Config{}}
	if settings != nil {
		out.Gateway, out.Seed = settings.Gateway, settings.Seed
	}
	out.Gateway.Routes = map[string][]string{}

	// Requests: first attempts, their route and per-minute rate.
	perMinute := make([]int, last+1)
	routeSeen := map[string]int{}
	seen := map[string]bool{}
	for _, a := range attempts {
		target := a.Provider + "/" + a.Model
		if !slices.Contains(out.Gateway.Routes[a.Route], target) {
			out.Gateway.Routes[a.Route] = append(out.Gateway.Routes[a.Route], target)
		}
		if seen[a.RequestID] {
			continue
		}
		seen[a.RequestID] = true
		perMinute[minute(a.StartedAt)]++
		routeSeen[a.Route]++
	}
	for m, n := range perMinute {
		rate := float64(n) / 60
		if m == 0 {
			out.Traffic.Rate = rate
		}
		if len(out.Traffic.RateCurve) == 0 || out.Traffic.RateCurve[len(out.Traffic.RateCurve)-1].Rate != rate {
			out.Traffic.RateCurve = append(out.Traffic.RateCurve, RatePoint{At: time.Duration(m) * time.Minute, Rate: rate})
		}
	}
	// The route mix, in whole shares: each route appears in proportion.
	routes := slices.Sorted(maps.Keys(routeSeen))
	g := 0
	for _, r := range routes {
		g = gcd(g, routeSeen[r])
	}
	for _, r := range routes {
		for range min(routeSeen[r]/g, 20) {
			out.Traffic.Routes = append(out.Traffic.Routes, r)
		}
	}

	// Providers: each model's behaviour from its successful attempts.
	type stats struct {
		output, reasoning []float64
		latencyMs         []float64
	}
	byModel := map[string]map[string]*stats{}
	for _, a := range attempts {
		if byModel[a.Provider] == nil {
			byModel[a.Provider] = map[string]*stats{}
		}
		s := byModel[a.Provider][a.Model]
		if s == nil {
			s = &stats{}
			byModel[a.Provider][a.Model] = s
		}
		if a.Outcome == ledger.OutcomeOK {
			s.output = append(s.output, float64(a.Tokens.Output))
			s.reasoning = append(s.reasoning, float64(a.Tokens.Reasoning))
			s.latencyMs = append(s.latencyMs, float64(a.Latency())/float64(time.Millisecond))
		}
	}
	for _, p := range slices.Sorted(maps.Keys(byModel)) {
		cfg := fakeprovider.Config{Vendor: vendorOf(slices.Sorted(maps.Keys(byModel[p]))[0]), Models: map[string]fakeprovider.Model{}}
		for m, s := range byModel[p] {
			model := fakeprovider.Model{Answers: []fakeprovider.Answer{{Text: "OK", Tokens: max(1, int(median(s.output)))}}}
			if mean, sd := meanSD(s.reasoning); mean > 0 {
				model.ReasoningTokens = fakeprovider.Dist{Kind: "normal", Mean: mean, Stddev: sd}
			}
			if med := median(s.latencyMs); med > 0 {
				model.TTFTms = fakeprovider.Dist{Kind: "lognormal", Median: med, Sigma: 0.2}
			}
			cfg.Models[m] = model
		}
		out.Providers[p] = cfg
	}

	// Faults: per provider and minute, the observed error shares.
	type shares struct{ server, throttled, transport float64 }
	for _, p := range slices.Sorted(maps.Keys(byModel)) {
		perMin := make([]shares, last+1)
		counts := make([][4]int, last+1) // all, server, throttled, transport
		for _, a := range attempts {
			// Neither the gateway's refusals, nor the client's doing, nor an
			// attempt its gateway never finished (a crash, or one in flight
			// when the ledger was read) says how the vendor behaved.
			if a.Provider != p || a.Outcome == ledger.OutcomeRejectedBreaker || a.Outcome == ledger.OutcomeRejectedBudget ||
				a.Outcome == ledger.OutcomeCancelled || a.Outcome == ledger.OutcomeClientError || a.Outcome == ledger.OutcomeUnfinished {
				continue
			}
			c := &counts[minute(a.StartedAt)]
			c[0]++
			switch a.Outcome {
			case ledger.OutcomeServerError:
				c[1]++
			case ledger.OutcomeThrottled:
				c[2]++
			case ledger.OutcomeTransportError:
				c[3]++
			}
		}
		for m, c := range counts {
			if c[0] == 0 {
				continue
			}
			n := float64(c[0])
			perMin[m] = shares{server: round2(float64(c[1]) / n), throttled: round2(float64(c[2]) / n), transport: round2(float64(c[3]) / n)}
		}
		emit := func(kind fakeprovider.FaultKind, get func(shares) float64, build func(p float64) fakeprovider.Fault, preceding func(shares) float64) {
			for m := 0; m <= last; {
				v := get(perMin[m])
				end := m + 1
				for end <= last && get(perMin[end]) == v {
					end++
				}
				if v > 0 {
					// Faults are rolled in order; the ones before take their share first.
					rest := 1 - preceding(perMin[m])
					f := build(math.Min(1, v/math.Max(rest, 0.01)))
					f.Kind = kind
					out.Faults = append(out.Faults, FaultSpec{Provider: p, At: time.Duration(m) * time.Minute,
						For: time.Duration(end-m) * time.Minute, Fault: f})
				}
				m = end
			}
		}
		none := func(shares) float64 { return 0 }
		emit(fakeprovider.FaultOutage, func(s shares) float64 { return b2f(s.transport >= 0.9) }, func(float64) fakeprovider.Fault { return fakeprovider.Fault{} }, none)
		emit(fakeprovider.FaultServerError, func(s shares) float64 { return s.server },
			func(p float64) fakeprovider.Fault { return fakeprovider.Fault{Status: 503, Probability: p} }, none)
		emit(fakeprovider.FaultRateLimit, func(s shares) float64 { return s.throttled },
			func(p float64) fakeprovider.Fault { return fakeprovider.Fault{RetryAfter: time.Second, Probability: p} },
			func(s shares) float64 { return s.server })
		emit(fakeprovider.FaultReset, func(s shares) float64 {
			if s.transport >= 0.9 {
				return 0
			}
			return s.transport
		}, func(p float64) fakeprovider.Fault { return fakeprovider.Fault{Probability: p} },
			func(s shares) float64 { return s.server + s.throttled })
	}
	out.normalize()
	if err := out.Validate(); err != nil {
		return nil, fmt.Errorf("scenarios: the scenario built from the ledger is not valid: %w", err)
	}
	return out, nil
}

// vendorOf guesses a model's vendor from its name.
func vendorOf(model string) fakeprovider.Vendor {
	switch {
	case strings.HasPrefix(model, "claude"):
		return fakeprovider.Anthropic
	case strings.HasPrefix(model, "gemini"):
		return fakeprovider.Gemini
	}
	return fakeprovider.OpenAI
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

func meanSD(xs []float64) (float64, float64) {
	if len(xs) == 0 {
		return 0, 0
	}
	var sum float64
	for _, x := range xs {
		sum += x
	}
	mean := sum / float64(len(xs))
	var ss float64
	for _, x := range xs {
		ss += (x - mean) * (x - mean)
	}
	return mean, math.Sqrt(ss / float64(len(xs)))
}

func round2(x float64) float64 { return math.Round(x*100) / 100 }

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}
