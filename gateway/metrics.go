package gateway

import (
	"errors"
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
	m.attempts.WithLabelValues(t.Provider, t.Model, string(outcome)).Inc()
	m.cost.WithLabelValues(t.Provider, t.Model, string(source)).Add(cost.InexactFloat64())
	for _, k := range []struct {
		kind string
		n    int64
	}{{"input", u.Input}, {"output", u.Output}, {"reasoning", u.Reasoning}, {"cache_read", u.CacheRead}, {"cache_write", u.CacheWrite}, {"cache_write_1h", u.CacheWrite1h}} {
		if k.n > 0 {
			m.tokens.WithLabelValues(t.Provider, t.Model, k.kind).Add(float64(k.n))
		}
	}
	m.upstream.WithLabelValues(t.Provider).Observe(d.Seconds())
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
	m.requests.WithLabelValues(route, outcome).Inc()
	m.latency.WithLabelValues(route).Observe(d.Seconds())
}

func (m *Metrics) breakerState(ev BreakerEvent) {
	if m == nil {
		return
	}
	v := map[string]float64{"closed": 0, "half_open": 1, "open": 2}[ev.To]
	m.breaker.WithLabelValues(ev.Provider, ev.Model).Set(v)
}
