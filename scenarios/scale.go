package scenarios

import (
	"maps"
	"time"

	"github.com/brownout-dev/brownout/fakeprovider"
)

// Scaled returns a copy of sc that runs speed times faster in real time:
// every duration (the run, the timeline, latencies, Retry-After, breaker
// and retry timings, budget windows) is divided by speed and the traffic
// rate multiplied by it. The expectations stay in scenario time: run it
// with Options.Speed set to the same factor, and the report converts back.
// speed 1 returns sc unchanged.
func (sc *Scenario) Scaled(speed float64) *Scenario {
	if speed == 1 || speed <= 0 {
		return sc
	}
	d := func(x time.Duration) time.Duration { return time.Duration(float64(x) / speed) }
	out := *sc
	out.Duration = d(sc.Duration)
	out.Providers = map[string]fakeprovider.Config{}
	for name, p := range sc.Providers {
		p.Models = maps.Clone(p.Models)
		for m, model := range p.Models {
			model.TTFTms = scaleDist(model.TTFTms, speed)
			model.PerTokenMs = scaleDist(model.PerTokenMs, speed)
			p.Models[m] = model
		}
		out.Providers[name] = p
	}
	out.Faults = nil
	for _, f := range sc.Faults {
		f.At, f.For = d(f.At), d(f.For)
		f.Delay, f.RetryAfter = d(f.Delay), d(f.RetryAfter)
		out.Faults = append(out.Faults, f)
	}
	b := sc.Gateway.Breaker
	b.Interval, b.OpenFor = d(b.Interval), d(b.OpenFor)
	b.Providers = maps.Clone(b.Providers)
	for name, s := range b.Providers {
		s.Interval, s.OpenFor = d(s.Interval), d(s.OpenFor)
		b.Providers[name] = s
	}
	out.Gateway.Breaker = b
	r := sc.Gateway.Retry
	r.BaseBackoff, r.MaxBackoff, r.AttemptTimeout, r.Deadline = d(r.BaseBackoff), d(r.MaxBackoff), d(r.AttemptTimeout), d(r.Deadline)
	out.Gateway.Retry = r
	out.Gateway.Budgets = maps.Clone(sc.Gateway.Budgets)
	for t, bs := range out.Gateway.Budgets {
		bs.Window = d(bs.Window)
		out.Gateway.Budgets[t] = bs
	}
	tr := sc.Traffic
	tr.Rate *= speed
	tr.RateCurve = nil
	for _, p := range sc.Traffic.RateCurve {
		tr.RateCurve = append(tr.RateCurve, RatePoint{At: d(p.At), Rate: p.Rate * speed})
	}
	out.Traffic = tr
	return &out
}

func scaleDist(x fakeprovider.Dist, speed float64) fakeprovider.Dist {
	x.Value /= speed
	x.Min /= speed
	x.Max /= speed
	x.Mean /= speed
	x.Stddev /= speed
	x.Median /= speed
	return x
}
