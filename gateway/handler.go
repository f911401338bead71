package gateway

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/brownout-dev/brownout/gateway/llm"
)

// DefaultMaxBodyBytes is the default request body limit.
const DefaultMaxBodyBytes = 1 << 20

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
		writeErrorJSON(w, http.StatusNotFound, "invalid_request_error", "", "unknown_url", "Unknown request URL: "+r.Method+" "+r.URL.Path)
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
		writeError(w, cerr)
		return
	}
	data := []map[string]any{}
	for _, alias := range h.g.Routes() {
		data = append(data, map[string]any{"id": alias, "object": "model", "created": 0, "owned_by": "brownout"})
	}
	writeJSON(w, http.StatusOK, map[string]any{"object": "list", "data": data})
}

// requestID returns the client's X-Request-ID if it is valid, or a new one.
func requestID(r *http.Request) (string, *clientError) {
	id := r.Header.Get("X-Request-ID")
	if id == "" {
		var b [12]byte
		_, _ = rand.Read(b[:])
		return "req_" + hex.EncodeToString(b[:]), nil
	}
	if len(id) > 128 || strings.ContainsFunc(id, func(c rune) bool {
		return !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("._:-", c))
	}) {
		return "", &clientError{status: 400, param: "X-Request-ID", code: "invalid_request_id",
			msg: "Invalid X-Request-ID: at most 128 characters of A-Z, a-z, 0-9, '.', '_', ':' and '-'."}
	}
	return id, nil
}

func (h *handler) chat(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	route, outcome := "", "ok"
	defer func() { h.g.metrics.request(route, outcome, time.Since(start)) }()
	fail := func(err error) {
		outcome = errorOutcome(err)
		writeError(w, err)
	}

	id, cerr := requestID(r)
	if cerr != nil {
		fail(cerr)
		return
	}
	w.Header().Set("X-Request-ID", id)
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
	route = in.Model
	includeUsage := in.StreamOptions != nil && in.StreamOptions.IncludeUsage
	req := &Request{ID: id, Tenant: tenant, IdempotencyKey: r.Header.Get("Idempotency-Key"), Route: in.Model, LLM: call}
	if req.IdempotencyKey != "" && h.opts.Idempotency != nil {
		if cerr := checkIdempotencyKey(req.IdempotencyKey); cerr != nil {
			fail(cerr)
			return
		}
		cw, release, err := h.claim(w, r, req, in.Stream, includeUsage)
		if err != nil {
			if errors.Is(err, errReplayed) {
				outcome = "replayed"
			} else {
				fail(err)
			}
			return
		}
		w = cw
		defer func() { release(outcome) }()
	}
	if in.Stream {
		outcome = h.stream(w, r, req, includeUsage)
		return
	}
	res, err := h.g.Complete(r.Context(), req)
	if err != nil {
		outcome = errorOutcome(err)
		writeError(w, err)
		return
	}
	w.Header().Set("X-Brownout-Provider", res.Target.String())
	w.Header().Set("X-Brownout-Cost-USD", res.Cost.String())
	resp := res.Response
	writeJSON(w, http.StatusOK, &chatCompletion{
		ID: "chatcmpl-" + id, Object: "chat.completion", Created: time.Now().Unix(), Model: res.Target.Model,
		Choices: []chatChoice{{Message: &chatMessage{Role: "assistant", Content: &resp.Content}, FinishReason: &resp.FinishReason}},
		Usage:   openaiUsage(resp.Usage),
	})
}

// stream relays a streamed answer as OpenAI chunks. Until the first byte is
// out, a failure is an ordinary error response; after it, an SSE error
// event (the partial usage is metered either way).
func (h *handler) stream(w http.ResponseWriter, r *http.Request, req *Request, includeUsage bool) string {
	st, err := h.g.Stream(r.Context(), req)
	if err != nil {
		writeError(w, err)
		return errorOutcome(err)
	}
	defer st.Close()
	rc := http.NewResponseController(w)
	id, created, model := "chatcmpl-"+req.ID, time.Now().Unix(), st.Target().Model
	started := false
	send := func(choices []chatChoice, usage *chatUsage) error {
		b, _ := json.Marshal(&chatCompletion{ID: id, Object: "chat.completion.chunk", Created: created, Model: model, Choices: choices, Usage: usage})
		if _, err := w.Write(append(append([]byte("data: "), b...), '\n', '\n')); err != nil {
			return err
		}
		return rc.Flush()
	}
	delta := func(d chatMessage, finish *string) []chatChoice {
		return []chatChoice{{Delta: &d, FinishReason: finish}}
	}
	empty := ""
	for {
		c, err := st.Next()
		if err != nil {
			if !started {
				writeError(w, err)
				return errorOutcome(err)
			}
			status, typ, _, msg := errorFields(err)
			b, _ := json.Marshal(map[string]any{"error": map[string]any{"message": msg, "type": typ, "param": nil, "code": strconv.Itoa(status)}})
			_, _ = w.Write(append(append([]byte("data: "), b...), '\n', '\n'))
			_ = rc.Flush()
			return "stream_error"
		}
		if !started {
			started = true
			w.Header().Set("Content-Type", "text/event-stream")
			w.Header().Set("Cache-Control", "no-cache")
			w.Header().Set("X-Brownout-Provider", st.Target().String())
			w.WriteHeader(http.StatusOK)
			if send(delta(chatMessage{Role: "assistant", Content: &empty}, nil), nil) != nil {
				return "client_gone"
			}
		}
		if c.Content != "" {
			if send(delta(chatMessage{Content: &c.Content}, nil), nil) != nil {
				return "client_gone"
			}
		}
		if c.Final {
			if send(delta(chatMessage{}, &c.FinishReason), nil) != nil {
				return "client_gone"
			}
			if includeUsage && send([]chatChoice{}, openaiUsage(c.Usage)) != nil {
				return "client_gone"
			}
			_, _ = io.WriteString(w, "data: [DONE]\n\n")
			_ = rc.Flush()
			return "ok"
		}
	}
}

func errorOutcome(err error) string {
	var ce *clientError
	switch {
	case errors.As(err, &ce), errors.Is(err, ErrUnknownRoute), errors.Is(err, ErrIdempotencyMismatch):
		return "client_error"
	case errors.Is(err, ErrBudgetExceeded):
		return "budget_exceeded"
	}
	var pe *llm.ProviderError
	if errors.As(err, &pe) {
		return "upstream_" + string(pe.Class)
	}
	return "error"
}

// errorFields maps an error to the status, type, code and message the
// client sees. Upstream client errors keep their 4xx (but a provider's
// 401/403 is the gateway's misconfiguration: 502); provider faults are
// 502, 503 (overloaded) or 504 (timed out); throttling is 429.
func errorFields(err error) (status int, typ, code, msg string) {
	var ce *clientError
	if errors.As(err, &ce) {
		typ = "invalid_request_error"
		if ce.status == 401 {
			typ = "authentication_error"
		}
		return ce.status, typ, ce.code, ce.msg
	}
	if errors.Is(err, ErrUnknownRoute) {
		return 404, "invalid_request_error", "model_not_found", err.Error()
	}
	if errors.Is(err, ErrBudgetExceeded) {
		return 429, "insufficient_quota", "budget_exceeded", err.Error()
	}
	if errors.Is(err, ErrIdempotencyMismatch) {
		return 422, "invalid_request_error", "idempotency_key_mismatch",
			"This Idempotency-Key was used with a different request; use a new key for a new request."
	}
	if errors.Is(err, errIdempotencyUnavailable) {
		return 503, "server_error", "idempotency_unavailable", err.Error()
	}
	var pe *llm.ProviderError
	if !errors.As(err, &pe) {
		return 502, "upstream_error", "upstream_error", "upstream error"
	}
	msg = pe.Error()
	switch pe.Class {
	case llm.ClassClient:
		if pe.Status == 401 || pe.Status == 403 {
			return 502, "upstream_error", "upstream_auth_failed", msg
		}
		status = pe.Status
		if status < 400 || status > 499 {
			status = 400
		}
		return status, "invalid_request_error", "upstream_rejected", msg
	case llm.ClassThrottled:
		return 429, "rate_limit_error", "rate_limit_exceeded", msg
	case llm.ClassServer:
		if pe.Type == "circuit_open" {
			return 503, "upstream_error", "circuit_open", msg
		}
		if pe.Status == 503 || pe.Status == 529 {
			return 503, "upstream_error", "upstream_overloaded", msg
		}
		return 502, "upstream_error", "upstream_server_error", msg
	case llm.ClassCancelled:
		return 499, "request_cancelled", "client_closed_request", msg
	}
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		return 504, "upstream_error", "upstream_timeout", msg
	}
	return 502, "upstream_error", "upstream_unreachable", msg
}

func writeError(w http.ResponseWriter, err error) {
	status, typ, code, msg := errorFields(err)
	param := ""
	var ce *clientError
	if errors.As(err, &ce) {
		param = ce.param
	}
	var pe *llm.ProviderError
	if errors.As(err, &pe) && pe.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.FormatInt(int64((pe.RetryAfter+time.Second-1)/time.Second), 10))
	}
	writeErrorJSON(w, status, typ, param, code, msg)
}

func writeErrorJSON(w http.ResponseWriter, status int, typ, param, code, msg string) {
	e := map[string]any{"message": msg, "type": typ, "param": nil, "code": nil}
	if param != "" {
		e["param"] = param
	}
	if code != "" {
		e["code"] = code
	}
	writeJSON(w, status, map[string]any{"error": e})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if err := json.NewEncoder(w).Encode(v); err != nil {
		slog.Debug("gateway: write response", "error", err)
	}
}
