package fakeprovider

import "github.com/brownout-dev/brownout/internal/strictyaml"

// FaultReasoningInflation multiplies the reasoning tokens a model spends by
// Factor: the same answer, thought about longer, billed as output.
const FaultReasoningInflation FaultKind = "reasoning_inflation"

func init() {
	registerFault(FaultReasoningInflation, faultSpec{
		validate: func(f *Fault) error {
			if f.Factor <= 0 {
				return strictyaml.Errorf("factor", "reasoning_inflation needs a positive factor, got %v", f.Factor)
			}
			return nil
		},
		apply: func(p *plan, f *Fault, _ *faultState, _ faultInput) {
			if p.inflation == 0 {
				p.inflation = 1
			}
			p.inflation *= f.Factor
		},
	})
}
