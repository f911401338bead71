package fakeprovider

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"time"
)

// vendorAPI is one vendor's wire format.
type vendorAPI interface {
	// parse authenticates and decodes a request to the vendor's endpoint.
	parse(r *http.Request, body []byte, apiKey string) (*request, *apiError)
	// ids draws the provider request id and the message id of one request.
	ids(r *rand.Rand) (requestID, messageID string)
	// billingID is the id the client sees for a generation when it differs
	// from the request id header ("" otherwise).
	billingID(g *generation) string
	headers(h http.Header, requestID string)
	quotaHeaders(h http.Header, v quotaView, now time.Time)
	errorBody(e *apiError, requestID string) []byte
	errorEvent(e *apiError, requestID string) []byte
	defaultStreamErrorStatus() int
	body(g *generation, req *request) []byte
	events(g *generation, req *request) []sseEvent
	// bill is what the vendor charges at price p for a generation that
	// produced reasoning and output tokens, from its own usage fields.
	bill(p ListPrice, g *generation, reasoning, output int) charge
}

func vendorFor(v Vendor) vendorAPI {
	switch v {
	case Anthropic:
		return anthropicAPI{}
	case Gemini:
		return geminiAPI{}
	default:
		return openaiAPI{}
	}
}

// mustJSON marshals values the fake builds itself; they always marshal.
func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("fakeprovider: marshal %T: %v", v, err))
	}
	return b
}

// pacer tracks the time and tokens of a stream as events are laid out.
type pacer struct {
	g                 *generation
	pending           time.Duration // delay owed by the next event
	first             bool
	reasoning, output int
}

func newPacer(g *generation) *pacer { return &pacer{g: g, first: true} }

// event returns an event carrying the given new reasoning and output
// tokens: the first event waits the time to first token, and every token
// perToken, so a stream takes as long as the same answer unstreamed.
func (p *pacer) event(f []byte, reasoning, output int) sseEvent {
	if p.first {
		p.pending += p.g.ttft
		p.first = false
	}
	p.pending += time.Duration(reasoning+output) * p.g.perToken
	p.reasoning += reasoning
	p.output += output
	ev := sseEvent{delay: p.pending, frame: f, reasoning: p.reasoning, output: p.output}
	p.pending = 0
	return ev
}

// spread divides n tokens over k events as evenly as possible.
func spread(n, k, i int) int {
	if k == 0 {
		return 0
	}
	return (i+1)*n/k - i*n/k
}
