package anthropic

import (
	"strconv"

	"github.com/brownout-dev/brownout/gateway/providers/internal/wire"
	"github.com/brownout-dev/brownout/internal/jsonscan"
)

// decodeMessage decodes a message's body. The common body is read by a
// jsonscan.Scanner, which costs less than Decode on a call that finds the
// caches cold (BenchmarkDecodeMessageCold); any other goes to Decode,
// which takes the same body to the same message (FuzzDecodeMessage).
func decodeMessage(body []byte) (messageResponse, error) {
	return wire.ScanOrDecode(body, scanMessage)
}

// scanMessage reads body with a jsonscan.Scanner; false if it declines.
func scanMessage(body []byte) (messageResponse, bool) {
	var m messageResponse
	s := jsonscan.NewScanner(body)
	for s.Field() {
		switch s.Name() {
		case "id":
			s.Once(0)
			m.ID = s.StringOrNull()
		case "type":
			s.Once(1)
			m.Type = s.StringOrNull()
		case "model":
			s.Once(2)
			m.Model = s.StringOrNull()
		case "stop_reason":
			s.Once(3)
			m.StopReason = s.StringOrNull()
		case "content":
			s.Once(4)
			if s.Array() {
				m.Content = []block{}
				for s.Elem() {
					m.Content = append(m.Content, scanBlock(&s))
				}
			}
		case "usage":
			s.Once(5)
			if s.Object() {
				m.Usage = scanUsage(&s)
			}
		default:
			s.Skip("id", "type", "model", "stop_reason", "content", "usage")
		}
	}
	return m, s.End() == nil
}

// scanBlock reads one content block for its type and text; a thinking
// block's thinking and signature, and a tool's input, are skipped.
func scanBlock(s *jsonscan.Scanner) block {
	var b block
	if !s.Object() {
		return b // null, as Decode reads it
	}
	for s.Field() {
		switch s.Name() {
		case "type":
			s.Once(0)
			b.Type = s.StringOrNull()
		case "text":
			s.Once(1)
			b.Text = s.StringOrNull()
		default:
			s.Skip("type", "text")
		}
	}
	return b
}

// scanUsage reads an open usage object: a message's, or an event's.
func scanUsage(s *jsonscan.Scanner) *usage {
	u := new(usage)
	for s.Field() {
		switch s.Name() {
		case "input_tokens":
			s.Once(0)
			u.InputTokens = s.IntOrNil()
		case "output_tokens":
			s.Once(1)
			u.OutputTokens = s.IntOrNil()
		case "cache_creation_input_tokens":
			s.Once(2)
			u.CacheCreationInputTokens = s.IntOrNull()
		case "cache_read_input_tokens":
			s.Once(3)
			u.CacheReadInputTokens = s.IntOrNull()
		case "cache_creation":
			s.Once(4)
			if s.Object() {
				u.CacheCreation = new(cacheCreation)
				for s.Field() {
					switch s.Name() {
					case "ephemeral_5m_input_tokens":
						s.Once(0)
						u.CacheCreation.Ephemeral5m = s.IntOrNull()
					case "ephemeral_1h_input_tokens":
						s.Once(1)
						u.CacheCreation.Ephemeral1h = s.IntOrNull()
					default:
						s.Skip("ephemeral_5m_input_tokens", "ephemeral_1h_input_tokens")
					}
				}
			}
		case "output_tokens_details":
			s.Once(5)
			if s.Object() {
				u.OutputTokensDetails = new(outputDetails)
				for s.Field() {
					if s.Name() != "thinking_tokens" {
						s.Skip("thinking_tokens")
						continue
					}
					s.Once(0)
					u.OutputTokensDetails.ThinkingTokens = s.IntOrNull()
				}
			}
		default:
			s.Skip("input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens",
				"cache_creation", "output_tokens_details")
		}
	}
	return u
}

// decodeEvent decodes one event of a stream, as decodeMessage does a
// message (FuzzDecodeEvent).
func decodeEvent(data []byte) (event, error) { return wire.ScanOrDecode(data, scanEvent) }

// scanEvent reads data with a jsonscan.Scanner; false if it declines.
func scanEvent(data []byte) (event, bool) {
	var e event
	s := jsonscan.NewScanner(data)
	for s.Field() {
		switch s.Name() {
		case "type":
			s.Once(0)
			e.Type = s.StringOrNull()
		case "message":
			s.Once(1)
			if s.Object() {
				e.Message = new(eventMessage)
				for s.Field() {
					if s.Name() != "usage" {
						s.Skip("usage")
						continue
					}
					s.Once(0)
					if s.Object() {
						e.Message.Usage = scanUsage(&s)
					}
				}
			}
		case "delta":
			s.Once(2)
			if s.Object() {
				e.Delta = new(delta)
				for s.Field() {
					switch s.Name() {
					case "type":
						s.Once(0)
						e.Delta.Type = s.StringOrNull()
					case "text":
						s.Once(1)
						e.Delta.Text = s.StringOrNull()
					case "stop_reason":
						s.Once(2)
						e.Delta.StopReason = s.StringOrNull()
					default:
						s.Skip("type", "text", "stop_reason")
					}
				}
			}
		case "usage":
			s.Once(3)
			if s.Object() {
				e.Usage = scanUsage(&s)
			}
		case "error":
			s.Once(4)
			if s.Object() {
				e.Error = new(eventError)
				for s.Field() {
					switch s.Name() {
					case "type":
						s.Once(0)
						e.Error.Type = s.StringOrNull()
					case "message":
						s.Once(1)
						e.Error.Message = s.StringOrNull()
					default:
						s.Skip("type", "message")
					}
				}
			}
		default:
			s.Skip("type", "message", "delta", "usage", "error")
		}
	}
	return e, s.End() == nil
}

// appendRequest appends r as json.Marshal encodes it, the same object
// (FuzzAppendRequest), without reflection, as the answer is read without
// it.
func appendRequest(b []byte, r *messagesRequest) []byte {
	b = append(b, `{"model":`...)
	b = jsonscan.AppendQuoted(b, r.Model)
	b = append(b, `,"max_tokens":`...)
	b = strconv.AppendInt(b, int64(r.MaxTokens), 10)
	if r.System != "" {
		b = append(b, `,"system":`...)
		b = jsonscan.AppendQuoted(b, r.System)
	}
	b = append(b, `,"messages":`...)
	b = wire.AppendMessages(b, r.Messages)
	if r.Temperature != nil {
		b = append(b, `,"temperature":`...)
		b = strconv.AppendFloat(b, *r.Temperature, 'g', -1, 64)
	}
	if len(r.StopSequences) > 0 {
		b = append(b, `,"stop_sequences":`...)
		b = wire.AppendStrings(b, r.StopSequences)
	}
	if r.Stream {
		b = append(b, `,"stream":true`...)
	}
	if t := r.Thinking; t != nil {
		b = append(b, `,"thinking":{"type":`...)
		b = jsonscan.AppendQuoted(b, t.Type)
		b = append(b, `,"budget_tokens":`...)
		b = strconv.AppendInt(b, int64(t.BudgetTokens), 10)
		b = append(b, '}')
	}
	return append(b, '}')
}
