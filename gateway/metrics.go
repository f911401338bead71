package gateway

import (
	"errors"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/shopspring/decimal"

	"github.com/brownout-dev/brownout/gateway/ledger"
	"github.com/brownout-dev/brownout/gateway/llm"
)

// Metrics are the gateway's Prometheus metrics. A nil *Metrics records
// nothing. Create it with NewMetrics and serve the registry at /metrics.
type Metrics struct {
	requests   *prometheus.CounterVec
	attempts   *prometheus.CounterVec
	cost       *prometheus.CounterVec
	tokens     *prometheus.CounterVec
	latency    *prometheus.HistogramVec
	upstream   *prometheus.HistogramVec
	breaker    *prometheus.GaugeVec
	refused    *prometheus.CounterVec
	queueDepth prometheus.GaugeFunc

	// The series every request and attempt updates, by their label
	// values, once they exist (children).
	requestsOf, attemptsOf, costOf, tokensOf children[prometheus.Counter]
	latencyOf, upstreamOf                    children[prometheus.Observer]
}

// children caches a vector's series by their label values (at most three;
// fewer are ""). A vector's own lookup hashes and checks every label value
// on every call, seven times a request; this is one map read under a read
// lock. Its keys are the vectors' own series (configured routes and
// targets; outcomes, usage sources and kinds of tokens of fixed sets), so
// it is bounded as they are.
type children[T any] struct {
	mu   sync.RWMutex
	of   map[[3]string]T
	with func(...string) T // the vector's WithLabelValues
	n    int               // its number of labels
}

func newChildren[T any](n int, with func(...string) T) children[T] {
	return children[T]{of: map[[3]string]T{}, with: with, n: n}
}

// get is the series of the label values lvs.
func (c *children[T]) get(lvs ...string) T {
	var k [3]string
	copy(k[:], lvs)
	c.mu.RLock()
	v, ok := c.of[k]
	c.mu.RUnlock()
	if ok {
		return v
	}
	return c.create(k)
}

// create makes the series of k (the vector returns it if it exists).
func (c *children[T]) create(k [3]string) T {
	v := c.with(k[:c.n]...)
	c.mu.Lock()
	c.of[k] = v
	c.mu.Unlock()
	return v
}

// NewMetrics registers the gateway's metrics on reg. queueDepth, when not
// nil, reports the ledger writer's queue depth.
func NewMetrics(reg prometheus.Registerer, queueDepth func() float64) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "brownout_requests_total",
			Help: "Client requests by route and outcome."}, []string{"route", "outcome"}),
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "brownout_attempts_total",
			Help: "Upstream attempts by provider, model and outcome."}, []string{"provider", "model", "outcome"}),
		// The ledger holds the exact cost; this counter is its float view for dashboards.
		cost: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "brownout_cost_usd_total",
			Help: "Metered cost in USD (approximate; the ledger is exact), by how the usage is known: reported by the vendor or estimated by the gateway."}, []string{"provider", "model", "usage_source"}),
		tokens: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "brownout_tokens_total",
			Help: "Tokens by provider, model and kind (input, output, reasoning, cache_read, cache_write, cache_write_1h)."}, []string{"provider", "model", "kind"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "brownout_request_duration_seconds",
			Help: "Client request latency by route.", Buckets: prometheus.ExponentialBuckets(0.005, 2, 14)}, []string{"route"}),
		upstream: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "brownout_attempt_duration_seconds",
			Help: "Upstream attempt latency by provider.", Buckets: prometheus.ExponentialBuckets(0.005, 2, 14)}, []string{"provider"}),
	}
	m.breaker = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "brownout_breaker_state",
		Help: "Circuit breaker state by provider (and model for per-model breakers): 0 closed, 1 half-open, 2 open."}, []string{"provider", "model"})
	m.refused = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "brownout_ledger_refused_total",
		Help: "Attempts the ledger refused to record, by reason (invalid, closed, spool); each is kept as a dead letter."}, []string{"reason"})
	reg.MustRegister(m.requests, m.attempts, m.cost, m.tokens, m.latency, m.upstream, m.breaker, m.refused)
	m.requestsOf, m.attemptsOf = newChildren(2, m.requests.WithLabelValues), newChildren(3, m.attempts.WithLabelValues)
	m.costOf, m.tokensOf = newChildren(3, m.cost.WithLabelValues), newChildren(3, m.tokens.WithLabelValues)
	m.latencyOf, m.upstreamOf = newChildren(1, m.latency.WithLabelValues), newChildren(1, m.upstream.WithLabelValues)
	if queueDepth != nil {
		m.queueDepth = prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "brownout_ledger_queue_depth",
			Help: "Attempts waiting in the ledger writer's queue."}, queueDepth)
		reg.MustRegister(m.queueDepth)
	}
	return m
}

func (m *Metrics) attempt(t Target, outcome ledger.Outcome, source ledger.UsageSource, u llm.Usage, cost decimal.Decimal, d time.Duration) {
	if m == nil {
		return
	}
	m.attemptsOf.get(t.Provider, t.Model, string(outcome)).Inc()
	m.costOf.get(t.Provider, t.Model, string(source)).Add(cost.InexactFloat64())
	for _, k := range []struct {
		kind string
		n    int64
	}{{"input", u.Input}, {"output", u.Output}, {"reasoning", u.Reasoning}, {"cache_read", u.CacheRead}, {"cache_write", u.CacheWrite}, {"cache_write_1h", u.CacheWrite1h}} {
		if k.n > 0 {
			m.tokensOf.get(t.Provider, t.Model, k.kind).Add(float64(k.n))
		}
	}
	m.upstreamOf.get(t.Provider).Observe(d.Seconds())
}

// ledgerRefused counts an attempt the ledger's Record refused.
func (m *Metrics) ledgerRefused(err error) {
	if m == nil {
		return
	}
	reason := "spool"
	switch {
	case errors.Is(err, ledger.ErrInvalid):
		reason = "invalid"
	case errors.Is(err, ledger.ErrClosed):
		reason = "closed"
	}
	m.refused.WithLabelValues(reason).Inc()
}

func (m *Metrics) request(route, outcome string, d time.Duration) {
	if m == nil {
		return
	}
	m.requestsOf.get(route, outcome).Inc()
	m.latencyOf.get(route).Observe(d.Seconds())
}

func (m *Metrics) breakerState(ev BreakerEvent) {
	if m == nil {
		return
	}
	v := map[string]float64{"closed": 0, "half_open": 1, "open": 2}[ev.To]
	m.breaker.WithLabelValues(ev.Provider, ev.Model).Set(v)
}
