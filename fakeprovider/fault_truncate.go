package fakeprovider

import "github.com/brownout-dev/brownout/internal/strictyaml"

// FaultTruncate ends a stream cleanly after AfterEvents events, before the
// final events that carry the stop reason and the final usage (message_stop,
// [DONE], the last Gemini chunk): the HTTP response is complete, the stream
// is not, and only a client that checks for the terminal event notices. A
// non-streamed body is cut to its first half with a matching length. The
// invoice bills the tokens sent before the cut.
const FaultTruncate FaultKind = "truncate"

func init() {
	registerFault(FaultTruncate, faultSpec{
		validate: func(f *Fault) error {
			if f.AfterEvents < 0 {
				return strictyaml.Errorf("after_events", "must not be negative, got %d", f.AfterEvents)
			}
			return nil
		},
		apply: func(p *plan, f *Fault, _ *faultState, _ faultInput) {
			p.truncateAfter = f.AfterEvents
		},
	})
}
