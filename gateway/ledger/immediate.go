package ledger

import (
	"context"
	"sync"
)

// Immediate records each attempt with one synchronous Insert into Store:
// for tests and virtual-time runs, where a batching Writer would only add
// timers and a read right after a response must see the row. Production
// uses Writer. It is safe for concurrent use.
type Immediate struct {
	Store Store
	mu    sync.Mutex
}

// Record inserts a now.
func (r *Immediate) Record(a Attempt) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, err := r.Store.Insert(context.Background(), []Attempt{a})
	return err
}
