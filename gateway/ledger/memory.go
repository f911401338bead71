package ledger

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"
)

// MemoryStore is a Store in process memory: the embedded default of the CLI
// and the ledger of virtual-time scenario runs. It is not durable. The zero
// value is not usable; call NewMemoryStore. It is safe for concurrent use.
type MemoryStore struct {
	mu       sync.RWMutex
	attempts map[key]Attempt
}

type key struct {
	requestID string
	attempt   int
}

var _ Store = (*MemoryStore)(nil)

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{attempts: make(map[key]Attempt)}
}

// Insert implements Store.
func (m *MemoryStore) Insert(ctx context.Context, batch []Attempt) (int, error) {
	batch, err := validBatch(batch)
	if err != nil {
		return 0, err
	}
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("ledger: memory insert: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, a := range firstOfEach(batch) {
		k := key{a.RequestID, a.Attempt}
		if had, ok := m.attempts[k]; ok && !replaces(a, had) {
			continue
		}
		m.attempts[k] = a
		n++
	}
	return n, nil
}

// Len returns the number of attempts stored.
func (m *MemoryStore) Len() int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return len(m.attempts)
}

// Totals implements Store.
func (m *MemoryStore) Totals(ctx context.Context, q Query) ([]Total, error) {
	if err := q.validate(); err != nil {
		return nil, err
	}
	type group struct {
		total    Total
		requests map[string]struct{}
	}
	groups := map[Total]*group{}
	m.mu.RLock()
	for _, a := range m.attempts {
		if !q.matches(&a) {
			continue
		}
		k := q.groupKey(&a)
		g := groups[k]
		if g == nil {
			g = &group{total: k, requests: map[string]struct{}{}}
			groups[k] = g
		}
		g.total.Attempts++
		g.requests[a.RequestID] = struct{}{}
		g.total.Tokens = g.total.Tokens.Add(a.Tokens)
		g.total.Cost = g.total.Cost.Add(a.Cost)
		if a.UsageSource == UsageEstimated {
			g.total.EstimatedCost = g.total.EstimatedCost.Add(a.Cost)
		}
	}
	m.mu.RUnlock()
	out := make([]Total, 0, len(groups))
	for _, g := range groups {
		g.total.Requests = int64(len(g.requests))
		out = append(out, g.total)
	}
	slices.SortFunc(out, compareTotals)
	return out, nil
}

// RequestAttempts implements Store.
func (m *MemoryStore) RequestAttempts(ctx context.Context, requestID string) ([]Attempt, error) {
	var out []Attempt
	m.mu.RLock()
	for k, a := range m.attempts {
		if k.requestID == requestID {
			out = append(out, a)
		}
	}
	m.mu.RUnlock()
	slices.SortFunc(out, func(a, b Attempt) int { return cmp.Compare(a.Attempt, b.Attempt) })
	return out, nil
}

// Export implements Store.
func (m *MemoryStore) Export(ctx context.Context, q Query, w io.Writer) (int, error) {
	if err := q.validate(); err != nil {
		return 0, err
	}
	var out []Attempt
	m.mu.RLock()
	for _, a := range m.attempts {
		if q.matches(&a) {
			out = append(out, a)
		}
	}
	m.mu.RUnlock()
	slices.SortFunc(out, compareExport)
	enc := json.NewEncoder(w)
	for i := range out {
		if err := enc.Encode(&out[i]); err != nil {
			return i, fmt.Errorf("ledger: export: %w", err)
		}
	}
	return len(out), nil
}

func compareExport(a, b Attempt) int {
	return cmp.Or(a.StartedAt.Compare(b.StartedAt), cmp.Compare(a.RequestID, b.RequestID), cmp.Compare(a.Attempt, b.Attempt))
}

func compareTotals(a, b Total) int {
	return cmp.Or(cmp.Compare(a.Provider, b.Provider), cmp.Compare(a.Model, b.Model),
		cmp.Compare(a.Tenant, b.Tenant), cmp.Compare(a.Outcome, b.Outcome))
}

// validBatch validates a copy of batch, so the caller's slice is not
// modified, and fails on the first invalid attempt with its index.
func validBatch(batch []Attempt) ([]Attempt, error) {
	out := make([]Attempt, len(batch))
	for i := range batch {
		out[i] = batch[i]
		if err := out[i].Validate(); err != nil {
			return nil, fmt.Errorf("ledger: batch item %d: %w", i, err)
		}
	}
	return out, nil
}

func (q *Query) validate() error {
	if !q.From.IsZero() && !q.To.IsZero() && q.To.Before(q.From) {
		return fmt.Errorf("ledger: query: to %s is before from %s", q.To.Format(time.RFC3339), q.From.Format(time.RFC3339))
	}
	seen := map[Dimension]bool{}
	for _, d := range q.GroupBy {
		switch d {
		case ByProvider, ByModel, ByTenant, ByOutcome:
		default:
			return fmt.Errorf("ledger: query: unknown group-by dimension %q (want provider, model, tenant or outcome)", d)
		}
		if seen[d] {
			return fmt.Errorf("ledger: query: group-by dimension %q given twice", d)
		}
		seen[d] = true
	}
	return nil
}

func (q *Query) matches(a *Attempt) bool {
	return (q.From.IsZero() || !a.StartedAt.Before(q.From)) &&
		(q.To.IsZero() || a.StartedAt.Before(q.To)) &&
		(q.Tenant == "" || a.Tenant == q.Tenant) &&
		(q.Provider == "" || a.Provider == q.Provider) &&
		(q.Model == "" || a.Model == q.Model) &&
		(q.ClientRequestID == "" || a.ClientRequestID == q.ClientRequestID)
}

func (q *Query) groupKey(a *Attempt) Total {
	var k Total
	for _, d := range q.GroupBy {
		switch d {
		case ByProvider:
			k.Provider = a.Provider
		case ByModel:
			k.Model = a.Model
		case ByTenant:
			k.Tenant = a.Tenant
		case ByOutcome:
			k.Outcome = a.Outcome
		}
	}
	return k
}
