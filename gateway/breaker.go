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
	// Missed is how many transitions this subscriber lost just before this
	// one, because it fell subscriberBacklog events behind; 0 when none.
	Missed uint64 `json:"missed,omitempty"`
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
// builds the event and appends it to each subscriber's queue; a goroutine
// per subscriber delivers its queue in order (never back into a breaker),
// so a slow subscriber delays nobody else and loses nothing until it is
// subscriberBacklog events behind, when it is told how many it missed.
type breakers struct {
	settings map[string]BreakerSettings // by provider; "" is the default
	now      func() time.Time

	mu   sync.Mutex
	byID map[string]*breaker

	subsMu sync.Mutex
	subs   []*subscriber

	done      chan struct{} // closed by close: the deliveries return
	delivery  sync.WaitGroup
	closeOnce sync.Once
}

// subscriberBacklog is how many undelivered events a subscriber's queue
// holds; past it, events are counted as missed, not queued.
const subscriberBacklog = 4096

// subscriber is one subscriber's queue of events not yet delivered.
type subscriber struct {
	ch     chan<- BreakerEvent
	mu     sync.Mutex
	queue  []BreakerEvent
	missed uint64
	wake   chan struct{} // a token when the queue gains an event
}

// push queues ev, or counts it missed when the queue is full; it never
// blocks.
func (s *subscriber) push(ev BreakerEvent) {
	s.mu.Lock()
	if len(s.queue) >= subscriberBacklog {
		s.missed++
	} else {
		ev.Missed, s.missed = s.missed, 0
		s.queue = append(s.queue, ev)
	}
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

type breaker struct {
	cb              *gobreaker.TwoStepCircuitBreaker[struct{}]
	provider, model string
	last            gobreaker.Counts // the counts ReadyToTrip last saw; guarded by the breaker's own mutex
}

func newBreakers(settings map[string]BreakerSettings, now func() time.Time) *breakers {
	return &breakers{settings: settings, now: now, byID: map[string]*breaker{}, done: make(chan struct{})}
}

// deliver sends s's queue to its channel in order until close; it returns
// also from inside a send to a subscriber that stopped reading.
func (b *breakers) deliver(s *subscriber) {
	defer b.delivery.Done()
	for {
		s.mu.Lock()
		if len(s.queue) == 0 {
			s.mu.Unlock()
			select {
			case <-s.wake:
				continue
			case <-b.done:
				return
			}
		}
		ev := s.queue[0]
		s.queue = s.queue[1:]
		s.mu.Unlock()
		select {
		case s.ch <- ev:
		case <-b.done:
			return
		}
	}
}

// publish hands ev to every subscriber's queue.
func (b *breakers) publish(ev BreakerEvent) {
	b.subsMu.Lock()
	defer b.subsMu.Unlock()
	for _, s := range b.subs {
		s.push(ev)
	}
}

// close stops the deliveries and waits for them: after close, no
// subscriber channel is written to, so its owner may close it.
func (b *breakers) close() {
	b.subsMu.Lock() // no subscribe between done and Wait
	b.closeOnce.Do(func() { close(b.done) })
	b.subsMu.Unlock()
	b.delivery.Wait()
}

func (b *breakers) subscribe(ch chan<- BreakerEvent) {
	s := &subscriber{ch: ch, wake: make(chan struct{}, 1)}
	b.subsMu.Lock()
	defer b.subsMu.Unlock()
	select {
	case <-b.done:
		return // closed: nothing will be delivered
	default:
	}
	b.subs = append(b.subs, s)
	b.delivery.Add(1)
	go b.deliver(s)
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
			b.publish(ev) // never blocks: each subscriber has its own queue
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
