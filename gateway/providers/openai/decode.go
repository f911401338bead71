package openai

import (
	"strconv"

	"github.com/brownout-dev/brownout/gateway/llm"
	"github.com/brownout-dev/brownout/gateway/providers/internal/wire"
	"github.com/brownout-dev/brownout/internal/jsonscan"
)

// decodeCompletion decodes a chat completion's body. The common body is
// read by a jsonscan.Scanner, which costs less than Decode on a request that
// finds the caches cold (BenchmarkDecodeCompletionCold); any other goes to
// Decode, which takes the same body to the same completion
// (FuzzDecodeCompletion).
func decodeCompletion(body []byte) (completion, error) {
	return wire.ScanOrDecode(body, scanCompletion)
}

// scanCompletion reads body with a jsonscan.Scanner; false if it declines.
func scanCompletion(body []byte) (completion, bool) {
	var c completion
	s := jsonscan.NewScanner(body)
	for s.Field() {
		switch s.Name() {
		case "id":
			s.Once(0)
			c.ID = s.String()
		case "model":
			s.Once(1)
			c.Model = s.String()
		case "choices":
			s.Once(2)
			if s.Array() {
				c.Choices = []choice{}
				for s.Elem() {
					c.Choices = append(c.Choices, scanChoice(&s))
				}
			}
		case "usage":
			s.Once(3)
			if s.Object() {
				c.Usage = scanUsage(&s)
			}
		default:
			s.Skip("id", "model", "choices", "usage")
		}
	}
	return c, s.End() == nil
}

// scanChoice reads one element of choices.
func scanChoice(s *jsonscan.Scanner) choice {
	var ch choice
	if !s.Object() {
		return ch // null, as Decode reads it
	}
	for s.Field() {
		switch s.Name() {
		case "message":
			s.Once(0)
			ch.Message.Content = scanContent(s)
		case "finish_reason":
			s.Once(1)
			ch.FinishReason = s.String()
		default:
			s.Skip("message", "finish_reason")
		}
	}
	return ch
}

// scanContent reads a message (or a delta) for its content: nil when the
// object or its content is null or absent, as Decode reads them.
func scanContent(s *jsonscan.Scanner) *string {
	if !s.Object() {
		return nil
	}
	var content *string
	for s.Field() {
		if s.Name() != "content" {
			s.Skip("content")
			continue
		}
		s.Once(0)
		if content = nil; !s.Null() {
			c := s.String()
			content = &c
		}
	}
	return content
}

// scanUsage reads an open usage object.
func scanUsage(s *jsonscan.Scanner) *usage {
	u := new(usage)
	for s.Field() {
		switch s.Name() {
		case "prompt_tokens":
			s.Once(0)
			u.PromptTokens = s.Int()
		case "completion_tokens":
			s.Once(1)
			u.CompletionTokens = s.Int()
		case "prompt_tokens_details":
			s.Once(2)
			if s.Object() {
				u.PromptTokensDetails = new(promptDetails)
				for s.Field() {
					if s.Name() != "cached_tokens" {
						s.Skip("cached_tokens")
						continue
					}
					s.Once(0)
					u.PromptTokensDetails.CachedTokens = s.Int()
				}
			}
		case "completion_tokens_details":
			s.Once(3)
			if s.Object() {
				u.CompletionTokensDetails = new(completionDetails)
				for s.Field() {
					if s.Name() != "reasoning_tokens" {
						s.Skip("reasoning_tokens")
						continue
					}
					s.Once(0)
					u.CompletionTokensDetails.ReasoningTokens = s.Int()
				}
			}
		default:
			s.Skip("prompt_tokens", "completion_tokens", "prompt_tokens_details", "completion_tokens_details")
		}
	}
	return u
}

// decodeChunk decodes one event of a stream, as decodeCompletion does an
// answer (FuzzDecodeChunk).
func decodeChunk(data []byte) (chunk, error) { return wire.ScanOrDecode(data, scanChunk) }

// scanChunk reads data with a jsonscan.Scanner; false if it declines.
func scanChunk(data []byte) (chunk, bool) {
	var c chunk
	s := jsonscan.NewScanner(data)
	for s.Field() {
		switch s.Name() {
		case "choices":
			s.Once(0)
			if s.Array() {
				c.Choices = []chunkChoice{}
				for s.Elem() {
					c.Choices = append(c.Choices, scanChunkChoice(&s))
				}
			}
		case "usage":
			s.Once(1)
			if s.Object() {
				c.Usage = scanUsage(&s)
			}
		case "error":
			s.Once(2)
			if s.Object() {
				c.Error = new(chunkError)
				for s.Field() {
					switch s.Name() {
					case "message":
						s.Once(0)
						c.Error.Message = s.StringOrNull()
					case "type":
						s.Once(1)
						c.Error.Type = s.StringOrNull()
					default:
						s.Skip("message", "type")
					}
				}
			}
		default:
			s.Skip("choices", "usage", "error")
		}
	}
	return c, s.End() == nil
}

// scanChunkChoice reads one element of a chunk's choices.
func scanChunkChoice(s *jsonscan.Scanner) chunkChoice {
	var ch chunkChoice
	if !s.Object() {
		return ch // null, as Decode reads it
	}
	for s.Field() {
		switch s.Name() {
		case "delta":
			s.Once(0)
			if content := scanContent(s); content != nil {
				ch.Delta.Content = *content
			}
		case "finish_reason":
			s.Once(1)
			if !s.Null() {
				finish := s.String()
				ch.FinishReason = &finish
			}
		default:
			s.Skip("delta", "finish_reason")
		}
	}
	return ch
}

// appendRequest appends the request body of req, the same object as
// json.Marshal of the adapter's chatRequest (FuzzAppendRequest), without
// reflection, as the answer is read without it.
func appendRequest(b []byte, req *llm.Request, stream bool) []byte {
	b = append(b, `{"model":`...)
	b = jsonscan.AppendQuoted(b, req.Model)
	b = append(b, `,"messages":`...)
	b = wire.AppendMessages(b, req.Messages)
	if req.MaxTokens != 0 {
		b = append(b, `,"max_completion_tokens":`...)
		b = strconv.AppendInt(b, int64(req.MaxTokens), 10)
	}
	if req.Temperature != nil {
		b = append(b, `,"temperature":`...)
		b = strconv.AppendFloat(b, *req.Temperature, 'g', -1, 64)
	}
	if len(req.Stop) > 0 {
		b = append(b, `,"stop":`...)
		b = wire.AppendStrings(b, req.Stop)
	}
	if stream {
		// Always ask for the usage chunk: the gateway meters every stream.
		b = append(b, `,"stream":true,"stream_options":{"include_usage":true}`...)
	}
	return append(b, '}')
}
