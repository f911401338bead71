package wire

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brownout-dev/brownout/gateway/llm"
)

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		h    http.Header
		want time.Duration
	}{
		{Header("retry-after", "3"), 3 * time.Second},
		{Header("retry-after", "0.5"), 500 * time.Millisecond},
		{Header("retry-after", "3", "retry-after-ms", "2500"), 2500 * time.Millisecond},
		{Header("retry-after", now.Add(90*time.Second).Format(http.TimeFormat)), 90 * time.Second},
		{Header("retry-after", "soon"), 0},
		{Header("retry-after", "-4"), 0},
		{Header(), 0},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, RetryAfter(tt.h, now), "RetryAfter(%v)", tt.h)
	}
}

// TestReadBody reads bodies of a known length and of none, and refuses one
// cut short of its Content-Length and one over MaxBody, either way.
func TestReadBody(t *testing.T) {
	resp := func(length int64, body string) *http.Response {
		return &http.Response{StatusCode: 200, ContentLength: length, Body: io.NopCloser(strings.NewReader(body))}
	}
	for _, tt := range []struct {
		name   string
		resp   *http.Response
		want   string
		refuse llm.Class // "" when read whole
	}{
		{"its length", resp(7, `{"a":1}`), `{"a":1}`, ""},
		{"no length", resp(-1, `{"a":1}`), `{"a":1}`, ""},
		{"empty", resp(0, ``), ``, ""},
		{"cut short of its length", resp(10, `{"a":`), "", llm.ClassTransport},
		{"over MaxBody, no length", &http.Response{StatusCode: 200, ContentLength: -1,
			Body: io.NopCloser(io.LimitReader(zeros{}, MaxBody+1))}, "", llm.ClassTransport},
		{"over MaxBody, its length", &http.Response{StatusCode: 200, ContentLength: MaxBody + 1,
			Body: io.NopCloser(io.LimitReader(zeros{}, MaxBody+1))}, "", llm.ClassTransport},
	} {
		t.Run(tt.name, func(t *testing.T) {
			body, err := ReadBody("p", tt.resp, "req-1")
			if tt.refuse == "" {
				require.NoError(t, err)
				assert.True(t, bytes.Equal([]byte(tt.want), body), "read %q; want %q", body, tt.want)
				return
			}
			require.Error(t, err)
			var pe *llm.ProviderError
			require.ErrorAs(t, err, &pe)
			assert.Equal(t, tt.refuse, pe.Class, "%v", err)
		})
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }
