package fakeprovider

// FaultHang sends nothing, not even headers, until the client gives up or
// the fake closes.
const FaultHang FaultKind = "hang"

func init() {
	registerFault(FaultHang, faultSpec{
		apply: func(p *plan, _ *Fault, _ *faultState, _ faultInput) {
			p.hang = true
		},
	})
}
