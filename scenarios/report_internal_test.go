package scenarios

import (
	"testing"
	"time"
)

// TestHumanDurations: durations as a report's reader needs them, never
// Go's nanosecond spelling (5m0.7345716s).
func TestHumanDurations(t *testing.T) {
	for _, tt := range []struct {
		d    time.Duration
		want string
	}{
		{501757469 * time.Nanosecond, "502ms"},
		{0, "0s"},
		{2345 * time.Millisecond, "2.3s"},
		{5*time.Minute + 734571600*time.Nanosecond, "5m00.7s"},
		{15*time.Minute + 61*time.Second/10, "15m06.1s"},
		{5*time.Minute + 59960*time.Millisecond, "6m00.0s"}, // not 5m60.0s
		{time.Hour + 5*time.Minute, "1h05m00.0s"},
	} {
		if got := human(tt.d); got != tt.want {
			t.Errorf("human(%s) = %q; want %q", tt.d, got, tt.want)
		}
	}
	if got := statusCounts(map[string]int{"503": 40, "200": 1201}); got != "200: 1201, 503: 40" {
		t.Errorf("statusCounts = %q", got)
	}
}
