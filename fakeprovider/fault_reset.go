package fakeprovider

import "github.com/brownout-dev/brownout/internal/strictyaml"

// FaultReset sends a 200 and the first AfterBytes bytes of the body (0: half
// of it, streamed or not), then drops the connection. The client sees an unexpected EOF or a reset mid-body.
const FaultReset FaultKind = "reset"

func init() {
	registerFault(FaultReset, faultSpec{
		validate: func(f *Fault) error {
			if f.AfterBytes < 0 {
				return strictyaml.Errorf("after_bytes", "must not be negative, got %d", f.AfterBytes)
			}
			return nil
		},
		apply: func(p *plan, f *Fault, _ *faultState, _ faultInput) {
			p.resetAfterBytes = f.AfterBytes
		},
	})
}
