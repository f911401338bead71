package fakeprovider

import "github.com/brownout-dev/brownout/internal/strictyaml"

// FaultLatency adds Delay to the time to first token: a latency spike.
const FaultLatency FaultKind = "latency"

func init() {
	registerFault(FaultLatency, faultSpec{
		validate: func(f *Fault) error {
			if f.Delay <= 0 {
				return strictyaml.Errorf("delay", "latency needs a positive delay, got %s", f.Delay)
			}
			return nil
		},
		apply: func(p *plan, f *Fault, _ *faultState, _ faultInput) {
			p.extraTTFT += f.Delay
		},
	})
}
