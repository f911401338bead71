package fakeprovider

import "github.com/brownout-dev/brownout/internal/strictyaml"

// FaultNoTerminal ends a stream after its last data, usage included, but
// without the vendor's terminal marker: OpenAI's data: [DONE], Anthropic's
// message_stop. Some OpenAI-compatible servers never send [DONE]; a client
// that has the finish reason and the usage has the whole answer. Gemini's
// last chunk is its own terminal (finishReason and usageMetadata), so its
// streams are unchanged. Billed as complete.
const FaultNoTerminal FaultKind = "no_terminal"

// FaultSlowBody sends the body at BytesPerSecond: a plain answer in small
// pieces, a stream's events each after the time its bytes take. Every
// byte arrives, slowly; only a timeout on the whole call (or between
// events, when one event takes longer than it) ends it early.
const FaultSlowBody FaultKind = "slow_body"

func init() {
	registerFault(FaultNoTerminal, faultSpec{
		apply: func(p *plan, _ *Fault, _ *faultState, in faultInput) {
			p.noTerminal = in.vendor != Gemini
		},
	})
	registerFault(FaultSlowBody, faultSpec{
		validate: func(f *Fault) error {
			if f.BytesPerSecond <= 0 {
				return strictyaml.Errorf("bytes_per_second", "slow_body needs a positive bytes_per_second, got %d", f.BytesPerSecond)
			}
			return nil
		},
		apply: func(p *plan, f *Fault, _ *faultState, _ faultInput) {
			p.bytesPerSecond = f.BytesPerSecond
		},
	})
}
