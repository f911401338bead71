package gemini

import (
	"strconv"

	"github.com/brownout-dev/brownout/gateway/providers/internal/wire"
	"github.com/brownout-dev/brownout/internal/jsonscan"
)

// decodeResponse decodes a generateContent answer, or one chunk of a
// stream (the same object). The common body is read by a
// jsonscan.Scanner, which costs less than Decode on a call that finds the
// caches cold (BenchmarkDecodeResponseCold); any other, an error among
// them, goes to Decode, which takes the same body to the same response
// (FuzzDecodeResponse).
func decodeResponse(body []byte) (generateResponse, error) {
	return wire.ScanOrDecode(body, scanResponse)
}

// scanResponse reads body with a jsonscan.Scanner; false if it declines.
func scanResponse(body []byte) (generateResponse, bool) {
	var r generateResponse
	s := jsonscan.NewScanner(body)
	for s.Field() {
		switch s.Name() {
		case "candidates":
			s.Once(0)
			if s.Array() {
				r.Candidates = []candidate{}
				for s.Elem() {
					r.Candidates = append(r.Candidates, scanCandidate(&s))
				}
			}
		case "usageMetadata":
			s.Once(1)
			if s.Object() {
				r.UsageMetadata = scanUsage(&s)
			}
		case "modelVersion":
			s.Once(2)
			r.ModelVersion = s.StringOrNull()
		case "responseId":
			s.Once(3)
			r.ResponseID = s.StringOrNull()
		case "error":
			// Rare, and read in full (its details) by Decode.
			s.Decline()
		default:
			s.Skip("candidates", "usageMetadata", "modelVersion", "responseId", "error")
		}
	}
	return r, s.End() == nil
}

// scanCandidate reads one candidate for its content and finish reason;
// its safety ratings and the like are skipped.
func scanCandidate(s *jsonscan.Scanner) candidate {
	var c candidate
	if !s.Object() {
		return c // null, as Decode reads it
	}
	for s.Field() {
		switch s.Name() {
		case "content":
			s.Once(0)
			if s.Object() {
				c.Content = scanContent(s)
			}
		case "finishReason":
			s.Once(1)
			c.FinishReason = s.StringOrNull()
		default:
			s.Skip("content", "finishReason")
		}
	}
	return c
}

// scanContent reads an open content object: its role and its parts' text
// and thought flags (a thought's signature, a function call, are skipped).
func scanContent(s *jsonscan.Scanner) *content {
	c := new(content)
	for s.Field() {
		switch s.Name() {
		case "role":
			s.Once(0)
			c.Role = s.StringOrNull()
		case "parts":
			s.Once(1)
			if !s.Array() {
				continue
			}
			c.Parts = []part{}
			for s.Elem() {
				var p part
				if s.Object() {
					for s.Field() {
						switch s.Name() {
						case "text":
							s.Once(0)
							p.Text = s.StringOrNull()
						case "thought":
							s.Once(1)
							p.Thought = s.Bool()
						default:
							s.Skip("text", "thought")
						}
					}
				}
				c.Parts = append(c.Parts, p)
			}
		default:
			s.Skip("role", "parts")
		}
	}
	return c
}

// scanUsage reads an open usageMetadata object.
func scanUsage(s *jsonscan.Scanner) *usageMetadata {
	u := new(usageMetadata)
	for s.Field() {
		switch s.Name() {
		case "promptTokenCount":
			s.Once(0)
			u.PromptTokenCount = s.IntOrNil()
		case "candidatesTokenCount":
			s.Once(1)
			u.CandidatesTokenCount = s.IntOrNull()
		case "thoughtsTokenCount":
			s.Once(2)
			u.ThoughtsTokenCount = s.IntOrNull()
		case "cachedContentTokenCount":
			s.Once(3)
			u.CachedContentTokenCount = s.IntOrNull()
		default:
			s.Skip("promptTokenCount", "candidatesTokenCount", "thoughtsTokenCount", "cachedContentTokenCount")
		}
	}
	return u
}

// appendRequest appends r as json.Marshal encodes it, the same object
// (FuzzAppendRequest), without reflection, as the answer is read without
// it.
func appendRequest(b []byte, r *generateRequest) []byte {
	b = append(b, `{"contents":`...)
	if r.Contents == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i := range r.Contents {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendContent(b, &r.Contents[i])
		}
		b = append(b, ']')
	}
	if r.SystemInstruction != nil {
		b = append(b, `,"systemInstruction":`...)
		b = appendContent(b, r.SystemInstruction)
	}
	if c := r.GenerationConfig; c != nil {
		b = append(b, `,"generationConfig":{`...)
		n := len(b)
		if c.MaxOutputTokens != 0 {
			b = append(b, `"maxOutputTokens":`...)
			b = strconv.AppendInt(b, int64(c.MaxOutputTokens), 10)
		}
		if c.Temperature != nil {
			b = comma(b, n)
			b = append(b, `"temperature":`...)
			b = strconv.AppendFloat(b, *c.Temperature, 'g', -1, 64)
		}
		if len(c.StopSequences) > 0 {
			b = comma(b, n)
			b = append(b, `"stopSequences":`...)
			b = wire.AppendStrings(b, c.StopSequences)
		}
		b = append(b, '}')
	}
	return append(b, '}')
}

// appendContent appends c as json.Marshal encodes it.
func appendContent(b []byte, c *content) []byte {
	b = append(b, '{')
	if c.Role != "" {
		b = append(b, `"role":`...)
		b = jsonscan.AppendQuoted(b, c.Role)
		b = append(b, ',')
	}
	b = append(b, `"parts":`...)
	if c.Parts == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i, p := range c.Parts {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"text":`...)
			b = jsonscan.AppendQuoted(b, p.Text)
			if p.Thought {
				b = append(b, `,"thought":true`...)
			}
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	return append(b, '}')
}

// comma appends a comma unless b is at n, the start of an object's members.
func comma(b []byte, n int) []byte {
	if len(b) > n {
		b = append(b, ',')
	}
	return b
}
