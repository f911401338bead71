package ledger

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"os"
	"slices"
	"testing"
	"time"
)

// FuzzReadSegment: whatever bytes a crash or a disk leaves in a segment,
// reading it never panics, and every attempt it returns is valid and was
// covered by a matching checksum.
func FuzzReadSegment(f *testing.F) {
	good, _ := json.Marshal(map[string]any{
		"request_id": "r1", "attempt": 1, "tenant": "t", "route": "chat", "provider": "p", "model": "m",
		"outcome": "ok", "tokens": map[string]int{"input": 1}, "cost": "0.000001",
		"started_at": "2026-01-01T00:00:00Z", "finished_at": "2026-01-01T00:00:01Z",
	})
	line := fmt.Sprintf("%08x %s\n", crc32.Checksum(good, crcTable), good)
	f.Add([]byte(line))
	f.Add([]byte(line + line[:20]))
	f.Add([]byte("00000000 {}\n"))
	f.Add([]byte("zzzzzzzz " + string(good) + "\n"))
	f.Add([]byte("\n\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		got, corrupt, err := readSegment(bytes.NewReader(data), "fuzz", slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatalf("readSegment returned an error for in-memory data: %v", err)
		}
		lines := bytes.Count(data, []byte{'\n'})
		if len(data) > 0 && data[len(data)-1] != '\n' {
			lines++
		}
		if len(got)+corrupt != lines {
			t.Fatalf("readSegment: %d attempts + %d corrupt; want %d lines", len(got), corrupt, lines)
		}
		for _, a := range got {
			if err := a.Validate(); err != nil {
				t.Fatalf("readSegment returned an invalid attempt: %v", err)
			}
		}
	})
}

// tornFile writes the first half of the write numbered failAt, then fails,
// as a full disk or an I/O error leaves a segment.
type tornFile struct {
	*os.File
	writes, failAt int
}

func (f *tornFile) Write(b []byte) (int, error) {
	f.writes++
	if f.writes == f.failAt {
		n, _ := f.File.Write(b[:len(b)/2])
		return n, errors.New("no space left on device")
	}
	return f.File.Write(b)
}

// TestFailedAppendLeavesNoTornLine: an append that fails part-way is cut
// back to the last good line, so the next append is not joined to a torn
// line and lost to its checksum.
func TestFailedAppendLeavesNoTornLine(t *testing.T) {
	open := openSegment
	t.Cleanup(func() { openSegment = open })
	openSegment = func(path string) (segmentFile, error) {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY|os.O_APPEND, 0o600)
		return &tornFile{File: f, failAt: 2}, err
	}
	dir := t.TempDir()
	s, err := openSpool(dir, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	batch := func(from int) []Attempt {
		var out []Attempt
		for i := from; i < from+3; i++ {
			out = append(out, Attempt{RequestID: fmt.Sprintf("r%d", i), Attempt: 1, Tenant: "t", Route: "chat", Provider: "p", Model: "m",
				Outcome: OutcomeOK, UsageSource: UsageReported, StartedAt: time.Unix(1, 0), FinishedAt: time.Unix(2, 0)})
		}
		return out
	}
	if _, err := s.append(batch(0), false); err != nil {
		t.Fatal(err)
	}
	if _, err := s.append(batch(3), false); err == nil {
		t.Fatal("the torn append reported success")
	}
	if _, err := s.append(batch(6), false); err != nil {
		t.Fatal(err)
	}
	if err := s.closeCurrent(); err != nil {
		t.Fatal(err)
	}
	names, err := s.replayable()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	corrupt := 0
	for _, name := range names {
		as, c, err := s.read(name)
		if err != nil {
			t.Fatal(err)
		}
		corrupt += c
		for _, a := range as {
			got = append(got, a.RequestID)
		}
	}
	if want := []string{"r0", "r1", "r2", "r6", "r7", "r8"}; corrupt != 0 || !slices.Equal(got, want) {
		t.Fatalf("read back %v with %d corrupt lines; want %v and none corrupt (the failed batch's caller was told)", got, corrupt, want)
	}
	if s.pending() != 6 {
		t.Fatalf("pending = %d; want 6", s.pending())
	}
}
