package fakeprovider

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/brownout-dev/brownout/internal/strictyaml"
)

// FaultKind names a kind of misbehaviour. Each kind lives in its own file
// (fault_<kind>.go) with its parameters' validation and its effect.
type FaultKind string

// Fault is one injected misbehaviour. It applies to a request when the
// request's time on the fake's clock is in [From, Until), its model is in
// Models (empty: every model), fewer than Count requests have matched it
// before (0: no limit), and a roll of the fake's seeded dice falls under
// Probability. Kind-specific parameters are the fields below Count; each
// kind's file says which it reads.
type Fault struct {
	Kind FaultKind `yaml:"kind" json:"kind"`
	// Probability that a matching request is affected; 0 means 1 (always).
	Probability float64       `yaml:"probability" json:"probability,omitempty"`
	From        time.Duration `yaml:"from" json:"from,omitempty"`
	// Until ends the window; 0 means no end.
	Until  time.Duration `yaml:"until" json:"until,omitempty"`
	Models []string      `yaml:"models" json:"models,omitempty"`
	Count  int           `yaml:"count" json:"count,omitempty"`

	Delay       time.Duration `yaml:"delay" json:"delay,omitempty"`               // latency: added to the time to first token
	RetryAfter  time.Duration `yaml:"retry_after" json:"retry_after,omitempty"`   // rate_limit: the wait the 429 asks for (default 1s)
	Status      int           `yaml:"status" json:"status,omitempty"`             // server_error: 500, 502, 503, 504 or 529 (default 500)
	RPM         int           `yaml:"rpm" json:"rpm,omitempty"`                   // quota: requests per minute
	TPM         int           `yaml:"tpm" json:"tpm,omitempty"`                   // quota: tokens per minute
	AfterEvents int           `yaml:"after_events" json:"after_events,omitempty"` // truncate, stream_error, stall: events sent first
	AfterBytes  int           `yaml:"after_bytes" json:"after_bytes,omitempty"`   // reset: bytes of body sent first (default half)
	Factor      float64       `yaml:"factor" json:"factor,omitempty"`             // reasoning_inflation: multiplier
	Tokens      int           `yaml:"tokens" json:"tokens,omitempty"`             // unreported_usage: reasoning tokens billed, not reported
	// BytesPerSecond is slow_body's pace.
	BytesPerSecond int `yaml:"bytes_per_second" json:"bytes_per_second,omitempty"`
}

// faultSpec is what a kind's file provides.
type faultSpec struct {
	// validate checks the kind's parameters; errors are *strictyaml.FieldError
	// relative to the fault.
	validate func(f *Fault) error
	// apply adds the fault's effect to the plan of one request.
	apply func(p *plan, f *Fault, st *faultState, in faultInput)
}

// faultInput is what a fault may look at to decide its effect.
type faultInput struct {
	now    time.Duration // the fake's clock
	model  string
	tokens int // the request's token estimate: input plus max_tokens when given
	input  int // the request's input tokens
	stream bool
	vendor Vendor
}

var faultKinds = map[FaultKind]faultSpec{}

func registerFault(k FaultKind, spec faultSpec) { faultKinds[k] = spec }

func (f *Fault) validate() error {
	spec, ok := faultKinds[f.Kind]
	if !ok {
		return strictyaml.Errorf("kind", "unknown fault kind %q (want one of %s)", f.Kind, kindList())
	}
	switch {
	case f.Probability < 0 || f.Probability > 1:
		return strictyaml.Errorf("probability", "must be in [0, 1], got %v", f.Probability)
	case f.From < 0:
		return strictyaml.Errorf("from", "must not be negative, got %s", f.From)
	case f.Until != 0 && f.Until <= f.From:
		return strictyaml.Errorf("until", "%s is not after from %s", f.Until, f.From)
	case f.Count < 0:
		return strictyaml.Errorf("count", "must not be negative, got %d", f.Count)
	}
	if spec.validate != nil {
		return spec.validate(f)
	}
	return nil
}

func kindList() string {
	return fmt.Sprint(slices.Sorted(maps.Keys(faultKinds)))
}

// faultState is the run-time state of one configured fault.
type faultState struct {
	matched int
	quota   *tokenBucket // quota faults only
}

// inWindow reports whether now is in the fault's time window.
func (f *Fault) inWindow(now time.Duration) bool {
	return now >= f.From && (f.Until == 0 || now < f.Until)
}

func (f *Fault) appliesToModel(model string) bool {
	if len(f.Models) == 0 {
		return true
	}
	for _, m := range f.Models {
		if m == model {
			return true
		}
	}
	return false
}

// roll decides whether a request in the window is affected. It always draws
// from r when the fault is in its window, so one fault's count running out
// does not shift the dice of the faults after it.
func (f *Fault) roll(st *faultState, r *rand.Rand) bool {
	p := f.Probability
	if p == 0 {
		p = 1
	}
	hit := r.Float64() < p
	if !hit || (f.Count > 0 && st.matched >= f.Count) {
		return false
	}
	st.matched++
	return true
}

// plan is what the faults decided for one request.
type plan struct {
	faults []string // kinds applied, for the journal

	reject       *apiError      // answer with this error instead of generating
	quotaHeaders []quotaView    // rate-limit headers to send, one per quota fault
	quotaBuckets []*tokenBucket // charged with the estimate; settled with actual tokens
	abort        bool           // close the connection without a response (outage)
	hang         bool
	extraTTFT    time.Duration
	inflation    float64 // multiplier of reasoning tokens; 0 means 1
	unreported   int     // reasoning tokens billed that the usage does not report
	noTerminal   bool    // a stream without its terminal marker
	// bytesPerSecond paces the body (0: at once).
	bytesPerSecond int

	// Delivery faults; -1 means off.
	resetAfterBytes   int
	malformedAt       int // event index (0 for a non-streamed body)
	truncateAfter     int
	stallAfter        int
	resetMidEvent     int // cut the stream in the middle of this event (0: off)
	streamErrorAfter  int
	streamErrorStatus int
}

func newPlan() *plan {
	return &plan{resetAfterBytes: -1, malformedAt: -1, truncateAfter: -1, streamErrorAfter: -1, stallAfter: -1}
}

func (p *plan) note(k FaultKind) { p.faults = append(p.faults, string(k)) }
