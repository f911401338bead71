package fakeprovider

import "github.com/brownout-dev/brownout/internal/strictyaml"

// FaultStall stops a stream after AfterEvents events (default 1, the first
// chunk) and sends nothing more, keeping the connection open, until the
// client gives up or the fake closes: a stall mid-answer, which only an
// idle timeout between chunks ends. The invoice bills the tokens sent
// before the stall. A non-streamed request hangs as under FaultHang.
const FaultStall FaultKind = "stall"

func init() {
	registerFault(FaultStall, faultSpec{
		validate: func(f *Fault) error {
			if f.AfterEvents < 0 {
				return strictyaml.Errorf("after_events", "must not be negative, got %d", f.AfterEvents)
			}
			return nil
		},
		apply: func(p *plan, f *Fault, _ *faultState, in faultInput) {
			if !in.stream {
				p.hang = true
				return
			}
			p.stallAfter = max(f.AfterEvents, 1)
		},
	})
}
