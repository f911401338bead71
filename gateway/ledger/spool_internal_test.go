package ledger

import (
	"bytes"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"log/slog"
	"testing"
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
