package fakeprovider

import (
	"bytes"
	"net/http"
	"strconv"
	"time"

	"github.com/brownout-dev/brownout/internal/backoff"
)

// call is one request to the vendor API, from parsing to billing.
//
// The invoice line and the journal entry are recorded before the last byte
// of the answer is written, so a client that has the whole answer finds
// them in Invoice and Journal.
type call struct {
	s        *Server
	w        http.ResponseWriter
	r        *http.Request
	entry    JournalEntry
	recorded bool
	billed   bool
}

// record adds the call's journal entry, once.
func (c *call) record() {
	if !c.recorded {
		c.recorded = true
		c.s.addJournal(c.entry)
	}
}

func (s *Server) newCall(w http.ResponseWriter, r *http.Request) *call {
	return &call{s: s, w: w, r: r, entry: JournalEntry{Method: r.Method, Path: r.URL.Path}}
}

func (c *call) serve() {
	s, api := c.s, c.s.api
	body, aerr := readBody(c.r)
	var req *request
	if aerr == nil {
		req, aerr = api.parse(c.r, body, s.cfg.APIKey)
	}
	if aerr == nil {
		if _, ok := s.cfg.Models[req.model]; !ok {
			aerr = &apiError{status: 404, kind: errNotFound, code: "model_not_found", param: "model",
				msg: "model: " + req.model + " does not exist or you do not have access to it"}
		}
	}
	if req == nil {
		req = &request{}
	}
	c.entry.Model, c.entry.Stream = req.model, req.stream

	r, p, now, seq := s.admit(req, aerr == nil)
	c.entry.Seq, c.entry.At, c.entry.Faults = seq, now, p.faults
	requestID, messageID := api.ids(r)
	c.entry.RequestID = requestID

	if aerr != nil {
		c.fail(aerr, requestID)
		return
	}
	switch {
	case p.abort:
		c.entry.Outcome = OutcomeAborted
		panic(http.ErrAbortHandler) // net/http closes the connection without a response
	case p.hang:
		c.entry.Outcome = OutcomeHang
		backoff.Sleep(c.r.Context(), 1<<62)
		return
	case p.reject != nil:
		c.quotaHeaders(p)
		c.fail(p.reject, requestID)
		return
	}

	model := s.cfg.Models[req.model]
	g := generate(r, req, p, &model, s.cfg.Epoch, now)
	g.requestID, g.messageID = requestID, messageID
	if id := api.billingID(g); id != "" {
		g.requestID = id
	}
	c.entry.RequestID = g.requestID
	defer func() { s.settleQuota(p, req.estimate(), g.input+g.output+g.reasoning) }()
	c.quotaHeaders(p)
	api.headers(c.w.Header(), requestID)
	if req.stream {
		c.stream(req, p, g)
	} else {
		c.respond(req, p, g)
	}
}

func (c *call) fail(e *apiError, requestID string) {
	c.entry.Status, c.entry.Outcome = e.status, OutcomeError
	h := c.w.Header()
	c.s.api.headers(h, requestID)
	if e.retryAfter > 0 {
		// Whole seconds, rounded up, in retry-after; the exact wait in
		// retry-after-ms (OpenAI's and Anthropic's SDKs read it first).
		h.Set("retry-after", strconv.FormatInt(int64((e.retryAfter+time.Second-1)/time.Second), 10))
		h.Set("retry-after-ms", strconv.FormatInt(e.retryAfter.Milliseconds(), 10))
	}
	h.Set("Content-Type", "application/json")
	c.record()
	c.w.WriteHeader(e.status)
	_, _ = c.w.Write(c.s.api.errorBody(e, requestID))
}

func (c *call) quotaHeaders(p *plan) {
	for _, v := range p.quotaHeaders {
		c.s.api.quotaHeaders(c.w.Header(), v, c.s.cfg.Epoch.Add(c.entry.At))
	}
}

// respond answers a non-streamed request after the whole generation time.
func (c *call) respond(req *request, p *plan, g *generation) {
	start := time.Now()
	if !backoff.Sleep(c.r.Context(), g.duration()) {
		reasoning, output := g.generatedBy(time.Since(start))
		c.entry.Outcome = OutcomeClientGone
		c.billTokens(g, req, reasoning, output, false)
		return
	}
	body := c.s.api.body(g, req)
	outcome := OutcomeOK
	switch {
	case p.malformedAt >= 0:
		body, outcome = garble(body), OutcomeMalformed
	case p.truncateAfter >= 0:
		body, outcome = body[:len(body)/2], OutcomeTruncated
	}
	c.entry.Status, c.entry.Outcome = http.StatusOK, outcome
	c.billTokens(g, req, g.reasoning, g.output, outcome == OutcomeOK)
	h := c.w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	if p.resetAfterBytes >= 0 {
		n := p.resetAfterBytes
		if n == 0 || n > len(body) {
			n = len(body) / 2
		}
		c.entry.Outcome = OutcomeReset
		c.record()
		c.w.WriteHeader(http.StatusOK)
		_, _ = c.w.Write(body[:n])
		http.NewResponseController(c.w).Flush()
		panic(http.ErrAbortHandler)
	}
	c.record()
	c.w.WriteHeader(http.StatusOK)
	if p.bytesPerSecond > 0 {
		c.dribble(body, p.bytesPerSecond)
		return
	}
	_, _ = c.w.Write(body)
}

// dribble writes body at bps bytes a second, a tenth of a second's worth
// at a time, until it is sent or the client leaves.
func (c *call) dribble(body []byte, bps int) {
	rc := http.NewResponseController(c.w)
	step := max(bps/10, 1)
	for len(body) > 0 {
		n := min(step, len(body))
		if !backoff.Sleep(c.r.Context(), time.Duration(n)*time.Second/time.Duration(bps)) {
			c.entry.Outcome = OutcomeClientGone
			return
		}
		if _, err := c.w.Write(body[:n]); err != nil {
			return
		}
		_ = rc.Flush()
		body = body[n:]
	}
}

// sseEvent is one event of a stream: sent after delay, after which the
// generation has produced reasoning and output tokens (cumulative).
type sseEvent struct {
	delay             time.Duration
	frame             []byte // the whole SSE frame, blank line included
	reasoning, output int
}

// stream sends the vendor's events at the generation's pace, applying the
// delivery faults, and bills what was generated when the stream ends.
func (c *call) stream(req *request, p *plan, g *generation) {
	events := c.s.api.events(g, req)
	if p.noTerminal && len(events) > 1 {
		events = events[:len(events)-1] // the terminal marker carries no tokens
	}
	h := c.w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	c.w.WriteHeader(http.StatusOK)
	c.entry.Status = http.StatusOK
	rc := http.NewResponseController(c.w)
	_ = rc.Flush()

	sentBytes, reasoning, output := 0, 0, 0
	outcome := OutcomeOK
	// finish bills and journals the stream as it stands; the last event and
	// the cuts call it before their final write, the deferred call covers
	// the client leaving.
	finish := func() {
		c.entry.Outcome = outcome
		c.billTokens(g, req, reasoning, output, outcome == OutcomeOK)
		c.record()
	}
	defer finish()
	for i, ev := range events {
		if i == p.stallAfter {
			// Silence, the connection open, until the client gives up; the
			// deferred finish bills what was sent.
			outcome = OutcomeStalled
			backoff.Sleep(c.r.Context(), 1<<62)
			return
		}
		if i == p.truncateAfter {
			outcome = OutcomeTruncated
			finish()
			return
		}
		if i == p.streamErrorAfter {
			status := p.streamErrorStatus
			if status == 0 {
				status = c.s.api.defaultStreamErrorStatus()
			}
			outcome = OutcomeStreamError
			finish()
			_, _ = c.w.Write(c.s.api.errorEvent(serverError(status), g.requestID))
			_ = rc.Flush()
			return
		}
		if !backoff.Sleep(c.r.Context(), ev.delay) {
			outcome = OutcomeClientGone
			return
		}
		frame := ev.frame
		if p.resetMidEvent > 0 && i == p.resetMidEvent {
			outcome = OutcomeReset
			finish()
			_, _ = c.w.Write(frame[:len(frame)/2])
			_ = rc.Flush()
			panic(http.ErrAbortHandler)
		}
		if i == p.malformedAt {
			frame, outcome = garbleFrame(frame), OutcomeMalformed
		}
		if p.resetAfterBytes >= 0 {
			limit := p.resetAfterBytes
			if limit == 0 {
				for _, e := range events {
					limit += len(e.frame)
				}
				limit /= 2
			}
			if sentBytes+len(frame) > limit {
				reasoning, output = ev.reasoning, ev.output
				outcome = OutcomeReset
				finish()
				_, _ = c.w.Write(frame[:limit-sentBytes])
				_ = rc.Flush()
				panic(http.ErrAbortHandler)
			}
		}
		if i == len(events)-1 {
			reasoning, output = ev.reasoning, ev.output
			finish()
		}
		if p.bytesPerSecond > 0 && !backoff.Sleep(c.r.Context(), time.Duration(len(frame))*time.Second/time.Duration(p.bytesPerSecond)) {
			outcome = OutcomeClientGone
			return
		}
		if _, err := c.w.Write(frame); err != nil {
			outcome = OutcomeClientGone
			return
		}
		if err := rc.Flush(); err != nil {
			outcome = OutcomeClientGone
			return
		}
		sentBytes += len(frame)
		reasoning, output = ev.reasoning, ev.output
	}
}

func (c *call) billTokens(g *generation, req *request, reasoning, output int, complete bool) {
	if c.billed {
		return
	}
	c.billed = true
	line := InvoiceLine{
		RequestID:       g.requestID,
		Model:           g.model,
		InputTokens:     int64(g.input - g.cacheRead),
		OutputTokens:    int64(output),
		ReasoningTokens: int64(reasoning),
		CacheReadTokens: int64(g.cacheRead),
		Stream:          req.stream,
		Complete:        complete,
	}
	if g.unreported > 0 && (reasoning > 0 || output > 0) {
		// Thinking the vendor bills and never reports: on the invoice and
		// in the vendor's reports, never in the response.
		reasoning += g.unreported
		line.ReasoningTokens, line.UnreportedTokens = int64(reasoning), int64(g.unreported)
	}
	var ch charge
	if p, ok := c.s.prices[g.model]; ok {
		ch = c.s.api.bill(p, g, reasoning, output)
		line.Cost = ch.total()
	} else {
		line.Unpriced = true
	}
	c.s.bill(line, ch)
}

// garble cuts a JSON body in the middle of a token and appends junk.
func garble(body []byte) []byte {
	out := append([]byte{}, body[:len(body)*2/3]...)
	return append(out, []byte(`"}{,]`)...)
}

// garbleFrame garbles the JSON in an SSE frame's data line, keeping the
// frame's shape so the client's SSE parser passes it on to the JSON decoder.
func garbleFrame(frame []byte) []byte {
	i := bytes.Index(frame, []byte("data: "))
	if i < 0 {
		return garble(frame)
	}
	data := bytes.TrimRight(frame[i+6:], "\n")
	out := append([]byte{}, frame[:i+6]...)
	out = append(out, garble(data)...)
	return append(out, '\n', '\n')
}
