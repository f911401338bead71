package gateway

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// TestAnOutageIsALineEveryTenSeconds: a store's errors are written at
// once for the first, then at most one each outageLogEvery, each line
// with the count of the errors left out since the line before.
func TestAnOutageIsALineEveryTenSeconds(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		}}))
	var o outageLog
	t0 := time.Date(2026, 12, 7, 18, 0, 0, 0, time.UTC)
	for i, at := range []time.Duration{0, time.Second, 9 * time.Second, 10 * time.Second, 12 * time.Second, time.Hour} {
		o.error(log, t0.Add(at), "store unavailable", "request_id", i)
	}
	assert.Equal(t, []string{
		`level=ERROR msg="store unavailable" request_id=0 not_logged=0`,
		`level=ERROR msg="store unavailable" request_id=3 not_logged=2`,
		`level=ERROR msg="store unavailable" request_id=5 not_logged=1`,
	}, strings.Split(strings.TrimSpace(buf.String()), "\n"))
}
