package fakeprovider

import "fmt"

// FaultContextLength answers 400 as each vendor does for a prompt longer
// than the model's context window, so that a client can tell it from other
// bad requests and send it to a model with a larger window: OpenAI's
// invalid_request_error with code context_length_exceeded (param
// messages), Anthropic's invalid_request_error "prompt is too long",
// Gemini's INVALID_ARGUMENT "The input token count ... exceeds the maximum
// number of tokens allowed". The prompt's size in the message is the
// request's, over a window of one token fewer.
const FaultContextLength FaultKind = "context_length"

func init() {
	registerFault(FaultContextLength, faultSpec{
		apply: func(p *plan, _ *Fault, _ *faultState, in faultInput) {
			if p.reject != nil {
				return
			}
			p.reject = contextLengthError(in.vendor, in.input)
		},
	})
}

// contextLengthError is the vendor's answer to a prompt of tokens tokens
// over its window.
func contextLengthError(v Vendor, tokens int) *apiError {
	limit := max(tokens-1, 0)
	e := &apiError{status: 400, kind: errInvalidRequest}
	switch v {
	case Anthropic:
		e.msg = fmt.Sprintf("prompt is too long: %d tokens > %d maximum", tokens, limit)
	case Gemini:
		e.msg = fmt.Sprintf("The input token count (%d) exceeds the maximum number of tokens allowed (%d).", tokens, limit)
	default:
		e.param, e.code = "messages", "context_length_exceeded"
		e.msg = fmt.Sprintf("This model's maximum context length is %d tokens. However, your messages resulted in %d tokens. Please reduce the length of the messages.", limit, tokens)
	}
	return e
}
