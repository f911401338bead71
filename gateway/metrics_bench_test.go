package gateway

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// BenchmarkSeriesLookup updates the seven series a request updates, each
// found by its vector's own lookup ("vector", as the gateway did) and by
// children, the cache Metrics keeps.
//
//	go test -run '^$' -bench SeriesLookup -benchmem ./gateway/
func BenchmarkSeriesLookup(b *testing.B) {
	m := NewMetrics(prometheus.NewRegistry(), nil)
	b.Run("vector", func(b *testing.B) {
		for range b.N {
			m.attempts.WithLabelValues("openai", "gpt-4o-mini", "ok").Inc()
			m.cost.WithLabelValues("openai", "gpt-4o-mini", "reported").Add(0.000012)
			m.tokens.WithLabelValues("openai", "gpt-4o-mini", "input").Add(20)
			m.tokens.WithLabelValues("openai", "gpt-4o-mini", "output").Add(1)
			m.upstream.WithLabelValues("openai").Observe(0.2)
			m.requests.WithLabelValues("chat", "ok").Inc()
			m.latency.WithLabelValues("chat").Observe(0.2)
		}
	})
	b.Run("children", func(b *testing.B) {
		for range b.N {
			m.attemptsOf.get("openai", "gpt-4o-mini", "ok").Inc()
			m.costOf.get("openai", "gpt-4o-mini", "reported").Add(0.000012)
			m.tokensOf.get("openai", "gpt-4o-mini", "input").Add(20)
			m.tokensOf.get("openai", "gpt-4o-mini", "output").Add(1)
			m.upstreamOf.get("openai").Observe(0.2)
			m.requestsOf.get("chat", "ok").Inc()
			m.latencyOf.get("chat").Observe(0.2)
		}
	})
}
