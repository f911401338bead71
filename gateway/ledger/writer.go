package ledger

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/brownout-dev/brownout/internal/backoff"
)

// ErrClosed is returned by Record after Close.
var ErrClosed = errors.New("ledger: writer closed")

// WriterConfig configures a Writer. The zero value of every field means the
// default named in its comment.
type WriterConfig struct {
	// QueueSize bounds the in-memory queue between Record and the batcher
	// (default 65536). When it is full, Record appends the attempt to the
	// spool synchronously: slower, never lost (Stats.Overflowed counts it).
	//
	// With a SpoolDir the queue is what a crash can lose, so it is small
	// (default 1024) and a full queue makes Record wait for the group
	// commit to take from it: backpressure at the disk's pace, which bounds
	// the loss to the attempts of about one GroupCommit even when Record is
	// called faster than the disk can write.
	QueueSize int
	// BatchSize is the most attempts one Insert carries (default 1000).
	BatchSize int
	// FlushInterval is the longest a partial batch waits (default 100ms).
	FlushInterval time.Duration
	// InsertTimeout bounds one Insert call (default 5s).
	InsertTimeout time.Duration
	// Retries is how many times a failed batch is retried, with exponential
	// backoff and full jitter from RetryBackoff, before it is spooled
	// (default 3; negative means none).
	Retries int
	// RetryBackoff is the base of the backoff (default 50ms; each retry
	// waits a random duration up to base*2^n, at most 2s).
	RetryBackoff time.Duration
	// ReplayInterval is how often the spool is replayed while the store is
	// failing (default 1s). While it is healthy, spooled attempts are
	// replayed at every flush tick.
	ReplayInterval time.Duration
	// SpoolDir is the directory of the durable spool. Empty means the spool
	// is kept in memory: it rides out a store outage but not a crash of the
	// process. Production deployments with Postgres set it.
	//
	// With a SpoolDir the spool is also a write-ahead log: every attempt is
	// appended to it (fsync'd, in groups) within GroupCommit of Record,
	// before the store sees it, and its segment is removed once the store
	// has it. A crash loses at most the attempts of the last GroupCommit.
	SpoolDir string
	// GroupCommit is how long an attempt may wait in memory before it is on
	// disk, with a SpoolDir (default 10ms): the most a crash can lose.
	GroupCommit time.Duration
	// Seed seeds the backoff jitter (default 1).
	Seed uint64
	// Logger receives the writer's warnings (default slog.Default()).
	Logger *slog.Logger
}

func (c *WriterConfig) normalize() {
	if c.QueueSize <= 0 {
		c.QueueSize = 65536
		if c.SpoolDir != "" {
			c.QueueSize = 1024
		}
	}
	if c.BatchSize <= 0 {
		c.BatchSize = 1000
	}
	if c.FlushInterval <= 0 {
		c.FlushInterval = 100 * time.Millisecond
	}
	if c.InsertTimeout <= 0 {
		c.InsertTimeout = 5 * time.Second
	}
	if c.Retries == 0 {
		c.Retries = 3
	} else if c.Retries < 0 {
		c.Retries = 0
	}
	if c.RetryBackoff <= 0 {
		c.RetryBackoff = 50 * time.Millisecond
	}
	if c.ReplayInterval <= 0 {
		c.ReplayInterval = time.Second
	}
	if c.GroupCommit <= 0 {
		c.GroupCommit = 10 * time.Millisecond
	}
	if c.Seed == 0 {
		c.Seed = 1
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// WriterStats are a Writer's counters since it started.
type WriterStats struct {
	Queued       int    `json:"queued"`        // attempts waiting in the queue now
	Recorded     uint64 `json:"recorded"`      // attempts Record accepted
	Inserted     uint64 `json:"inserted"`      // attempts the store took as new
	Duplicates   uint64 `json:"duplicates"`    // attempts the store already had
	Overflowed   uint64 `json:"overflowed"`    // Record found the queue full (and spooled, or with a SpoolDir waited)
	Committed    uint64 `json:"committed"`     // attempts written ahead to the spool directory by group commit
	Spooled      uint64 `json:"spooled"`       // attempts left in the spool for replay: the store did not take them
	Replayed     uint64 `json:"replayed"`      // spooled attempts since written to the store
	Corrupt      uint64 `json:"corrupt"`       // spool lines skipped as torn or corrupt
	SpoolPending int    `json:"spool_pending"` // spooled attempts the store is not known to have (with a SpoolDir, in-flight ones too)
	InsertErrors uint64 `json:"insert_errors"` // failed Insert calls
	Unspooled    int    `json:"unspooled"`     // attempts neither stored nor spooled (spool failing)
	DeadLetters  uint64 `json:"dead_letters"`  // attempts Record refused, kept as dead letters
	// Superseded counts unfinished records (OutcomeUnfinished) dropped
	// before they were written anywhere, because their attempt's finished
	// record was taken in the same batch or group.
	Superseded uint64 `json:"superseded"`
}

// Writer meters attempts asynchronously in front of a Store: Record validates
// and enqueues, and one goroutine batches by size or time, inserts, retries
// failed batches with backoff and spools what the store cannot take, then
// replays the spool when the store is back. At-least-once delivery into an
// idempotent Store gives exactly-once counting.
//
// With a SpoolDir the spool is a write-ahead log and the work is split in
// two goroutines: commitLoop writes every attempt to disk within
// GroupCommit and never waits for the store; insertLoop batches what is on
// disk into the store and replays what the store did not take. An attempt
// Record refuses is kept as a DeadLetter.
//
// Create it with NewWriter; it is safe for concurrent use. The goroutines
// exit when Close returns; Close flushes everything it can.
type Writer struct {
	store  Store
	cfg    WriterConfig
	log    *slog.Logger
	spool  spooler
	jitter *backoff.Jitter // the batch retries' backoff

	mu     sync.RWMutex // held for reading while Record enqueues; Close takes it to stop Record
	closed bool
	queue  chan Attempt
	// wake tells the goroutine that takes from the queue to take now: the
	// queue holds a batch (wakeAt), or Record waits for room. Otherwise
	// it takes on its tick, so that a Record, on the request path, does
	// not wake it: readying a parked goroutine can cost a futex call to
	// start a thread for it, tens of microseconds on a request path that
	// wants none, for attempts that would wait for the tick anyway.
	wake   chan struct{}
	wakeAt int

	stop   chan struct{} // closed by Close: drain and exit
	done   chan struct{} // closed by run on exit
	ctx    context.Context
	cancel context.CancelFunc // aborts in-flight inserts when Close's ctx expires

	// Owned by the run goroutine.
	healthy    bool
	lastReplay time.Time
	unspooled  []Attempt // attempts the spool refused (disk full); retried every tick
	// groups carry attempts from commitLoop to insertLoop (with a SpoolDir).
	groups chan group

	unspooledN                                                                                                               atomic.Int64
	recorded, inserted, duplicates, overflowed, committed, spooled, replayed, corrupt, insertErrors, deadLetters, superseded atomic.Uint64

	dlMu           sync.Mutex
	memDeadLetters []DeadLetter // without a SpoolDir
}

// spooler is what the Writer needs of a spool: the file spool or, without
// a SpoolDir, the memory one.
type spooler interface {
	append(batch []Attempt, handed bool) (segment string, err error)
	done(segment string, n int, stored bool)
	closeCurrent() error
	replayable() ([]string, error)
	read(name string) ([]Attempt, int, error)
	remove(name string) error
	pending() int
	close() error
}

// NewWriter starts a Writer over store. Attempts left in cfg.SpoolDir by an
// earlier process are replayed as soon as the store answers.
func NewWriter(store Store, cfg WriterConfig) (*Writer, error) {
	cfg.normalize()
	var sp spooler = &memSpool{}
	if cfg.SpoolDir != "" {
		fs, err := openSpool(cfg.SpoolDir, cfg.Logger)
		if err != nil {
			return nil, err
		}
		sp = fs
	}
	ctx, cancel := context.WithCancel(context.Background())
	w := &Writer{
		store: store, cfg: cfg, log: cfg.Logger, spool: sp,
		jitter: backoff.NewJitter(cfg.RetryBackoff, 2*time.Second, cfg.Seed),
		queue:  make(chan Attempt, cfg.QueueSize),
		wake:   make(chan struct{}, 1), wakeAt: min(cfg.BatchSize, cfg.QueueSize),
		stop: make(chan struct{}), done: make(chan struct{}),
		ctx: ctx, cancel: cancel,
		healthy: true,
	}
	if cfg.SpoolDir != "" {
		// Groups on disk wait here for the inserter (a few seconds of them
		// at the default group commit), so a store slow for a moment costs
		// memory, not a replay; past that they are left to replay
		// (commitLoop never waits).
		w.groups = make(chan group, groupBacklog)
		go w.commitLoop()
		go w.insertLoop()
	} else {
		go w.run()
	}
	return w, nil
}

// Record validates a and queues it for the store. It does not wait for the
// store: it returns after a channel send, or, when the queue is full, after
// an fsync'd append to the spool (with a SpoolDir: after the group commit
// has made room in the queue). It returns an error wrapping ErrInvalid
// for a bad attempt, ErrClosed after Close, or a spool error if the queue is
// full and the spool cannot take the attempt.
func (w *Writer) Record(a Attempt) error {
	if err := a.Validate(); err != nil {
		w.deadLetter(a, err)
		return err
	}
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.closed {
		w.deadLetter(a, ErrClosed)
		return ErrClosed
	}
	select {
	case w.queue <- a:
		w.recorded.Add(1)
		if len(w.queue) >= w.wakeAt {
			w.wakeUp()
		}
		return nil
	default:
	}
	if w.groups != nil {
		// A write-ahead log: wait for the group commit, which never waits
		// for the store. (A full queue holds a batch, so the Record that
		// filled it past wakeAt woke the group commit.)
		w.queue <- a
		w.recorded.Add(1)
		w.overflowed.Add(1)
		return nil
	}
	if _, err := w.spool.append([]Attempt{a}, false); err != nil {
		err = fmt.Errorf("ledger: queue full and %w", err)
		w.deadLetter(a, err)
		return err
	}
	w.recorded.Add(1)
	w.overflowed.Add(1)
	w.spooled.Add(1)
	return nil
}

// wakeUp has the goroutine that takes from the queue take now.
func (w *Writer) wakeUp() {
	select {
	case w.wake <- struct{}{}:
	default: // it is told already
	}
}

// DeadLetter is an attempt Record refused, with the reason: the ledger
// never only logs a billed attempt it could not take.
type DeadLetter struct {
	At      time.Time `json:"at"`
	Reason  string    `json:"reason"`
	Attempt Attempt   `json:"attempt"`
}

// deadLetterFile is the file of dead letters in a spool directory: one
// DeadLetter a line, appended and fsync'd; never replayed (each one needs
// a person to look at it).
const deadLetterFile = "dead-letters.jsonl"

// maxMemDeadLetters bounds the dead letters a writer without a spool
// directory keeps (the counter keeps counting).
const maxMemDeadLetters = 10000

// deadLetter keeps an attempt Record refused: in the spool directory's
// dead-letter file, or in memory without one. It works after Close too.
func (w *Writer) deadLetter(a Attempt, reason error) {
	w.deadLetters.Add(1)
	d := DeadLetter{At: time.Now().UTC(), Reason: reason.Error(), Attempt: a}
	w.dlMu.Lock()
	defer w.dlMu.Unlock()
	if w.cfg.SpoolDir == "" {
		if len(w.memDeadLetters) < maxMemDeadLetters {
			w.memDeadLetters = append(w.memDeadLetters, d)
		}
		return
	}
	if err := appendDeadLetter(filepath.Join(w.cfg.SpoolDir, deadLetterFile), d); err != nil {
		w.log.Error("ledger: could not keep a dead letter", "request_id", a.RequestID, "attempt", a.Attempt, "reason", reason, "error", err)
	}
}

func appendDeadLetter(path string, d DeadLetter) error {
	line, err := json.Marshal(&d)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(append(line, '\n')); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// DeadLetters returns the dead letters Record kept: those in the spool
// directory's dead-letter file (every writer's on that directory), or
// this writer's in memory.
func (w *Writer) DeadLetters() ([]DeadLetter, error) {
	w.dlMu.Lock()
	defer w.dlMu.Unlock()
	if w.cfg.SpoolDir == "" {
		return slices.Clone(w.memDeadLetters), nil
	}
	b, err := os.ReadFile(filepath.Join(w.cfg.SpoolDir, deadLetterFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("ledger: dead letters: %w", err)
	}
	var out []DeadLetter
	for line := range bytes.Lines(b) {
		var d DeadLetter
		if err := json.Unmarshal(line, &d); err != nil {
			return out, fmt.Errorf("ledger: dead letters: %w", err)
		}
		out = append(out, d)
	}
	return out, nil
}

// Stats returns the writer's counters.
func (w *Writer) Stats() WriterStats {
	st := WriterStats{
		Queued:       len(w.queue),
		Recorded:     w.recorded.Load(),
		Inserted:     w.inserted.Load(),
		Duplicates:   w.duplicates.Load(),
		Overflowed:   w.overflowed.Load(),
		Committed:    w.committed.Load(),
		Spooled:      w.spooled.Load(),
		Replayed:     w.replayed.Load(),
		Corrupt:      w.corrupt.Load(),
		InsertErrors: w.insertErrors.Load(),
		Unspooled:    int(w.unspooledN.Load()),
		DeadLetters:  w.deadLetters.Load(),
		Superseded:   w.superseded.Load(),
	}
	st.SpoolPending = w.spool.pending()
	return st
}

// Close stops Record, writes everything queued to the store (or, if the
// store still fails, to the spool) and replays the spool once more. If ctx
// ends first, in-flight inserts are aborted and what remains is spooled.
// Close returns an error when attempts remain in the spool (they are safe
// there if it is a directory, and are replayed by the next Writer) or could
// not be made durable at all.
func (w *Writer) Close(ctx context.Context) error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return ErrClosed
	}
	w.closed = true
	w.mu.Unlock()
	close(w.stop)
	var ctxErr error
	select {
	case <-w.done:
	case <-ctx.Done():
		ctxErr = ctx.Err()
		w.cancel()
		<-w.done // bounded: with inserts aborted, only local spooling remains
	}
	w.cancel()
	var errs []error
	if ctxErr != nil {
		errs = append(errs, fmt.Errorf("ledger: close: %w", ctxErr))
	}
	if n := w.unspooledN.Load(); n > 0 {
		errs = append(errs, fmt.Errorf("ledger: close: %d attempts could not be stored or spooled", n))
	}
	if n := w.spool.pending(); n > 0 {
		where := "the memory spool (lost with this process)"
		if w.cfg.SpoolDir != "" {
			where = "spool " + w.cfg.SpoolDir + " (replayed by the next writer)"
		}
		errs = append(errs, fmt.Errorf("ledger: close: %d attempts remain in %s", n, where))
	}
	if err := w.spool.close(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// run is the goroutine of a writer without a spool directory; it exits
// when Close closes w.stop, after draining the queue.
func (w *Writer) run() {
	defer close(w.done)
	tick := time.NewTicker(w.cfg.FlushInterval)
	defer tick.Stop()
	batch := make([]Attempt, 0, w.cfg.BatchSize)
	flush := func() {
		if len(batch) > 0 {
			w.flushVolatile(w.dropSuperseded(batch))
			batch = batch[:0]
		}
	}
	take := func() {
		for a := range w.drain() {
			batch = append(batch, a)
			if len(batch) >= w.cfg.BatchSize {
				flush()
			}
		}
	}
	w.maybeReplay(time.Now())
	for {
		select {
		case <-w.wake:
			take()
		case now := <-tick.C:
			take()
			flush()
			w.maybeReplay(now)
		case <-w.stop:
			// Record can no longer enqueue (closed is set under the lock), so
			// the queue only shrinks from here.
			take()
			flush()
			w.lastReplay = time.Time{}
			w.maybeReplay(time.Now())
			return
		}
	}
}

// drain yields what the queue holds when it starts, without waiting: all
// that is left once Record can no longer add to it.
func (w *Writer) drain() iter.Seq[Attempt] {
	return func(yield func(Attempt) bool) {
		for n := len(w.queue); n > 0; n-- {
			if !yield(<-w.queue) {
				return
			}
		}
	}
}

// dropSuperseded returns batch without the unfinished records whose
// attempt's finished record is in it too, which the store would replace
// anyway (Store), and counts them. It reuses batch's array.
func (w *Writer) dropSuperseded(batch []Attempt) []Attempt {
	if !slices.ContainsFunc(batch, func(a Attempt) bool { return a.Outcome == OutcomeUnfinished }) {
		return batch
	}
	finished := map[key]bool{}
	for _, a := range batch {
		if a.Outcome != OutcomeUnfinished {
			finished[key{a.RequestID, a.Attempt}] = true
		}
	}
	out := slices.DeleteFunc(batch, func(a Attempt) bool {
		return a.Outcome == OutcomeUnfinished && finished[key{a.RequestID, a.Attempt}]
	})
	w.superseded.Add(uint64(len(batch) - len(out)))
	return out
}

// groupBacklog is how many committed groups may wait for the inserter.
const groupBacklog = 256

// group is attempts written ahead to segment seg of the spool directory
// together; seg is "" when the disk refused them.
type group struct {
	seg      string
	attempts []Attempt
}

// commitLoop is the group-commit goroutine of a writer with a spool
// directory: it takes attempts off the queue and, every GroupCommit (or
// sooner, at BatchSize), appends them to the spool with one fsync and hands
// them to insertLoop. It does nothing else and never waits for the store:
// when insertLoop is behind, a group already on disk is left to replay. So
// a slow or hanging store never holds an attempt in memory longer than
// GroupCommit. It closes the current segment every FlushInterval so that
// stored segments can be removed.
func (w *Writer) commitLoop() {
	defer close(w.groups)
	commit := time.NewTicker(w.cfg.GroupCommit)
	defer commit.Stop()
	rotate := time.NewTicker(w.cfg.FlushInterval)
	defer rotate.Stop()
	var pending []Attempt
	flush := func() {
		if len(pending) == 0 {
			return
		}
		// A call that ended within the group needs no unfinished record
		// on disk: its finished one is there.
		pending = w.dropSuperseded(pending)
		name, err := w.spool.append(pending, true)
		if err != nil {
			w.log.Error("ledger: write-ahead to the spool failed; sending the attempts straight to the store", "error", err, "attempts", len(pending))
			name = ""
		} else {
			w.committed.Add(uint64(len(pending)))
		}
		if name == "" {
			w.groups <- group{attempts: pending} // only in memory: wait for the inserter
		} else {
			select {
			case w.groups <- group{seg: name, attempts: pending}:
			default:
				// The inserter is behind (a slow store, a long replay). The
				// group is on disk: replay writes it; never wait for it here.
				w.spool.done(name, len(pending), false)
				w.spooled.Add(uint64(len(pending)))
			}
		}
		pending = nil
	}
	closeSegment := func() {
		if err := w.spool.closeCurrent(); err != nil {
			w.log.Error("ledger: spool", "error", err)
		}
	}
	take := func() {
		for a := range w.drain() {
			pending = append(pending, a)
			if len(pending) >= w.cfg.BatchSize {
				flush()
			}
		}
	}
	for {
		select {
		case <-w.wake:
			take()
		case <-commit.C:
			take()
			flush()
		case <-rotate.C:
			closeSegment()
		case <-w.stop:
			take()
			flush()
			closeSegment()
			return
		}
	}
}

// insertLoop is the store goroutine of a writer with a spool directory: it
// batches the groups commitLoop hands it, inserts them and tells the spool,
// and replays what the store does not have. It exits when commitLoop is
// done, after a last insert and replay.
func (w *Writer) insertLoop() {
	defer close(w.done)
	tick := time.NewTicker(w.cfg.FlushInterval)
	defer tick.Stop()
	var groups []group
	n := 0
	flush := func() {
		if len(groups) > 0 {
			w.flushDurable(groups)
			groups, n = groups[:0], 0
		}
	}
	w.maybeReplay(time.Now())
	for {
		select {
		case g, ok := <-w.groups:
			if !ok {
				flush()
				w.lastReplay = time.Time{}
				w.maybeReplay(time.Now())
				return
			}
			if g.seg == "" {
				w.flushVolatile(g.attempts)
				continue
			}
			groups = append(groups, g)
			if n += len(g.attempts); n >= w.cfg.BatchSize {
				flush()
			}
		case now := <-tick.C:
			flush()
			w.maybeReplay(now)
		}
	}
}

// flushDurable inserts groups already on disk: one try while the store is
// healthy, none while it is failing (replay writes them once it answers).
// Either way the spool is told, and removes segments the store has whole.
func (w *Writer) flushDurable(groups []group) {
	stored := false
	if w.healthy {
		var batch []Attempt
		for _, g := range groups {
			batch = append(batch, g.attempts...)
		}
		err := w.insert(batch)
		if stored = err == nil; !stored {
			w.healthy = false
			w.log.Warn("ledger: store failing; attempts stay in the spool until it answers", "error", err, "batch", len(batch))
		}
	}
	for _, g := range groups {
		if !stored {
			w.spooled.Add(uint64(len(g.attempts)))
		}
		w.spool.done(g.seg, len(g.attempts), stored)
	}
}

// flushVolatile inserts a batch held only in memory, retrying with backoff
// while the store is healthy; a batch the store does not take is spooled.
func (w *Writer) flushVolatile(batch []Attempt) {
	if w.healthy {
		for try := 0; ; try++ {
			err := w.insert(batch)
			if err == nil {
				return
			}
			if try >= w.cfg.Retries || w.ctx.Err() != nil {
				w.healthy = false
				w.log.Warn("ledger: store failing; spooling attempts until it answers", "error", err, "batch", len(batch))
				break
			}
			if !backoff.Sleep(w.ctx, w.jitter.Next(try+1)) {
				break
			}
		}
	}
	w.toSpool(batch)
}

func (w *Writer) insert(batch []Attempt) error {
	ctx, cancel := context.WithTimeout(w.ctx, w.cfg.InsertTimeout)
	defer cancel()
	n, err := w.store.Insert(ctx, batch)
	if err != nil {
		w.insertErrors.Add(1)
		return err
	}
	w.inserted.Add(uint64(n))
	w.duplicates.Add(uint64(len(batch) - n))
	return nil
}

func (w *Writer) toSpool(batch []Attempt) {
	if _, err := w.spool.append(batch, false); err != nil {
		// Keep them in memory and try again every tick; Close reports any left.
		w.log.Error("ledger: spool refused attempts; holding them in memory", "error", err, "batch", len(batch))
		w.unspooled = append(w.unspooled, batch...)
		w.unspooledN.Store(int64(len(w.unspooled)))
		return
	}
	w.spooled.Add(uint64(len(batch)))
}

// maybeReplay writes spooled attempts back to the store: at every tick while
// the store is healthy, every ReplayInterval while it is failing.
func (w *Writer) maybeReplay(now time.Time) {
	if len(w.unspooled) > 0 {
		held := w.unspooled
		w.unspooled = nil
		w.unspooledN.Store(0)
		w.flushVolatile(held)
	}
	if !w.healthy && now.Sub(w.lastReplay) < w.cfg.ReplayInterval {
		return
	}
	if w.spool.pending() == 0 {
		return
	}
	w.lastReplay = now
	names, err := w.spool.replayable()
	if err != nil {
		w.log.Error("ledger: spool", "error", err)
		return
	}
	if len(names) == 0 {
		return // what the spool holds is still in flight to the store
	}
	for _, name := range names {
		attempts, corrupt, err := w.spool.read(name)
		w.corrupt.Add(uint64(corrupt))
		if err != nil {
			w.log.Error("ledger: spool read failed; will retry", "segment", name, "error", err)
			return
		}
		for chunk := range slices.Chunk(attempts, w.cfg.BatchSize) {
			if err := w.insert(chunk); err != nil {
				if w.healthy {
					w.log.Warn("ledger: store failing during spool replay", "error", err)
				}
				w.healthy = false
				return // the segment stays; a later replay reads it again, idempotently
			}
		}
		if err := w.spool.remove(name); err != nil {
			w.log.Error("ledger: spool remove failed", "segment", name, "error", err)
			return
		}
		w.replayed.Add(uint64(len(attempts)))
	}
	if !w.healthy {
		w.log.Info("ledger: store answers again; spool replayed")
	}
	w.healthy = true
}
