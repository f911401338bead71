package fakeprovider

import "github.com/brownout-dev/brownout/internal/strictyaml"

// FaultServerError answers Status (500, 502, 503, 504 or 529; default 500)
// in the vendor's envelope: api_error / overloaded_error for Anthropic,
// INTERNAL / UNAVAILABLE for Gemini, server_error for OpenAI.
const FaultServerError FaultKind = "server_error"

func init() {
	registerFault(FaultServerError, faultSpec{
		validate: func(f *Fault) error {
			switch f.Status {
			case 0, 500, 502, 503, 504, 529:
				return nil
			}
			return strictyaml.Errorf("status", "must be 500, 502, 503, 504 or 529, got %d", f.Status)
		},
		apply: func(p *plan, f *Fault, _ *faultState, _ faultInput) {
			if p.reject != nil {
				return
			}
			status := f.Status
			if status == 0 {
				status = 500
			}
			p.reject = serverError(status)
		},
	})
}
