package ledger

import (
	"fmt"
	"slices"
	"sync"
)

// memSpool is the spool of a Writer without a SpoolDir: the same segment
// protocol as the file spool, held in memory. It rides out a store outage
// but not a crash.
type memSpool struct {
	mu    sync.Mutex
	segs  map[string][]Attempt
	order []string // segment names, oldest first
	cur   string
	seq   int
	total int
}

func (m *memSpool) append(batch []Attempt, _ bool) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.segs == nil {
		m.segs = map[string][]Attempt{}
	}
	if m.cur == "" {
		m.seq++
		m.cur = fmt.Sprintf("mem-%06d", m.seq)
		m.order = append(m.order, m.cur)
	}
	m.segs[m.cur] = append(m.segs[m.cur], batch...)
	m.total += len(batch)
	return m.cur, nil
}

func (m *memSpool) closeCurrent() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.cur = ""
	return nil
}

// done is for a write-ahead log, which a memory spool never is.
func (m *memSpool) done(string, int, bool) {}

func (m *memSpool) replayable() ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.cur = ""
	return slices.Clone(m.order), nil
}

func (m *memSpool) read(name string) ([]Attempt, int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.segs[name], 0, nil
}

func (m *memSpool) remove(name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.total -= len(m.segs[name])
	delete(m.segs, name)
	m.order = slices.DeleteFunc(m.order, func(n string) bool { return n == name })
	return nil
}

func (m *memSpool) pending() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.total
}

func (m *memSpool) close() error { return nil }
