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
// survives a crash. A line that is torn (a crash mid-append: no newline) or
// fails its checksum is skipped and logged when the segment is read back;
// the lines around it are intact because each line stands alone.
//
// Segments are named segment-<unix nanos>-<seq>.jsonl. Appends go to the
// current segment; replay first closes it (rotate), so the segments it reads
// are never written again, and removes each one once the store has it.
// A lock file (flock) keeps two writers off one directory.
type spool struct {
	dir  string
	lock *os.File
	log  *slog.Logger

	mu      sync.Mutex
	cur     *os.File
	curName string
	seq     int
	lines   map[string]int // lines per segment not yet removed
	total   int            // sum of lines
	buf     bytes.Buffer
}

var crcTable = crc32.MakeTable(crc32.Castagnoli)

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
	s := &spool{dir: dir, lock: lock, log: log, lines: map[string]int{}}
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
		s.lines[name] = n
		s.total += n
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

// append writes the attempts as lines of the current segment and fsyncs.
func (s *spool) append(batch []Attempt) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur == nil {
		s.seq++
		name := fmt.Sprintf("%s%d-%06d%s", segmentPrefix, time.Now().UnixNano(), s.seq, segmentSuffix)
		f, err := os.OpenFile(filepath.Join(s.dir, name), os.O_CREATE|os.O_EXCL|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return fmt.Errorf("ledger: spool: %w", err)
		}
		if err := syncDir(s.dir); err != nil {
			f.Close()
			return fmt.Errorf("ledger: spool: %w", err)
		}
		s.cur, s.curName = f, name
	}
	s.buf.Reset()
	for i := range batch {
		line, err := json.Marshal(&batch[i])
		if err != nil {
			return fmt.Errorf("ledger: spool: encode %s/%d: %w", batch[i].RequestID, batch[i].Attempt, err)
		}
		fmt.Fprintf(&s.buf, "%08x ", crc32.Checksum(line, crcTable))
		s.buf.Write(line)
		s.buf.WriteByte('\n')
	}
	if _, err := s.cur.Write(s.buf.Bytes()); err != nil {
		return fmt.Errorf("ledger: spool: write: %w", err)
	}
	if err := s.cur.Sync(); err != nil {
		return fmt.Errorf("ledger: spool: fsync: %w", err)
	}
	s.lines[s.curName] += len(batch)
	s.total += len(batch)
	return nil
}

// rotate closes the current segment and returns every closed segment, oldest
// first: the ones replay may read and remove.
func (s *spool) rotate() ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur != nil {
		if err := s.cur.Close(); err != nil {
			return nil, fmt.Errorf("ledger: spool: close segment: %w", err)
		}
		s.cur, s.curName = nil, ""
	}
	return s.segments()
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

// pending returns the number of lines in segments not yet removed: what
// replay still has to write (torn and corrupt lines included).
func (s *spool) pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.total
}

func (s *spool) remove(name string) error {
	if err := os.Remove(filepath.Join(s.dir, name)); err != nil {
		return fmt.Errorf("ledger: spool: %w", err)
	}
	s.mu.Lock()
	s.total -= s.lines[name]
	delete(s.lines, name)
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
