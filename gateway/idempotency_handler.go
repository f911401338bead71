package gateway

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/brownout-dev/brownout/gateway/ledger"
)

// errReplayed tells chat that claim answered the request from the store.
var errReplayed = errors.New("gateway: replayed")

// errIdempotencyUnavailable is a key store that failed: a 503, never a
// silent second execution. errBudgetUnavailable is the same of a budget
// store: never a call its budget did not cover. The client gets the
// gateway's words only; the store's error, which can name the database's
// host, user and database, goes to the log.
var (
	errIdempotencyUnavailable = errors.New("gateway: idempotency store unavailable")
	errBudgetUnavailable      = errors.New("gateway: budget store unavailable")
)

// storeRetryAfter is the Retry-After of a 503 for a key or budget store
// that failed: as long as a request waits for a pooled connection
// (DefaultConnectionWait), so a client that honours it (the OpenAI SDKs
// do) comes back no sooner than one would come free.
const storeRetryAfter = time.Second

// errClientGone is a request whose client went away before its upstream
// call: nothing to answer, and nothing the store did wrong.
var errClientGone = errors.New("gateway: the client went away")

// checkIdempotencyKey holds a key to the ledger's limits for an identifier
// (it is a column of every row): a key the ledger would refuse is a 400
// here, before any upstream call, never a billed call without a row.
func checkIdempotencyKey(k string) *clientError {
	if len(k) > ledger.MaxIDLen || strings.ContainsFunc(k, func(r rune) bool { return r < 0x21 || r > 0x7e }) {
		return &clientError{status: 400, param: "Idempotency-Key", code: "invalid_idempotency_key",
			msg: fmt.Sprintf("Invalid Idempotency-Key: at most %d printable ASCII characters, no spaces.", ledger.MaxIDLen)}
	}
	return nil
}

// requestHash is the identity of a request for its Idempotency-Key: the
// canonical request, so a client that re-encodes the same JSON differently
// still matches. What it hashes is json.Marshal's encoding of
// {Route, LLM, Stream, IncludeUsage}, the bytes every stored hash was made
// from, written without reflection (hashedRequest; FuzzHashedRequest
// holds the two to the same bytes), so a hash kept in a shared store
// still matches after a deploy.
func requestHash(req *Request, stream, includeUsage bool) []byte {
	sum := sha256.Sum256(hashedRequest(make([]byte, 0, 256), req, stream, includeUsage))
	return sum[:]
}

// hashedRequest appends the bytes requestHash hashes.
func hashedRequest(b []byte, req *Request, stream, includeUsage bool) []byte {
	c := &req.LLM
	b = append(b, `{"Route":`...)
	b = appendMarshalString(b, req.Route)
	b = append(b, `,"LLM":{"Model":`...)
	b = appendMarshalString(b, c.Model)
	b = append(b, `,"Messages":`...)
	if c.Messages == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i, m := range c.Messages {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"role":`...)
			b = appendMarshalString(b, m.Role)
			b = append(b, `,"content":`...)
			b = appendMarshalString(b, m.Content)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	b = append(b, `,"MaxTokens":`...)
	b = strconv.AppendInt(b, int64(c.MaxTokens), 10)
	b = append(b, `,"Temperature":`...)
	if c.Temperature == nil {
		b = append(b, "null"...)
	} else {
		b = appendMarshalFloat(b, *c.Temperature)
	}
	b = append(b, `,"Stop":`...)
	if c.Stop == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i, s := range c.Stop {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendMarshalString(b, s)
		}
		b = append(b, ']')
	}
	b = append(b, `},"Stream":`...)
	b = strconv.AppendBool(b, stream)
	b = append(b, `,"IncludeUsage":`...)
	b = strconv.AppendBool(b, includeUsage)
	return append(b, '}')
}

// appendMarshalString appends s as json.Marshal does, byte for byte: <, >
// and & escaped for HTML, U+2028 and U+2029 escaped, invalid UTF-8 as
// \ufffd.
func appendMarshalString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// appendMarshalFloat appends f as json.Marshal does a float64: the
// shortest form that reads back as f, with an exponent only below 1e-6
// or from 1e21 on, and none of its digits padded.
func appendMarshalFloat(b []byte, f float64) []byte {
	format := byte('f')
	if a := math.Abs(f); a != 0 && (a < 1e-6 || a >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// e-09 to e-9
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

// claim runs the Idempotency-Key protocol for a request whose canonical
// form hashes to hash. A key completed before is replayed here
// (errReplayed), with no upstream call and no ledger row; a duplicate in
// flight waits for the first and gets its response; a key used with
// another request is a 422. When the caller owns the key, claim returns a
// writer that keeps a copy of the response, and a release func that stores
// it (a final answer, or a client error) or forgets the key (a failure
// worth retrying); the caller defers release whenever it is not nil, error
// or not.
//
// With resv and a store that can (PostgresIdempotency beside
// PostgresBudgets on one database), the claim also takes the reservation,
// in the same statement: reserved reports it, and a budget that cannot
// cover it is the error (the key is claimed, and released).
func (h *handler) claim(w http.ResponseWriter, r *http.Request, req *Request, hash []byte, resv *reservation) (_ http.ResponseWriter, _ func(string), reserved bool, _ error) {
	store := h.opts.Idempotency
	var lease *Lease
	var stored *StoredResponse
	var err error
	pg, combined := store.(*PostgresIdempotency)
	combined = combined && resv != nil && !resv.sliced && pg.reservesOn(h.g.budgetStore)
	if combined {
		lease, stored, reserved, err = pg.begin(r.Context(), req.Tenant, req.IdempotencyKey, hash, resv)
	} else {
		lease, stored, err = store.Begin(r.Context(), req.Tenant, req.IdempotencyKey, hash)
	}
	if stored != nil && stored.Omitted > 0 {
		return nil, nil, false, responseNotKept{size: stored.Omitted}
	}
	switch {
	case errors.Is(err, ErrIdempotencyMismatch):
		return nil, nil, false, err
	case err != nil && r.Context().Err() != nil:
		return nil, nil, false, fmt.Errorf("%w: %w", errClientGone, context.Cause(r.Context()))
	case err != nil:
		h.g.idempotencyDown.error(h.g.log, h.g.now(), "gateway: idempotency store unavailable", "request_id", req.ID, "tenant", req.Tenant, "error", err)
		return nil, nil, false, fmt.Errorf("%w: %w", errIdempotencyUnavailable, err)
	case stored != nil:
		w.Header().Set("Content-Type", stored.ContentType)
		w.Header().Set("Idempotent-Replayed", "true")
		w.WriteHeader(stored.Status)
		_, _ = w.Write(stored.Body)
		return nil, nil, false, errReplayed
	}
	ctx := context.WithoutCancel(r.Context())
	stopHeartbeat := h.heartbeat(ctx, lease, req.ID)
	cw := &captureWriter{ResponseWriter: w, limit: lease.MaxBody}
	release := func(outcome string) {
		if cw.status != 0 {
			// The client has its answer before the store's round trip, not
			// after it: a duplicate meanwhile waits on the lease and replays.
			_ = http.NewResponseController(cw).Flush()
		}
		stopHeartbeat()
		keep := outcome == "ok" || outcome == "client_error"
		var err error
		if keep {
			err = store.Complete(ctx, lease,
				StoredResponse{Status: cw.status, ContentType: cw.Header().Get("Content-Type"), Body: cw.body.Bytes(), Omitted: cw.omitted})
		} else {
			err = store.Release(ctx, lease)
		}
		if err != nil {
			h.g.log.Error("gateway: idempotency store", "request_id", req.ID, "keep", keep, "error", err)
		}
	}
	if combined && !reserved {
		return cw, release, false, h.g.refuse(req, resv)
	}
	return cw, release, reserved, nil
}

// heartbeat renews lease every third of its TTL while the request runs,
// so a long request (a stream of many minutes) keeps its key; the returned
// func stops it and waits for a renewal in progress. A lease found lost is
// logged: the key went to another request, which this one can no longer
// complete. It runs on a timer, not a goroutine of its own: most requests
// end before their first renewal, and then cost no goroutine at all. A
// renewal is given up once the next one is due: with the store stalled
// (a database that stopped answering, a lock on the key's table), the
// request's end, which waits for a renewal in progress, waits no longer
// than that, and the renewal's connection is not held for as long as the
// stall lasts.
func (h *handler) heartbeat(ctx context.Context, lease *Lease, requestID string) func() {
	every := max(lease.TTL/3, time.Millisecond)
	var (
		mu      sync.Mutex
		stopped bool
		beating chan struct{} // closed when the renewal in progress returns; nil: none
		timer   *time.Timer
	)
	beat := func() {
		mu.Lock()
		if stopped {
			mu.Unlock()
			return
		}
		done := make(chan struct{})
		beating = done
		mu.Unlock()
		start := time.Now()
		rctx, cancel := context.WithTimeout(ctx, every)
		err := h.opts.Idempotency.Heartbeat(rctx, lease)
		cancel()
		if err != nil {
			h.g.log.Error("gateway: idempotency heartbeat", "request_id", requestID, "error", err)
		}
		mu.Lock()
		defer mu.Unlock()
		beating = nil
		close(done)
		if !stopped && !errors.Is(err, ErrLeaseLost) {
			timer.Reset(max(every-time.Since(start), 0))
		}
	}
	mu.Lock()
	timer = time.AfterFunc(every, beat)
	mu.Unlock()
	return func() {
		mu.Lock()
		stopped = true
		timer.Stop()
		done := beating
		mu.Unlock()
		if done != nil {
			<-done
		}
	}
}

// responseNotKept is a duplicate of a key whose response was too large to
// keep: a 409, never a second run of the request.
type responseNotKept struct{ size int64 }

func (e responseNotKept) Error() string {
	return fmt.Sprintf("The response to this Idempotency-Key (%d bytes) was larger than the gateway keeps; it was delivered once and is not replayed. Use a new key for a new request.", e.size)
}

// captureWriter passes a response through and keeps a copy of it, up to
// limit bytes; past it, it only counts (omitted).
type captureWriter struct {
	http.ResponseWriter
	status  int
	limit   int64
	body    bytes.Buffer
	omitted int64
}

func (c *captureWriter) WriteHeader(status int) {
	if c.status == 0 {
		c.status = status
	}
	c.ResponseWriter.WriteHeader(status)
}

func (c *captureWriter) Write(b []byte) (int, error) {
	if c.status == 0 {
		c.status = http.StatusOK
	}
	if c.omitted == 0 && int64(c.body.Len()+len(b)) <= c.limit {
		c.body.Write(b)
	} else {
		c.omitted += int64(c.body.Len() + len(b))
		c.body = bytes.Buffer{} // the whole body is not kept, not a part of it
	}
	return c.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach Flush.
func (c *captureWriter) Unwrap() http.ResponseWriter { return c.ResponseWriter }
