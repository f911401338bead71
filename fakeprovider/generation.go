package fakeprovider

import (
	"math"
	"math/rand/v2"
	"strings"
	"time"
	"unicode/utf8"
)

// request is a vendor's request reduced to what the fake's behaviour needs.
type request struct {
	model          string
	text           string // the prompt's text, for Model.Rules
	inputChars     int
	stream         bool
	maxTokens      int  // 0: no limit
	reasoning      bool // the model may think (vendor rules in Model.ReasoningTokens)
	thinkingBudget int  // 0: no cap on reasoning tokens
	showThinking   bool // thinking text goes into the response
	includeUsage   bool // OpenAI stream_options.include_usage
	// prefill is the text of a final assistant message, which the answer
	// continues (Anthropic's prefill): an answer that starts with it is
	// sent from where it leaves off.
	prefill string
}

// inputTokens approximates the prompt's token count: about 4 characters a
// token, rounded up, at least 1. Deterministic, so invoices are predictable.
func (r *request) inputTokens() int { return max(1, (r.inputChars+3)/4) }

// estimate is the token estimate a quota charges at admission.
func (r *request) estimate() int { return r.inputTokens() + r.maxTokens }

// generation is one answer the fake produces, before a vendor renders it.
type generation struct {
	requestID string // the provider request id clients see (header or body)
	messageID string
	model     string
	created   time.Time

	pieces    []string // the visible answer, one string per output token
	thinking  []string // the shown thinking text, in pieces (may be empty)
	input     int
	output    int
	reasoning int
	cacheRead int
	maxedOut  bool // stopped by max_tokens
	// unreported are reasoning tokens billed but left out of the usage the
	// client sees (FaultUnreportedUsage).
	unreported int

	ttft     time.Duration
	perToken time.Duration
}

func (g *generation) text() string { return strings.Join(g.pieces, "") }

// duration is how long the whole generation takes.
func (g *generation) duration() time.Duration {
	return g.ttft + time.Duration(g.reasoning+g.output)*g.perToken
}

// generatedBy returns the reasoning and output tokens produced by elapsed
// time d: nothing before the first token, then one token per perToken,
// reasoning first. It bills generations cut short.
func (g *generation) generatedBy(d time.Duration) (reasoning, output int) {
	if d < g.ttft {
		return 0, 0
	}
	n := g.reasoning + g.output
	if g.perToken > 0 {
		n = min(n, int((d-g.ttft)/g.perToken)+1)
	}
	reasoning = min(n, g.reasoning)
	return reasoning, n - reasoning
}

// generate decides one answer of model m to req, drawing from r.
func generate(r *rand.Rand, req *request, p *plan, m *Model, epoch time.Time, now time.Duration) *generation {
	g := &generation{model: req.model, created: epoch.Add(now).Truncate(time.Second), input: req.inputTokens()}

	text, tokens := pickAnswer(r, m.answersFor(req.text))
	if req.reasoning {
		inflation := p.inflation
		if inflation == 0 {
			inflation = 1
		}
		g.reasoning = int(math.Round(m.ReasoningTokens.Sample(r) * inflation))
		if req.thinkingBudget > 0 {
			g.reasoning = min(g.reasoning, req.thinkingBudget)
		}
	}
	g.cacheRead = min(g.input, int(math.Round(m.CacheReadTokens.Sample(r))))
	g.unreported = p.unreported
	g.ttft = msDuration(m.TTFTms.Sample(r)) + p.extraTTFT
	g.perToken = msDuration(m.PerTokenMs.Sample(r))

	pieces := splitPieces(text, tokens)
	if req.prefill != "" && strings.HasPrefix(text, req.prefill) {
		pieces = continuing(pieces, req.prefill)
	}
	if req.maxTokens > 0 && g.reasoning+len(pieces) > req.maxTokens {
		g.maxedOut = true
		g.reasoning = min(g.reasoning, req.maxTokens)
		pieces = pieces[:req.maxTokens-g.reasoning]
	}
	g.pieces, g.output = pieces, len(pieces)
	if req.showThinking && g.reasoning > 0 {
		thinking := m.Thinking
		if thinking == "" {
			thinking = "Let me think about this step by step."
		}
		g.thinking = strings.SplitAfter(thinking, " ")
	}
	return g
}

// answersFor returns the answers of the first rule matching text.
func (m *Model) answersFor(text string) []Answer {
	lower := strings.ToLower(text)
	for _, r := range m.Rules {
		if strings.Contains(lower, strings.ToLower(r.Match)) {
			return r.Answers
		}
	}
	return m.Answers
}

func pickAnswer(r *rand.Rand, answers []Answer) (string, int) {
	if len(answers) == 0 {
		return "OK", 1
	}
	total := 0.0
	for _, a := range answers {
		total += weight(a)
	}
	x := r.Float64() * total
	chosen := answers[len(answers)-1]
	for _, a := range answers {
		if x < weight(a) {
			chosen = a
			break
		}
		x -= weight(a)
	}
	tokens := chosen.Tokens
	if tokens == 0 {
		tokens = max(1, (utf8.RuneCountInString(chosen.Text)+3)/4)
	}
	return chosen.Text, tokens
}

func weight(a Answer) float64 {
	if a.Weight == 0 {
		return 1
	}
	return a.Weight
}

// splitPieces cuts text into n pieces of nearly equal rune counts: the
// stream's per-token deltas. With more tokens than runes, some are empty.
func splitPieces(text string, n int) []string {
	runes := []rune(text)
	out := make([]string, n)
	for i := range n {
		out[i] = string(runes[i*len(runes)/n : (i+1)*len(runes)/n])
	}
	return out
}

// continuing drops the pieces of an answer that prefill already holds; a
// prefill that ends inside a piece keeps that piece's rest.
func continuing(pieces []string, prefill string) []string {
	for i, p := range pieces {
		if len(prefill) < len(p) {
			rest := append([]string{p[len(prefill):]}, pieces[i+1:]...)
			if rest[0] == "" {
				rest = rest[1:]
			}
			if len(rest) == 0 {
				return []string{""}
			}
			return rest
		}
		prefill = prefill[len(p):]
	}
	return []string{""} // the prefill is the whole answer: one empty token ends it
}

func msDuration(ms float64) time.Duration {
	return time.Duration(ms * float64(time.Millisecond))
}

const idAlphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// randID returns prefix and n characters drawn from r.
func randID(r *rand.Rand, prefix string, n int) string {
	b := make([]byte, len(prefix)+n)
	copy(b, prefix)
	for i := len(prefix); i < len(b); i++ {
		b[i] = idAlphabet[r.IntN(len(idAlphabet))]
	}
	return string(b)
}
