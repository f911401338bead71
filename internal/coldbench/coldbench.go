// Package coldbench times code as a request finds it when it comes a
// millisecond after the last: with the CPU's caches emptied before each
// run, so the code and data it needs come from memory (see the gateway's
// BenchmarkSpacedInMemory, where every step of a request ran so).
package coldbench

import (
	"slices"
	"sync"
	"testing"
	"time"
)

// junk is written whole before each run: larger than this machine's
// caches together.
var junk = sync.OnceValue(func() []byte { return make([]byte, 32<<20) })

// Run runs f b.N times, each after writing junk (32 MiB, a byte of each
// cache line) to empty the caches, and reports the median of f's own
// times as ns/op; it fails b if f reports failure.
func Run(b *testing.B, f func() bool) {
	junk := junk()
	took := make([]time.Duration, 0, b.N)
	for range b.N {
		for i := 0; i < len(junk); i += 64 {
			junk[i]++
		}
		start := time.Now()
		ok := f()
		took = append(took, time.Since(start))
		if !ok {
			b.Fatal("failed")
		}
	}
	slices.Sort(took)
	b.ReportMetric(float64(took[len(took)/2].Nanoseconds()), "ns/op")
}
