package gateway

import (
	"context"
	"errors"
	"sync"
	"time"
)

// ErrIdempotencyMismatch is returned when an Idempotency-Key is reused with
// a different request: a 422.
var ErrIdempotencyMismatch = errors.New("gateway: idempotency key reused with a different request")

// StoredResponse is the response kept for an Idempotency-Key.
type StoredResponse struct {
	Status      int
	ContentType string
	Body        []byte
}

// IdempotencyStore keeps Idempotency-Key records, scoped per tenant.
// MemoryIdempotency and PostgresIdempotency implement it with the same
// semantics; the Postgres one works across gateway processes.
type IdempotencyStore interface {
	// Begin claims (tenant, key) for a request whose canonical form hashes
	// to hash. It returns (nil, nil) when the caller owns the key and must
	// Complete or Release it; the stored response when the key completed
	// before; ErrIdempotencyMismatch when the key was used with another
	// request. While another request holds the key, Begin waits for it.
	Begin(ctx context.Context, tenant, key string, hash []byte) (*StoredResponse, error)
	// Complete stores the response of a claimed key.
	Complete(ctx context.Context, tenant, key string, resp StoredResponse) error
	// Release forgets a claimed key whose request failed, so a retry runs.
	Release(ctx context.Context, tenant, key string) error
}

// IdempotencySettings configure Idempotency-Key handling.
type IdempotencySettings struct {
	// Retention is how long a completed key is replayed (default 24h).
	Retention time.Duration `yaml:"retention"`
	// Lease is how long a claim holds before another request may take it
	// over, should its owner die (default 5m; longer than any request).
	Lease time.Duration `yaml:"lease"`
}

func (s IdempotencySettings) withDefaults() IdempotencySettings {
	if s.Retention <= 0 {
		s.Retention = 24 * time.Hour
	}
	if s.Lease <= 0 {
		s.Lease = 5 * time.Minute
	}
	return s
}

// MemoryIdempotency is an IdempotencyStore in process memory: the embedded
// default. Waiting duplicates block on a channel, so they wait in virtual
// time under testing/synctest. Safe for concurrent use.
type MemoryIdempotency struct {
	settings IdempotencySettings
	now      func() time.Time

	mu   sync.Mutex
	keys map[[2]string]*memKey
}

type memKey struct {
	hash    string
	done    chan struct{} // closed when completed or released
	resp    *StoredResponse
	expires time.Time
}

var _ IdempotencyStore = (*MemoryIdempotency)(nil)

// NewMemoryIdempotency returns an empty store; now is its clock (nil: time.Now).
func NewMemoryIdempotency(s IdempotencySettings, now func() time.Time) *MemoryIdempotency {
	if now == nil {
		now = time.Now
	}
	return &MemoryIdempotency{settings: s.withDefaults(), now: now, keys: map[[2]string]*memKey{}}
}

// Begin implements IdempotencyStore.
func (m *MemoryIdempotency) Begin(ctx context.Context, tenant, key string, hash []byte) (*StoredResponse, error) {
	id := [2]string{tenant, key}
	for {
		m.mu.Lock()
		k := m.keys[id]
		if k == nil || (k.resp != nil && m.now().After(k.expires)) {
			m.keys[id] = &memKey{hash: string(hash), done: make(chan struct{})}
			m.mu.Unlock()
			return nil, nil
		}
		if k.hash != string(hash) {
			m.mu.Unlock()
			return nil, ErrIdempotencyMismatch
		}
		if k.resp != nil {
			resp := *k.resp
			m.mu.Unlock()
			return &resp, nil
		}
		done := k.done
		m.mu.Unlock()
		select {
		case <-done: // completed (replay) or released (claim it)
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// Complete implements IdempotencyStore.
func (m *MemoryIdempotency) Complete(_ context.Context, tenant, key string, resp StoredResponse) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := m.keys[[2]string{tenant, key}]
	if k == nil || k.resp != nil {
		return errors.New("gateway: idempotency: complete of a key not claimed")
	}
	k.resp, k.expires = &resp, m.now().Add(m.settings.Retention)
	close(k.done)
	return nil
}

// Release implements IdempotencyStore.
func (m *MemoryIdempotency) Release(_ context.Context, tenant, key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	id := [2]string{tenant, key}
	if k := m.keys[id]; k != nil && k.resp == nil {
		delete(m.keys, id)
		close(k.done)
	}
	return nil
}
