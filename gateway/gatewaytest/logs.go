package gatewaytest

import (
	"bytes"
	"sync"
)

// LogBuffer is a log sink that the gateway's goroutines may write while a
// test reads it: slog.New(slog.NewTextHandler(&logs, nil)).
type LogBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write implements io.Writer.
func (l *LogBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String returns what was written so far.
func (l *LogBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
