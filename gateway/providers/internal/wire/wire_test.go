package wire

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
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
