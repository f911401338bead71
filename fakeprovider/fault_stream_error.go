package fakeprovider

import "github.com/brownout-dev/brownout/internal/strictyaml"

// FaultStreamError sends a 200 stream and, after AfterEvents events, the
// vendor's error event (Anthropic `event: error`, an error object in a
// data line for OpenAI and Gemini) of Status (default 529 for Anthropic,
// 503 otherwise), then ends. Non-streamed requests are not affected.
const FaultStreamError FaultKind = "stream_error"

func init() {
	registerFault(FaultStreamError, faultSpec{
		validate: func(f *Fault) error {
			if f.AfterEvents < 0 {
				return strictyaml.Errorf("after_events", "must not be negative, got %d", f.AfterEvents)
			}
			switch f.Status {
			case 0, 500, 503, 529:
				return nil
			}
			return strictyaml.Errorf("status", "must be 500, 503 or 529, got %d", f.Status)
		},
		apply: func(p *plan, f *Fault, _ *faultState, in faultInput) {
			if in.stream {
				p.streamErrorAfter = f.AfterEvents
				p.streamErrorStatus = f.Status
			}
		},
	})
}
