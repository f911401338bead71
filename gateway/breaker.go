package gateway

import (
	"sync"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/brownout-dev/brownout/gateway/llm"
)

// BreakerSettings configure one circuit breaker (sony/gobreaker). The zero
// value of each field means the default in its comment.
type BreakerSettings struct {
	// ConsecutiveFailures trips the breaker after that many breaker
	// failures in a row (default 5). Set FailureRatio to trip on a ratio
	// instead.
	ConsecutiveFailures uint32 `yaml:"consecutive_failures"`
	// FailureRatio trips the breaker when failures/requests reaches it,
	// once MinRequests requests were counted in Interval (0: use
	// ConsecutiveFailures).
	FailureRatio float64 `yaml:"failure_ratio"`
	MinRequests  uint32  `yaml:"min_requests"` // default 10
	// Interval is the closed state's counting window (default 60s).
	Interval time.Duration `yaml:"interval"`
	// OpenFor is how long the breaker stays open before half-open (default 30s).
	OpenFor time.Duration `yaml:"open_for"`
	// HalfOpenProbes is how many requests half-open admits (default 1).
	HalfOpenProbes uint32 `yaml:"half_open_probes"`
	// PerModel keeps one breaker per provider+model instead of per provider.
	PerModel bool `yaml:"per_model"`
}

func (s BreakerSettings) withDefaults() BreakerSettings {
	if s.ConsecutiveFailures == 0 {
		s.ConsecutiveFailures = 5
	}
	if s.MinRequests == 0 {
		s.MinRequests = 10
	}
	if s.Interval == 0 {
		s.Interval = time.Minute
	}
	if s.OpenFor == 0 {
		s.OpenFor = 30 * time.Second
	}
	if s.HalfOpenProbes == 0 {
		s.HalfOpenProbes = 1
	}
	return s
}

// BreakerEvent is one state change of a breaker.
type BreakerEvent struct {
	Time     time.Time `json:"time"`
	Provider string    `json:"provider"`
	Model    string    `json:"model,omitempty"` // set for per-model breakers
	From     string    `json:"from"`            // closed, open, half_open
	To       string    `json:"to"`
	// Counts are the breaker's counts when it last judged a failure: what
	// tripped it, for a transition to open.
	Requests             uint32 `json:"requests"`
	TotalFailures        uint32 `json:"total_failures"`
	ConsecutiveFailures  uint32 `json:"consecutive_failures"`
	ConsecutiveSuccesses uint32 `json:"consecutive_successes"`
}

// stateName renders a gobreaker state as the events spell it.
func stateName(s gobreaker.State) string {
	switch s {
	case gobreaker.StateOpen:
		return "open"
	case gobreaker.StateHalfOpen:
		return "half_open"
	}
	return "closed"
}

// breakers holds the gateway's circuit breakers and publishes their
// transitions. OnStateChange runs under a breaker's mutex, so it only
// builds the event and hands it to a buffered channel; a goroutine fans it
// out to subscribers (never back into a breaker).
type breakers struct {
	settings map[string]BreakerSettings // by provider; "" is the default
	now      func() time.Time

	mu   sync.Mutex
	byID map[string]*breaker
	subs []chan<- BreakerEvent

	events    chan BreakerEvent
	done      chan struct{} // closed by close: fanOut returns
	stopped   chan struct{} // closed by fanOut as it returns
	closeOnce sync.Once
}

type breaker struct {
	cb              *gobreaker.TwoStepCircuitBreaker[struct{}]
	provider, model string
	last            gobreaker.Counts // the counts ReadyToTrip last saw; guarded by the breaker's own mutex
}

func newBreakers(settings map[string]BreakerSettings, now func() time.Time) *breakers {
	b := &breakers{settings: settings, now: now, byID: map[string]*breaker{},
		events: make(chan BreakerEvent, 1024), done: make(chan struct{}), stopped: make(chan struct{})}
	go b.fanOut()
	return b
}

// fanOut delivers events to subscribers; it exits when close is called,
// also from inside a send to a subscriber that stopped reading.
func (b *breakers) fanOut() {
	defer close(b.stopped)
	for {
		select {
		case ev := <-b.events:
			b.mu.Lock()
			subs := b.subs
			b.mu.Unlock()
			for _, s := range subs {
				select {
				case s <- ev:
				case <-b.done:
					return
				}
			}
		case <-b.done:
			return
		}
	}
}

// close stops fanOut and waits for it: after close, no subscriber channel
// is written to, so its owner may close it.
func (b *breakers) close() {
	b.closeOnce.Do(func() { close(b.done) })
	<-b.stopped
}

func (b *breakers) subscribe(ch chan<- BreakerEvent) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.subs = append(b.subs, ch)
}

// get returns the breaker of a target, creating it on first use.
func (b *breakers) get(t Target) *breaker {
	s, ok := b.settings[t.Provider]
	if !ok {
		s = b.settings[""]
	}
	s = s.withDefaults()
	id := t.Provider
	model := ""
	if s.PerModel {
		id, model = t.String(), t.Model
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if br, ok := b.byID[id]; ok {
		return br
	}
	br := &breaker{provider: t.Provider, model: model}
	br.cb = gobreaker.NewTwoStepCircuitBreaker[struct{}](gobreaker.Settings{
		Name:        id,
		MaxRequests: s.HalfOpenProbes,
		Interval:    s.Interval,
		Timeout:     s.OpenFor,
		ReadyToTrip: func(c gobreaker.Counts) bool {
			br.last = c
			if s.FailureRatio > 0 {
				return c.Requests >= s.MinRequests && float64(c.TotalFailures)/float64(c.Requests) >= s.FailureRatio
			}
			return c.ConsecutiveFailures >= s.ConsecutiveFailures
		},
		OnStateChange: func(_ string, from, to gobreaker.State) {
			ev := BreakerEvent{Time: b.now(), Provider: br.provider, Model: br.model, From: stateName(from), To: stateName(to),
				Requests: br.last.Requests, TotalFailures: br.last.TotalFailures,
				ConsecutiveFailures: br.last.ConsecutiveFailures, ConsecutiveSuccesses: br.last.ConsecutiveSuccesses}
			select {
			case b.events <- ev:
			default: // a subscriber that stopped reading must not block the breaker
			}
		},
		// The error table decides (llm.Class). gobreaker asks IsExcluded
		// first: throttling (the target cools down instead) and a client
		// leaving say nothing about the provider. Of the rest, what is not
		// a breaker failure (a client error: the provider answered
		// correctly) is a success.
		IsExcluded:   func(err error) bool { return llm.Classify(nil, err).BreakerNeutral() },
		IsSuccessful: func(err error) bool { return !llm.Classify(nil, err).BreakerFailure() },
	})
	b.byID[id] = br
	return br
}

// state returns the breaker state name of a target.
func (b *breakers) state(t Target) string { return stateName(b.get(t).cb.State()) }
