package fakeprovider

import "github.com/brownout-dev/brownout/internal/strictyaml"

// FaultReset sends a 200 and the first AfterBytes bytes of the body (0: half
// of it, streamed or not), then drops the connection. The client sees an
// unexpected EOF or a reset mid-body. With AfterEvents set, a stream is cut
// in the middle of that event instead (after_events: 3 sends three whole
// events and half the fourth's frame): the client's SSE parser holds a
// partial event when the connection drops.
const FaultReset FaultKind = "reset"

func init() {
	registerFault(FaultReset, faultSpec{
		validate: func(f *Fault) error {
			if f.AfterBytes < 0 {
				return strictyaml.Errorf("after_bytes", "must not be negative, got %d", f.AfterBytes)
			}
			if f.AfterEvents < 0 {
				return strictyaml.Errorf("after_events", "must not be negative, got %d", f.AfterEvents)
			}
			return nil
		},
		apply: func(p *plan, f *Fault, _ *faultState, in faultInput) {
			p.resetAfterBytes = f.AfterBytes
			if f.AfterEvents > 0 && in.stream {
				p.resetAfterBytes, p.resetMidEvent = -1, f.AfterEvents
			}
		},
	})
}
