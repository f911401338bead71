package gateway

import (
	"log/slog"
	"sync"
	"time"
)

// outageLogEvery is the least time between two lines an outageLog writes.
const outageLogEvery = 10 * time.Second

// outageLog writes the errors of a store every request meets while it is
// down: the first at once, then at most one each outageLogEvery, each with
// the number left out since the line before (not_logged). A database down
// under 1,000 requests a second is then a line every ten seconds, not a
// thousand a second; the requests themselves are each counted in the
// metrics (brownout_requests_total, outcome error), and each client is
// told (a 503). The zero value is ready to use.
type outageLog struct {
	mu      sync.Mutex
	last    time.Time // when the last line was written; zero: none yet
	skipped int       // errors since, not written
}

// error writes msg with args at error level, unless a line was written
// less than outageLogEvery before now.
func (o *outageLog) error(log *slog.Logger, now time.Time, msg string, args ...any) {
	o.mu.Lock()
	if !o.last.IsZero() && now.Sub(o.last) < outageLogEvery {
		o.skipped++
		o.mu.Unlock()
		return
	}
	skipped := o.skipped
	o.last, o.skipped = now, 0
	o.mu.Unlock()
	log.Error(msg, append(args, "not_logged", skipped)...)
}
