package fakeprovider

import "github.com/brownout-dev/brownout/internal/strictyaml"

// FaultUnreportedUsage bills Tokens reasoning tokens that the response's
// usage never mentions: thinking the vendor ran and charged at the output
// rate but did not report, the drift a gateway's ledger cannot see and
// only the vendor's usage and cost reports show. The answer is unchanged.
const FaultUnreportedUsage FaultKind = "unreported_usage"

func init() {
	registerFault(FaultUnreportedUsage, faultSpec{
		validate: func(f *Fault) error {
			if f.Tokens <= 0 {
				return strictyaml.Errorf("tokens", "unreported_usage needs a positive number of tokens, got %d", f.Tokens)
			}
			return nil
		},
		apply: func(p *plan, f *Fault, _ *faultState, _ faultInput) {
			p.unreported += f.Tokens
		},
	})
}
