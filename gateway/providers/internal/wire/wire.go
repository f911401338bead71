// Package wire is what the vendor adapters share: posting JSON, reading
// bounded bodies, the Retry-After headers, and turning error answers into
// *llm.ProviderError.
package wire

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	jsonexp "github.com/go-json-experiment/json/v1"

	"github.com/brownout-dev/brownout/gateway/llm"
	"github.com/brownout-dev/brownout/internal/jsonscan"
)

// MaxBody bounds a non-streamed response body.
const MaxBody = 16 << 20

// MaxMessage bounds the vendor message kept in an error.
const MaxMessage = 512

// PostJSON sends b, a JSON body each adapter encodes without reflection,
// to url. A failure to get a response is a transport error; the caller
// reads and closes resp.Body.
func PostJSON(ctx context.Context, c *http.Client, provider, url string, header http.Header, b []byte) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("%s: build request: %w", provider, err)
	}
	req.Header = header
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return nil, llm.Transport(provider, scrub(err))
	}
	return resp, nil
}

// scrub drops the URL from a *url.Error, so no query string (a Gemini key
// may travel as ?key=) reaches an error message or a log.
func scrub(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	return err
}

// Decode decodes a vendor's answer, or one event of its stream, into v
// with encoding/json's semantics (names matched regardless of case,
// unknown members ignored, invalid UTF-8 replaced, the last of duplicate
// names kept), on the engine of encoding/json/v2 that carries them in
// go-json-experiment/json/v1: gateway.BenchmarkDecodeCodecs measures it at about
// half encoding/json's time with a third of its allocations. An error's
// words differ from encoding/json's; they are only ever wrapped.
func Decode(data []byte, v any) error { return jsonexp.Unmarshal(data, v) }

// AppendMessages appends msgs as json.Marshal encodes them (null for
// none): the messages of the OpenAI and Anthropic adapters' requests,
// written without reflection.
func AppendMessages(b []byte, msgs []llm.Message) []byte {
	if msgs == nil {
		return append(b, "null"...)
	}
	b = append(b, '[')
	for i, m := range msgs {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"role":`...)
		b = jsonscan.AppendQuoted(b, m.Role)
		b = append(b, `,"content":`...)
		b = jsonscan.AppendQuoted(b, m.Content)
		b = append(b, '}')
	}
	return append(b, ']')
}

// AppendStrings appends ss as json.Marshal encodes a non-nil []string:
// the stop sequences of every adapter's request.
func AppendStrings(b []byte, ss []string) []byte {
	b = append(b, '[')
	for i, s := range ss {
		if i > 0 {
			b = append(b, ',')
		}
		b = jsonscan.AppendQuoted(b, s)
	}
	return append(b, ']')
}

// ScanOrDecode decodes data with scan, a reader of the common body on a
// jsonscan.Scanner, or with Decode where scan declines it (false): the
// adapters' decoders of the bodies every call reads, each held to Decode
// by a fuzz test (wiretest.AgreesWithDecode).
func ScanOrDecode[T any](data []byte, scan func([]byte) (T, bool)) (T, error) {
	if v, ok := scan(data); ok {
		return v, nil
	}
	var v T
	err := Decode(data, &v)
	return v, err
}

// ReadBody reads a whole non-streamed body, at most MaxBody bytes. A body
// cut short is a transport error.
func ReadBody(provider string, resp *http.Response, requestID string) ([]byte, error) {
	if n := resp.ContentLength; n >= 0 && n <= MaxBody {
		// Its length is known: one allocation of that size, where ReadAll
		// would grow a buffer to it. net/http ends a body at its length,
		// and reports one shorter as io.ErrUnexpectedEOF.
		body := make([]byte, n)
		if _, err := io.ReadFull(resp.Body, body); err != nil {
			return nil, llm.Transport(provider, fmt.Errorf("read body: %w", err))
		}
		return body, nil
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxBody+1))
	if err != nil {
		return nil, llm.Transport(provider, fmt.Errorf("read body: %w", err))
	}
	if len(body) > MaxBody {
		return nil, llm.Malformed(provider, resp.StatusCode, requestID, fmt.Errorf("body over %d bytes", MaxBody))
	}
	return body, nil
}

// RetryAfter reads how long the answer asks the client to wait: the
// retry-after-ms header, else retry-after in seconds or as an HTTP date
// (relative to now). 0 when neither says.
func RetryAfter(h http.Header, now time.Time) time.Duration {
	if v := h.Get("retry-after-ms"); v != "" {
		if ms, err := strconv.ParseFloat(v, 64); err == nil && ms >= 0 {
			return time.Duration(ms * float64(time.Millisecond))
		}
	}
	v := strings.TrimSpace(h.Get("retry-after"))
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseFloat(v, 64); err == nil && s >= 0 {
		return time.Duration(s * float64(time.Second))
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// StatusError is the error of an answer with an error status.
func StatusError(provider string, status int, typ, msg string, retryAfter time.Duration, requestID string) *llm.ProviderError {
	return &llm.ProviderError{
		Provider: provider, Class: llm.ClassOfStatus(status), Status: status, Type: typ,
		Message: Clip(msg), RetryAfter: retryAfter, RequestID: requestID,
	}
}

// Clip truncates a vendor message to MaxMessage bytes.
func Clip(s string) string {
	if len(s) <= MaxMessage {
		return s
	}
	return strings.ToValidUTF8(s[:MaxMessage], "") + "..."
}

// Header returns a header with the given key/value pairs.
func Header(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Set(kv[i], kv[i+1])
	}
	return h
}

// Defaults fills an adapter's unset settings: its name, the vendor's base
// URL, http.DefaultClient and time.Now.
func Defaults(name *string, baseURL *string, client **http.Client, now *func() time.Time, defName, defBase string) {
	if *name == "" {
		*name = defName
	}
	if *baseURL == "" {
		*baseURL = defBase
	}
	if *client == nil {
		*client = http.DefaultClient
	}
	if *now == nil {
		*now = time.Now
	}
}
