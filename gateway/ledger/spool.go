package ledger

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// The spool is a directory of append-only segment files that hold attempts
// the store could not take. Each line is one attempt:
//
//	<crc32c of the JSON, 8 hex digits> <attempt as JSON>\n
//
// Every append is fsync'd before it returns, so an attempt the spool took
// survives a crash. An append that fails is cut back: the segment is
// truncated to its last good line and closed, so no later append can join
// a torn line (and lose itself to the checksum). A line that is torn anyway
// (a crash mid-append: no newline) or fails its checksum is skipped and
// logged when the segment is read back; the lines around it are intact
// because each line stands alone.
//
// Segments are named segment-<unix nanos>-<seq>.jsonl. Appends go to the
// current segment until the writer closes it; a closed segment is never
// written again. The spool counts, per segment, the lines handed to the
// writer's inserter and not yet done, and the lines the store has: a closed
// segment the store has whole is removed; one with lines the store lacks
// and none in flight is replayable (read back, inserted, removed).
// Segments found at start, left by an earlier process, are replayable.
// A lock file (flock) keeps two writers off one directory.
type spool struct {
	dir  string
	lock *os.File
	log  *slog.Logger

	mu      sync.Mutex
	cur     segmentFile
	curName string
	curSize int64 // bytes of whole lines in cur
	seq     int
	segs    map[string]*segment // segments not yet removed
	buf     bytes.Buffer
}

// segment is the spool's count of one segment file.
type segment struct {
	lines    int // lines written (a torn last line included)
	inflight int // lines handed to the inserter and not yet done
	stored   int // lines the inserter saw the store take
	closed   bool
}

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// segmentFile is what the spool needs of an open segment.
type segmentFile interface {
	io.Writer
	Sync() error
	Truncate(size int64) error
	Close() error
}

// openSegment creates a segment for appending; tests replace it to make
// writes fail part-way.
var openSegment = func(path string) (segmentFile, error) {
	return os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY|os.O_APPEND, 0o600)
}

const segmentPrefix, segmentSuffix = "segment-", ".jsonl"

func openSpool(dir string, log *slog.Logger) (*spool, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("ledger: spool %s: %w", dir, err)
	}
	lock, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("ledger: spool %s: %w", dir, err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lock.Close()
		return nil, fmt.Errorf("ledger: spool %s is in use by another writer: %w", dir, err)
	}
	s := &spool{dir: dir, lock: lock, log: log, segs: map[string]*segment{}}
	names, err := s.segments()
	if err != nil {
		lock.Close()
		return nil, err
	}
	for _, name := range names {
		n, err := countLines(filepath.Join(dir, name))
		if err != nil {
			lock.Close()
			return nil, fmt.Errorf("ledger: spool: %w", err)
		}
		s.segs[name] = &segment{lines: n, closed: true}
	}
	return s, nil
}

// countLines counts the lines of a segment, a torn last line included.
func countLines(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	n := bytes.Count(b, []byte{'\n'})
	if len(b) > 0 && b[len(b)-1] != '\n' {
		n++
	}
	return n, nil
}

// append writes the attempts as lines of the current segment, fsyncs, and
// returns the segment's name; handed says the caller passes them on to the
// inserter, which reports them with done. On failure nothing of the batch
// stays: the segment is cut back to its last good line and closed.
func (s *spool) append(batch []Attempt, handed bool) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.buf.Reset()
	for i := range batch {
		line, err := json.Marshal(&batch[i])
		if err != nil {
			return "", fmt.Errorf("ledger: spool: encode %s/%d: %w", batch[i].RequestID, batch[i].Attempt, err)
		}
		fmt.Fprintf(&s.buf, "%08x ", crc32.Checksum(line, crcTable))
		s.buf.Write(line)
		s.buf.WriteByte('\n')
	}
	if s.cur == nil {
		s.seq++
		name := fmt.Sprintf("%s%d-%06d%s", segmentPrefix, time.Now().UnixNano(), s.seq, segmentSuffix)
		f, err := openSegment(filepath.Join(s.dir, name))
		if err != nil {
			return "", fmt.Errorf("ledger: spool: %w", err)
		}
		if err := syncDir(s.dir); err != nil {
			f.Close()
			return "", fmt.Errorf("ledger: spool: %w", err)
		}
		s.cur, s.curName, s.curSize = f, name, 0
		s.segs[name] = &segment{}
	}
	_, err := s.cur.Write(s.buf.Bytes())
	if err != nil {
		err = fmt.Errorf("ledger: spool: write: %w", err)
	} else if err = s.cur.Sync(); err != nil {
		err = fmt.Errorf("ledger: spool: fsync: %w", err)
	}
	if err != nil {
		s.cutBack()
		return "", err
	}
	s.curSize += int64(s.buf.Len())
	seg := s.segs[s.curName]
	seg.lines += len(batch)
	if handed {
		seg.inflight += len(batch)
	}
	return s.curName, nil
}

// done reports n lines of segment name handed to the inserter as dealt
// with: stored, or not (they wait for replay). A closed segment the store
// has whole is removed.
func (s *spool) done(name string, n int, stored bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	seg := s.segs[name]
	if seg == nil {
		return // replayed and removed meanwhile
	}
	seg.inflight -= n
	if stored {
		seg.stored += n
	}
	s.removeIfStored(name)
}

// removeIfStored removes segment name if it is closed and the store has
// every line of it. Called with s.mu held.
func (s *spool) removeIfStored(name string) {
	seg := s.segs[name]
	if seg == nil || !seg.closed || seg.stored < seg.lines {
		return
	}
	if err := os.Remove(filepath.Join(s.dir, name)); err != nil {
		s.log.Error("ledger: spool: remove of a stored segment failed; replay will write it again", "segment", name, "error", err)
		seg.stored = 0
		return
	}
	delete(s.segs, name)
	if err := syncDir(s.dir); err != nil {
		s.log.Error("ledger: spool: fsync of the directory", "error", err)
	}
}

// cutBack truncates the current segment to its last good line and closes
// it: the next append starts a new segment, never after a torn line.
func (s *spool) cutBack() {
	if err := s.cur.Truncate(s.curSize); err != nil {
		s.log.Error("ledger: spool: could not cut a failed append back; its torn line will be skipped on replay",
			"segment", s.curName, "error", err)
	} else if err := s.cur.Sync(); err != nil {
		s.log.Error("ledger: spool: fsync after cutting a failed append back", "segment", s.curName, "error", err)
	}
	_ = s.cur.Close()
	name := s.curName
	s.segs[name].closed = true
	s.cur, s.curName, s.curSize = nil, "", 0
	s.removeIfStored(name)
}

// closeCurrent closes the current segment, if any: it is never written
// again, and is removed if the store already has it whole.
func (s *spool) closeCurrent() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur == nil {
		return nil
	}
	err := s.cur.Close()
	name := s.curName
	s.segs[name].closed = true
	s.cur, s.curName, s.curSize = nil, "", 0
	if err != nil {
		return fmt.Errorf("ledger: spool: close segment: %w", err)
	}
	s.removeIfStored(name)
	return nil
}

// replayable returns, oldest first, the closed segments with lines the
// store lacks and none in flight: the ones replay reads and removes.
func (s *spool) replayable() ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var names []string
	for name, seg := range s.segs {
		if seg.closed && seg.inflight == 0 && seg.stored < seg.lines {
			names = append(names, name)
		}
	}
	slices.SortFunc(names, compareSegments)
	return names, nil
}

func (s *spool) segments() ([]string, error) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("ledger: spool: %w", err)
	}
	var names []string
	for _, e := range entries {
		if n := e.Name(); strings.HasPrefix(n, segmentPrefix) && strings.HasSuffix(n, segmentSuffix) {
			names = append(names, n)
		}
	}
	slices.SortFunc(names, compareSegments)
	return names, nil
}

// compareSegments orders segment names by their timestamp, then sequence.
func compareSegments(a, b string) int {
	ta, sa := segmentKey(a)
	tb, sb := segmentKey(b)
	if ta != tb {
		return ta - tb
	}
	if sa != sb {
		return sa - sb
	}
	return strings.Compare(a, b)
}

func segmentKey(name string) (int, int) {
	stem := strings.TrimSuffix(strings.TrimPrefix(name, segmentPrefix), segmentSuffix)
	ts, seq, _ := strings.Cut(stem, "-")
	t, _ := strconv.Atoi(ts)
	n, _ := strconv.Atoi(seq)
	return t, n
}

// pending returns the number of lines the store is not known to have, in
// segments not yet removed (torn and corrupt lines included).
func (s *spool) pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, seg := range s.segs {
		n += seg.lines - seg.stored
	}
	return n
}

// remove removes a replayed segment.
func (s *spool) remove(name string) error {
	if err := os.Remove(filepath.Join(s.dir, name)); err != nil {
		return fmt.Errorf("ledger: spool: %w", err)
	}
	s.mu.Lock()
	delete(s.segs, name)
	s.mu.Unlock()
	return syncDir(s.dir)
}

// read returns the intact attempts of one segment and how many lines it
// skipped as torn or corrupt.
func (s *spool) read(name string) ([]Attempt, int, error) {
	f, err := os.Open(filepath.Join(s.dir, name))
	if err != nil {
		return nil, 0, fmt.Errorf("ledger: spool: %w", err)
	}
	defer f.Close()
	return readSegment(f, name, s.log)
}

func readSegment(r io.Reader, name string, log *slog.Logger) ([]Attempt, int, error) {
	var out []Attempt
	corrupt := 0
	br := bufio.NewReaderSize(r, 64<<10)
	for lineNo := 1; ; lineNo++ {
		line, err := br.ReadBytes('\n')
		if errors.Is(err, io.EOF) {
			if len(line) > 0 {
				corrupt++
				log.Warn("ledger: spool: skipping torn last line (no newline: a write cut short)",
					"segment", name, "line", lineNo, "bytes", len(line))
			}
			return out, corrupt, nil
		}
		if err != nil {
			return out, corrupt, fmt.Errorf("ledger: spool: read %s: %w", name, err)
		}
		a, why := decodeSpoolLine(line[:len(line)-1])
		if why != "" {
			corrupt++
			log.Warn("ledger: spool: skipping corrupt line", "segment", name, "line", lineNo, "reason", why)
			continue
		}
		out = append(out, a)
	}
}

func decodeSpoolLine(line []byte) (Attempt, string) {
	var a Attempt
	sum, body, ok := bytes.Cut(line, []byte{' '})
	if !ok || len(sum) != 8 {
		return a, "no checksum"
	}
	want, err := strconv.ParseUint(string(sum), 16, 32)
	if err != nil {
		return a, "bad checksum field"
	}
	if crc32.Checksum(body, crcTable) != uint32(want) {
		return a, "checksum mismatch"
	}
	if err := json.Unmarshal(body, &a); err != nil {
		return a, "bad JSON: " + err.Error()
	}
	if err := a.Validate(); err != nil {
		return a, err.Error()
	}
	return a, ""
}

// close closes the current segment and releases the directory lock.
func (s *spool) close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	if s.cur != nil {
		errs = append(errs, s.cur.Close())
		s.cur = nil
	}
	errs = append(errs, s.lock.Close()) // closing the descriptor releases the flock
	return errors.Join(errs...)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
