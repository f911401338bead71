package gateway

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"time"
)

// ErrIdempotencyMismatch is returned when an Idempotency-Key is reused with
// a different request: a 422.
var ErrIdempotencyMismatch = errors.New("gateway: idempotency key reused with a different request")

// ErrLeaseLost is a lease's holder acting on a key it no longer holds:
// its lease ran out (no heartbeat reached the store in time) and another
// request took the key over. Complete, Release and Heartbeat refuse it, so
// one request never completes or frees another's claim.
var ErrLeaseLost = errors.New("gateway: idempotency: the key's lease was lost to another request")

// StoredResponse is the response kept for an Idempotency-Key. A response
// over the store's MaxResponseBytes keeps its status and the size it had
// (Omitted), not its body: a duplicate is told so (a 409), and is never run
// again.
type StoredResponse struct {
	Status      int
	ContentType string
	Body        []byte
	Omitted     int64 // the body's bytes not kept; 0 when it was kept whole
}

// Lease is a request's claim on an Idempotency-Key. Only its holder may
// complete or release the key, and it keeps the claim alive with
// Heartbeat while the request runs; a claim whose heartbeats stop (its
// gateway died) is taken over by a duplicate once its lease runs out.
type Lease struct {
	Tenant, Key string
	Token       string        // this claim's own, unguessable
	TTL         time.Duration // how long it holds without a heartbeat
	MaxBody     int64         // the most response bytes the store keeps for replay
}

// IdempotencyStore keeps Idempotency-Key records, scoped per tenant.
// MemoryIdempotency and PostgresIdempotency implement it with the same
// semantics; the Postgres one works across gateway processes.
type IdempotencyStore interface {
	// Begin claims (tenant, key) for a request whose canonical form hashes
	// to hash. It returns the Lease when the caller now holds the key and
	// must Complete or Release it; the stored response when the key
	// completed before; ErrIdempotencyMismatch when the key was used with
	// another request. While another request holds the key, Begin waits
	// for it to finish, or for its lease to run out (then claims it).
	Begin(ctx context.Context, tenant, key string, hash []byte) (*Lease, *StoredResponse, error)
	// Heartbeat extends the lease by the store's lease time.
	Heartbeat(ctx context.Context, l *Lease) error
	// Complete stores the response of the leased key.
	Complete(ctx context.Context, l *Lease, resp StoredResponse) error
	// Release forgets the leased key, its request failed, so a retry runs.
	Release(ctx context.Context, l *Lease) error
	// Purge deletes completed keys past their retention and claims
	// abandoned past their lease; it returns how many. `brownout serve`
	// runs it in the background.
	Purge(ctx context.Context) (int, error)
}

// IdempotencySettings configure Idempotency-Key handling.
type IdempotencySettings struct {
	// Retention is how long a completed key is replayed (default 24h).
	Retention time.Duration `yaml:"retention"`
	// Lease is how long a claim holds without a heartbeat before a
	// duplicate may take it over, should its gateway die (default 30s;
	// the holder renews it every third of it while the request runs).
	Lease time.Duration `yaml:"lease"`
	// MaxResponseBytes is the largest response body kept for replay
	// (default 1 MiB); past it only the status is kept (StoredResponse).
	MaxResponseBytes int64 `yaml:"max_response_bytes"`
	// MaxKeys bounds the keys the in-memory store holds (default 100,000):
	// past it the completed key closest to expiry is dropped first, and a
	// claim is refused (a 503) when every key is in flight. Postgres is
	// bounded by Purge only.
	MaxKeys int `yaml:"max_keys"`
	// MaxBytes bounds the response bodies the in-memory store keeps for
	// replay, together (default 256 MiB): a completion past it drops the
	// completed keys closest to expiry first, as MaxKeys does. Without it
	// the store's bound would be MaxKeys times MaxResponseBytes (100 GiB at
	// the defaults). At least MaxResponseBytes.
	MaxBytes int64 `yaml:"max_bytes"`
}

func (s IdempotencySettings) withDefaults() IdempotencySettings {
	if s.Retention <= 0 {
		s.Retention = 24 * time.Hour
	}
	if s.Lease <= 0 {
		s.Lease = 30 * time.Second
	}
	if s.MaxResponseBytes <= 0 {
		s.MaxResponseBytes = 1 << 20
	}
	if s.MaxKeys <= 0 {
		s.MaxKeys = 100_000
	}
	if s.MaxBytes <= 0 {
		s.MaxBytes = max(256<<20, s.MaxResponseBytes)
	}
	return s
}

// newLeaseToken is a claim's unguessable token.
func newLeaseToken() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// errIdempotencyFull is the in-memory store at MaxKeys with every key in
// flight.
var errIdempotencyFull = errors.New("gateway: idempotency: every key slot is in flight")

// MemoryIdempotency is an IdempotencyStore in process memory: the embedded
// default, bounded by MaxKeys. Waiting duplicates block on a channel or a
// timer, so they wait in virtual time under testing/synctest. Safe for
// concurrent use.
type MemoryIdempotency struct {
	settings IdempotencySettings
	now      func() time.Time

	mu   sync.Mutex
	keys map[[2]string]*memKey
	// completed are the completed keys in the order they completed, which
	// is the order they expire in (one retention for all): eviction pops
	// the front. An entry whose key completed again since is stale.
	completed []completion
	// kept is the bytes of the bodies of the completed keys (MaxBytes).
	kept int64
}

type completion struct {
	id      [2]string
	expires time.Time
}

type memKey struct {
	hash       string
	token      string        // the holder's, while in flight
	done       chan struct{} // closed when completed, released or taken over
	resp       *StoredResponse
	leaseUntil time.Time // while in flight
	expires    time.Time // once completed
}

var _ IdempotencyStore = (*MemoryIdempotency)(nil)

// NewMemoryIdempotency returns an empty store; now is its clock (nil: time.Now).
func NewMemoryIdempotency(s IdempotencySettings, now func() time.Time) *MemoryIdempotency {
	if now == nil {
		now = time.Now
	}
	return &MemoryIdempotency{settings: s.withDefaults(), now: now, keys: map[[2]string]*memKey{}}
}

// Len is how many keys the store holds.
func (m *MemoryIdempotency) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.keys)
}

// Begin implements IdempotencyStore.
func (m *MemoryIdempotency) Begin(ctx context.Context, tenant, key string, hash []byte) (*Lease, *StoredResponse, error) {
	id := [2]string{tenant, key}
	for {
		m.mu.Lock()
		now := m.now()
		k := m.keys[id]
		if k != nil && k.resp == nil && now.After(k.leaseUntil) && k.hash == string(hash) {
			close(k.done) // its holder stopped renewing: take it over
			delete(m.keys, id)
			k = nil
		}
		if k == nil || (k.resp != nil && now.After(k.expires)) {
			if k != nil {
				m.kept -= int64(len(k.resp.Body)) // expired: replaced below
			}
			if k == nil && len(m.keys) >= m.settings.MaxKeys && !m.evict(now) {
				m.mu.Unlock()
				return nil, nil, errIdempotencyFull
			}
			l := &Lease{Tenant: tenant, Key: key, Token: newLeaseToken(), TTL: m.settings.Lease, MaxBody: m.settings.MaxResponseBytes}
			m.keys[id] = &memKey{hash: string(hash), token: l.Token, done: make(chan struct{}), leaseUntil: now.Add(m.settings.Lease)}
			m.mu.Unlock()
			return l, nil, nil
		}
		if k.hash != string(hash) {
			m.mu.Unlock()
			return nil, nil, ErrIdempotencyMismatch
		}
		if k.resp != nil {
			resp := *k.resp
			m.mu.Unlock()
			return nil, &resp, nil
		}
		done, wait := k.done, k.leaseUntil.Sub(now)
		m.mu.Unlock()
		timer := time.NewTimer(wait + time.Millisecond)
		select {
		case <-done: // completed (replay), released or taken over (claim it)
		case <-timer.C: // the lease ran out: take it over, unless renewed
		case <-ctx.Done():
			timer.Stop()
			return nil, nil, ctx.Err()
		}
		timer.Stop()
	}
}

// evict makes room for one key by dropping the completed key closest to
// expiry (expired or not), in constant time amortised. It reports whether
// there is room; m.mu is held.
func (m *MemoryIdempotency) evict(time.Time) bool {
	for len(m.completed) > 0 {
		c := m.completed[0]
		m.completed = m.completed[1:]
		if k := m.keys[c.id]; k != nil && k.resp != nil && k.expires.Equal(c.expires) {
			delete(m.keys, c.id)
			m.kept -= int64(len(k.resp.Body))
			return true
		}
	}
	return false
}

// held returns the key l holds, or ErrLeaseLost; m.mu is held.
func (m *MemoryIdempotency) held(l *Lease) (*memKey, error) {
	k := m.keys[[2]string{l.Tenant, l.Key}]
	if k == nil || k.resp != nil || k.token != l.Token {
		return nil, ErrLeaseLost
	}
	return k, nil
}

// Heartbeat implements IdempotencyStore.
func (m *MemoryIdempotency) Heartbeat(_ context.Context, l *Lease) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	k, err := m.held(l)
	if err != nil {
		return err
	}
	k.leaseUntil = m.now().Add(m.settings.Lease)
	return nil
}

// Complete implements IdempotencyStore.
func (m *MemoryIdempotency) Complete(_ context.Context, l *Lease, resp StoredResponse) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	k, err := m.held(l)
	if err != nil {
		return err
	}
	resp = keepable(resp, m.settings.MaxResponseBytes)
	size := int64(len(resp.Body))
	if size > m.settings.MaxBytes {
		// Larger than the whole bound (MaxBytes under MaxResponseBytes,
		// which the configuration refuses): keep the status, as for a body
		// over MaxResponseBytes, and drop no other key for it.
		resp.Body, resp.Omitted, size = nil, size, 0
	}
	for m.kept+size > m.settings.MaxBytes && m.evict(m.now()) {
		// kept is the bodies of completed keys, which evict drops oldest
		// first, so this ends with the body fitting.
	}
	m.kept += size
	k.resp, k.expires, k.token = &resp, m.now().Add(m.settings.Retention), ""
	m.completed = append(m.completed, completion{id: [2]string{l.Tenant, l.Key}, expires: k.expires})
	close(k.done)
	return nil
}

// Release implements IdempotencyStore.
func (m *MemoryIdempotency) Release(_ context.Context, l *Lease) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	k, err := m.held(l)
	if err != nil {
		return err
	}
	delete(m.keys, [2]string{l.Tenant, l.Key})
	close(k.done)
	return nil
}

// Purge implements IdempotencyStore.
func (m *MemoryIdempotency) Purge(context.Context) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now, n := m.now(), 0
	for len(m.completed) > 0 && now.After(m.completed[0].expires) {
		m.completed = m.completed[1:] // expired: the keys go below
	}
	m.completed = slices.Clip(m.completed) // let the popped front be freed on the next append
	for id, k := range m.keys {
		if (k.resp != nil && now.After(k.expires)) || (k.resp == nil && now.After(k.leaseUntil.Add(m.settings.Lease))) {
			if k.resp == nil {
				close(k.done)
			} else {
				m.kept -= int64(len(k.resp.Body))
			}
			delete(m.keys, id)
			n++
		}
	}
	return n, nil
}

// keepable is resp as a store keeps it: whole, or without its body when it
// is over max bytes.
func keepable(resp StoredResponse, max int64) StoredResponse {
	if n := int64(len(resp.Body)) + resp.Omitted; n > max {
		resp.Body, resp.Omitted = nil, n
	}
	return resp
}

// PurgeEvery runs store.Purge every interval until ctx ends: the
// background sweep of expired keys `brownout serve` runs.
func PurgeEvery(ctx context.Context, store IdempotencyStore, every time.Duration, log *slog.Logger) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			n, err := store.Purge(ctx)
			switch {
			case err != nil && ctx.Err() == nil:
				log.Warn("gateway: idempotency purge", "error", err)
			case n > 0:
				log.Debug("gateway: idempotency purge", "keys", n)
			}
		}
	}
}
