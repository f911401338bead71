package fakeprovider

import (
	"math"
	"time"

	"github.com/brownout-dev/brownout/internal/strictyaml"
)

// FaultQuota enforces a real token bucket per RPM (requests per minute) and
// TPM (tokens per minute), refilled continuously on the fake's clock. A
// request is admitted when the bucket holds one request and its token
// estimate (input plus max_tokens when given); once it is answered, the
// estimate is settled to the tokens it really used. Otherwise it gets a 429
// whose retry-after is the time until the bucket holds enough. Every answer
// carries the vendor's rate-limit headers (x-ratelimit-* for OpenAI,
// anthropic-ratelimit-* for Anthropic), counting down as the bucket drains.
// Probability and Count do not apply: a quota always counts.
const FaultQuota FaultKind = "quota"

func init() {
	registerFault(FaultQuota, faultSpec{
		validate: func(f *Fault) error {
			if f.RPM < 0 || f.TPM < 0 || f.RPM == 0 && f.TPM == 0 {
				return strictyaml.Errorf("rpm", "quota needs a positive rpm, tpm or both (got rpm %d, tpm %d)", f.RPM, f.TPM)
			}
			return nil
		},
		apply: func(p *plan, f *Fault, st *faultState, in faultInput) {
			if st.quota == nil {
				st.quota = &tokenBucket{rpm: f.RPM, tpm: f.TPM, reqs: float64(f.RPM), toks: float64(f.TPM), last: in.now}
			}
			b := st.quota
			b.refill(in.now)
			if wait := b.wait(in.tokens); wait > 0 || p.reject != nil {
				if p.reject == nil {
					p.reject = &apiError{status: 429, kind: errRateLimit, code: "rate_limit_exceeded", retryAfter: wait,
						msg: "Rate limit reached for requests and tokens per minute. Please try again later."}
				}
			} else {
				b.take(1, in.tokens)
				p.quotaBuckets = append(p.quotaBuckets, b)
			}
			p.quotaHeaders = append(p.quotaHeaders, b.view())
		},
	})
}

// tokenBucket is a quota's state. Its fields are guarded by the server's mutex.
type tokenBucket struct {
	rpm, tpm   int
	reqs, toks float64 // available now
	last       time.Duration
}

func (b *tokenBucket) refill(now time.Duration) {
	if now <= b.last {
		return
	}
	minutes := (now - b.last).Minutes()
	if b.rpm > 0 {
		b.reqs = min(float64(b.rpm), b.reqs+minutes*float64(b.rpm))
	}
	if b.tpm > 0 {
		b.toks = min(float64(b.tpm), b.toks+minutes*float64(b.tpm))
	}
	b.last = now
}

// wait returns how long until the bucket holds one request and tokens; 0 if
// it does now. A request larger than the whole TPM waits for a full bucket.
func (b *tokenBucket) wait(tokens int) time.Duration {
	var need float64
	if b.rpm > 0 && b.reqs < 1 {
		need = max(need, (1-b.reqs)/float64(b.rpm))
	}
	if b.tpm > 0 {
		want := min(float64(tokens), float64(b.tpm))
		if b.toks < want {
			need = max(need, (want-b.toks)/float64(b.tpm))
		}
	}
	if need == 0 {
		return 0
	}
	// Whole milliseconds, rounded up, so a client that waits exactly this
	// long finds the bucket full enough.
	return time.Duration(math.Ceil(need*60_000)) * time.Millisecond
}

func (b *tokenBucket) take(reqs float64, tokens int) {
	if b.rpm > 0 {
		b.reqs -= reqs
	}
	if b.tpm > 0 {
		b.toks -= float64(tokens)
	}
}

// quotaView is what the rate-limit headers say about a bucket.
type quotaView struct {
	rpm, tpm               int
	reqsLeft, toksLeft     int
	reqsReset, toksReset   time.Duration // until full again
	hasRequests, hasTokens bool
}

func (b *tokenBucket) view() quotaView {
	v := quotaView{rpm: b.rpm, tpm: b.tpm, hasRequests: b.rpm > 0, hasTokens: b.tpm > 0}
	if b.rpm > 0 {
		v.reqsLeft = max(0, int(math.Floor(b.reqs)))
		v.reqsReset = time.Duration((float64(b.rpm) - b.reqs) / float64(b.rpm) * float64(time.Minute)).Round(time.Millisecond)
	}
	if b.tpm > 0 {
		v.toksLeft = max(0, int(math.Floor(b.toks)))
		v.toksReset = time.Duration((float64(b.tpm) - b.toks) / float64(b.tpm) * float64(time.Minute)).Round(time.Millisecond)
	}
	return v
}
