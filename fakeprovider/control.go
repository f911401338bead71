package fakeprovider

import (
	"bytes"
	"crypto/subtle"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"time"
)

// control serves the fake's own API under /_fake/:
//
//	GET  /_fake/faults    the current faults, as JSON
//	PUT  /_fake/faults    replace them (a JSON array of Fault; durations in nanoseconds)
//	GET  /_fake/invoice   what the fake has billed
//	GET  /_fake/requests  the request journal
//	POST /_fake/reset     clear journal and invoice, restart clock and dice
//	GET  /_fake/billing_export?from=T&to=T
//	                      what the fake billed as a Cloud Billing export
//	                      (JSON lines; RFC 3339 times, default: everything)
//
// It changes what the fake does and shows what it billed, so it answers
// only clients on the same host (loopback, or the in-memory transport)
// and, with Config.ControlToken set, only requests that carry it.
func (s *Server) control(w http.ResponseWriter, r *http.Request) {
	if !localClient(r.RemoteAddr) {
		writeJSON(w, http.StatusForbidden, map[string]string{"error": "the control API answers clients on this host only"})
		return
	}
	if s.cfg.ControlToken != "" && subtle.ConstantTimeCompare([]byte(r.Header.Get("X-Fake-Control-Token")), []byte(s.cfg.ControlToken)) != 1 {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "the control API needs the X-Fake-Control-Token header"})
		return
	}
	route := r.Method + " " + r.URL.Path
	switch route {
	case "GET /_fake/faults":
		writeJSON(w, http.StatusOK, s.Faults())
	case "PUT /_fake/faults":
		body, err := io.ReadAll(io.LimitReader(r.Body, maxBody))
		if err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		var faults []Fault
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&faults); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "faults: " + err.Error()})
			return
		}
		if err := s.SetFaults(faults); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, s.Faults())
	case "GET /_fake/invoice":
		writeJSON(w, http.StatusOK, s.Invoice())
	case "GET /_fake/requests":
		writeJSON(w, http.StatusOK, s.Journal())
	case "GET /_fake/billing_export":
		from, err := rfc3339Param(r, "from", false)
		if from.IsZero() {
			s.mu.Lock()
			from = s.start
			s.mu.Unlock()
		}
		if err == nil {
			var to time.Time
			if to, err = rfc3339Param(r, "to", false); err == nil {
				if to.IsZero() {
					to = time.Now().Add(time.Second)
				}
				w.Header().Set("Content-Type", "application/x-ndjson")
				_, _ = w.Write(s.BillingExport(from, to))
				return
			}
		}
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "billing_export: " + err.Error()})
	case "POST /_fake/reset":
		s.Reset()
		w.WriteHeader(http.StatusNoContent)
	default:
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "no control endpoint " + route})
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// localClient reports whether a request's remote address is on this host:
// a loopback address, or the in-memory transport's pipe.
func localClient(remote string) bool {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		return remote == "pipe" // net.Pipe, the in-memory transport
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
