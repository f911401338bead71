package fakeprovider

import "github.com/brownout-dev/brownout/internal/strictyaml"

// FaultMalformed answers 200 with a body that is not valid JSON: a
// non-streamed body is garbled; in a stream, the event at index AfterEvents
// carries garbled JSON. The tokens were generated, so the invoice bills them.
const FaultMalformed FaultKind = "malformed"

func init() {
	registerFault(FaultMalformed, faultSpec{
		validate: func(f *Fault) error {
			if f.AfterEvents < 0 {
				return strictyaml.Errorf("after_events", "must not be negative, got %d", f.AfterEvents)
			}
			return nil
		},
		apply: func(p *plan, f *Fault, _ *faultState, _ faultInput) {
			p.malformedAt = f.AfterEvents
		},
	})
}
