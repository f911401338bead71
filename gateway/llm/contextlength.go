package llm

import (
	"errors"
	"strings"
)

// ContextLengthExceeded reports whether err is a vendor refusing a prompt
// longer than the model's context window: a 400 that a model with a larger
// window may accept. Each vendor says it its own way: OpenAI with the code
// context_length_exceeded, Anthropic with "prompt is too long", Gemini
// with INVALID_ARGUMENT "The input token count ... exceeds the maximum
// number of tokens allowed".
func ContextLengthExceeded(err error) bool {
	var pe *ProviderError
	if !errors.As(err, &pe) || pe.Status != 400 {
		return false
	}
	m := strings.ToLower(pe.Message)
	return pe.Type == "context_length_exceeded" ||
		strings.Contains(m, "maximum context length") ||
		strings.Contains(m, "prompt is too long") ||
		(strings.Contains(m, "input token count") && strings.Contains(m, "exceeds the maximum"))
}
