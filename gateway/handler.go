package gateway

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/shopspring/decimal"

	"github.com/brownout-dev/brownout/gateway/ledger"
	"github.com/brownout-dev/brownout/internal/sse"
)

// DefaultMaxBodyBytes is the default request body limit.
const DefaultMaxBodyBytes = 1 << 20

// Headers the gateway reads and writes on every request, in Go's canonical
// form: net/http sends every key so (X-Request-ID goes out as
// X-Request-Id), and a key already canonical costs no allocation.
const (
	headerRequestID         = "X-Request-Id"
	headerBrownoutRequestID = "X-Brownout-Request-Id"
	headerCost              = "X-Brownout-Cost-Usd"
)

// HandlerOptions configure the HTTP front.
type HandlerOptions struct {
	// Tenants are the clients allowed in, by API key hash. Empty rejects
	// every request to /v1/.
	Tenants []Tenant
	// MaxBodyBytes limits a request body (default DefaultMaxBodyBytes).
	MaxBodyBytes int64
	// Gatherer serves /metrics; nil serves no metrics.
	Gatherer prometheus.Gatherer
	// Ready reports readiness for /readyz; nil is always ready.
	Ready func() error
	// Idempotency keeps Idempotency-Key records; nil ignores the header.
	Idempotency IdempotencyStore
}

// Handler is the gateway's OpenAI-compatible HTTP front:
//
//	POST /v1/chat/completions   OpenAI Chat Completions, plain and SSE
//	GET  /v1/models             the route aliases
//	GET  /healthz               the process is up
//	GET  /readyz                ready to serve (503 while draining)
//	GET  /metrics               Prometheus
//
// Every error is in OpenAI's envelope {"error":{"message","type","param","code"}}.
// Every chat response carries X-Brownout-Request-ID, the ledger's
// request_id of the request (minted here, see NewRequestID), and
// X-Request-ID, the client's own id echoed (or the ledger's when it sent
// none); the client's is kept in the ledger as client_request_id.
func (g *Gateway) Handler(opts HandlerOptions) http.Handler {
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = DefaultMaxBodyBytes
	}
	h := &handler{g: g, opts: opts, tenants: tenantSet(opts.Tenants)}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/chat/completions", h.chat)
	mux.HandleFunc("GET /v1/models", h.models)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })
	mux.HandleFunc("GET /readyz", h.ready)
	if opts.Gatherer != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(opts.Gatherer, promhttp.HandlerOpts{}))
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		apiError{status: http.StatusNotFound, typ: "invalid_request_error", code: "unknown_url",
			msg: "Unknown request URL: " + r.Method + " " + r.URL.Path}.write(w)
	})
	return mux
}

type handler struct {
	g       *Gateway
	opts    HandlerOptions
	tenants tenantSet
}

func (h *handler) ready(w http.ResponseWriter, _ *http.Request) {
	if h.opts.Ready != nil {
		if err := h.opts.Ready(); err != nil {
			http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
	}
	_, _ = io.WriteString(w, "ready\n")
}

// authenticate returns the tenant of the request's bearer key.
func (h *handler) authenticate(r *http.Request) (string, *clientError) {
	key, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || key == "" {
		return "", &clientError{status: 401, code: "missing_api_key", msg: "Missing API key: send it as 'Authorization: Bearer <key>'."}
	}
	tenant, ok := h.tenants.lookup(key)
	if !ok {
		return "", &clientError{status: 401, code: "invalid_api_key", msg: "Invalid API key."}
	}
	return tenant, nil
}

func (h *handler) models(w http.ResponseWriter, r *http.Request) {
	if _, cerr := h.authenticate(r); cerr != nil {
		apiErrorOf(cerr).write(w)
		return
	}
	data := []map[string]any{}
	for _, alias := range h.g.Routes() {
		data = append(data, map[string]any{"id": alias, "object": "model", "created": 0, "owned_by": "brownout"})
	}
	writeJSON(w, http.StatusOK, map[string]any{"object": "list", "data": data})
}

// NewRequestID mints the ledger's request_id of a request: a UUIDv7,
// time-ordered and unique across gateway processes (google/uuid), so the
// key of a ledger row is never a value a client chose.
func NewRequestID() string { return uuid.Must(uuid.NewV7()).String() }

// clientRequestID returns the client's X-Request-ID ("" when it sent none),
// checked against the ledger's limits for an identifier: a value the
// ledger would refuse is a 400 here, before any upstream call.
func clientRequestID(r *http.Request) (string, *clientError) {
	id := r.Header.Get(headerRequestID)
	if len(id) > ledger.MaxIDLen || strings.ContainsFunc(id, func(c rune) bool {
		return !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("._:-", c))
	}) {
		return "", &clientError{status: 400, param: "X-Request-ID", code: "invalid_request_id",
			msg: fmt.Sprintf("Invalid X-Request-ID: at most %d characters of A-Z, a-z, 0-9, '.', '_', ':' and '-'.", ledger.MaxIDLen)}
	}
	return id, nil
}

func (h *handler) chat(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	route, outcome := "", "ok"
	defer func() { h.g.metrics.request(route, outcome, time.Since(start)) }()
	fail := func(err error) {
		e := apiErrorOf(err)
		outcome = e.outcome
		e.write(w)
	}

	id := NewRequestID()
	w.Header().Set(headerBrownoutRequestID, id)
	clientID, cerr := clientRequestID(r)
	if cerr != nil {
		fail(cerr)
		return
	}
	// X-Request-ID echoes the client's id, as tracing expects; a client that
	// sent none gets the gateway's.
	w.Header().Set(headerRequestID, cmp.Or(clientID, id))
	tenant, cerr := h.authenticate(r)
	if cerr != nil {
		fail(cerr)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.opts.MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			fail(&clientError{status: 413, code: "request_too_large", msg: "Request body is larger than " + strconv.FormatInt(mbe.Limit, 10) + " bytes."})
		} else {
			fail(badParam("", "Could not read the request body."))
		}
		return
	}
	in, call, err := decodeChat(body)
	if err != nil {
		fail(err)
		return
	}
	// The metric's route label is a configured route or "unknown": a
	// client's model string would be an unbounded label.
	route = "unknown"
	if _, ok := h.g.routes[in.Model]; ok {
		route = in.Model
	}
	includeUsage := in.StreamOptions != nil && in.StreamOptions.IncludeUsage
	req := &Request{ID: id, ClientRequestID: clientID, Tenant: tenant, IdempotencyKey: r.Header.Get("Idempotency-Key"), Route: in.Model, LLM: call}
	keyed := req.IdempotencyKey != "" && h.opts.Idempotency != nil
	var hash []byte
	if keyed {
		if cerr := checkIdempotencyKey(req.IdempotencyKey); cerr != nil {
			fail(cerr)
			return
		}
		hash = requestHash(req, in.Stream, includeUsage) // the request as the client sent it
	}
	resv, err := h.g.hold(req)
	if err != nil {
		fail(err)
		return
	}
	taken := false
	if keyed {
		cw, release, reserved, err := h.claim(w, r, req, hash, resv)
		if release != nil {
			w = cw
			defer func() { release(outcome) }()
		}
		if err != nil {
			if errors.Is(err, errReplayed) {
				outcome = "replayed"
			} else {
				fail(err)
			}
			return
		}
		taken = reserved
	}
	if !taken {
		if err := h.g.take(r.Context(), req, resv); err != nil {
			fail(err)
			return
		}
	}
	if in.Stream {
		outcome = h.stream(w, r, req, resv, includeUsage)
		return
	}
	spent := decimal.Zero
	defer func() {
		if resv != nil {
			// The client has its answer before the reservation settles, as
			// before its key completes (claim); until then the reservation
			// stays held, which can refuse a request early, never let one
			// overshoot.
			_ = http.NewResponseController(w).Flush()
			h.g.settle(resv, spent)
		}
	}()
	res, err := h.g.attempts(r.Context(), req, resv, &spent)
	if err != nil {
		fail(err)
		return
	}
	w.Header().Set("X-Brownout-Provider", res.Target.String())
	w.Header().Set(headerCost, res.Cost.String())
	resp := res.Response
	writeBody(w, http.StatusOK, append(appendCompletion(make([]byte, 0, 512+len(resp.Content)), &chatCompletion{
		ID: "chatcmpl-" + id, Object: "chat.completion", Created: time.Now().Unix(), Model: res.Target.Model,
		Choices: []chatChoice{{Message: &chatMessage{Role: "assistant", Content: &resp.Content}, FinishReason: &resp.FinishReason}},
		Usage:   openaiUsage(resp.Usage),
	}), '\n'))
}

// stream relays a streamed answer as OpenAI chunks. Until the first byte is
// out, a failure is an ordinary error response; after it, an SSE error
// event (the partial usage is metered either way). It returns the
// request's outcome for the metrics.
func (h *handler) stream(w http.ResponseWriter, r *http.Request, req *Request, resv *reservation, includeUsage bool) string {
	st, err := h.g.stream(r.Context(), req, resv)
	if err != nil {
		e := apiErrorOf(err)
		e.write(w)
		return e.outcome
	}
	defer st.Close()
	out := chunkWriter{w: w, rc: http.NewResponseController(w), id: "chatcmpl-" + req.ID, created: time.Now().Unix(), model: st.Target().Model}
	started := false
	empty := ""
	for {
		c, err := st.Next()
		if err != nil {
			e := apiErrorOf(err)
			if !started {
				e.write(w)
				return e.outcome
			}
			out.event(e.event())
			return "stream_error"
		}
		if !started {
			started = true
			w.Header().Set("Content-Type", "text/event-stream")
			w.Header().Set("Cache-Control", "no-cache")
			w.Header().Set("X-Brownout-Provider", st.Target().String())
			w.WriteHeader(http.StatusOK)
			if out.delta(chatMessage{Role: "assistant", Content: &empty}, nil) != nil {
				return "client_gone"
			}
		}
		if c.Content != "" {
			if out.delta(chatMessage{Content: &c.Content}, nil) != nil {
				return "client_gone"
			}
		}
		if c.Final {
			if out.delta(chatMessage{}, &c.FinishReason) != nil {
				return "client_gone"
			}
			if includeUsage && out.chunk([]chatChoice{}, openaiUsage(c.Usage)) != nil {
				return "client_gone"
			}
			_ = out.event([]byte(sse.Done))
			return "ok"
		}
	}
}
