package fakeprovider

import "github.com/brownout-dev/brownout/internal/strictyaml"

// FaultOutage takes the whole fake down: new connections are closed as soon
// as they are accepted (over the in-memory transport, dialing fails with
// "connection refused"), and requests on connections already open are cut
// without a response. It is connection-level, so it takes no model filter.
const FaultOutage FaultKind = "outage"

func init() {
	registerFault(FaultOutage, faultSpec{
		validate: func(f *Fault) error {
			if len(f.Models) > 0 {
				return strictyaml.Errorf("models", "an outage takes the whole provider down; it has no model filter")
			}
			return nil
		},
		apply: func(p *plan, _ *Fault, _ *faultState, _ faultInput) {
			p.abort = true
		},
	})
}
