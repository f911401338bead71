package fakeprovider

import (
	"time"

	"github.com/brownout-dev/brownout/internal/strictyaml"
)

// FaultRateLimit answers 429 in the vendor's envelope, asking the client to
// wait RetryAfter (default 1s): retry-after and retry-after-ms headers for
// Anthropic and OpenAI, a google.rpc.RetryInfo retryDelay for Gemini.
const FaultRateLimit FaultKind = "rate_limit"

func init() {
	registerFault(FaultRateLimit, faultSpec{
		validate: func(f *Fault) error {
			if f.RetryAfter < 0 {
				return strictyaml.Errorf("retry_after", "must not be negative, got %s", f.RetryAfter)
			}
			return nil
		},
		apply: func(p *plan, f *Fault, _ *faultState, _ faultInput) {
			wait := f.RetryAfter
			if wait == 0 {
				wait = time.Second
			}
			if p.reject != nil {
				return
			}
			p.reject = &apiError{status: 429, kind: errRateLimit, code: "rate_limit_exceeded", retryAfter: wait,
				msg: "Rate limit exceeded: too many requests. Please retry after the time in the retry-after header."}
		},
	})
}
