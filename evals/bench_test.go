package evals_test

import (
	"context"
	"testing"
	"time"

	"github.com/brownout-dev/brownout/evals"
)

// BenchmarkSamples is the rate of eval samples through the in-process
// gateway on fakes (one case, b.N samples, 4 in flight):
//
//	go test -run '^$' -bench Samples -benchtime 20000x ./evals/
func BenchmarkSamples(b *testing.B) {
	suite, err := evals.LoadSuite("suites/capitals.yaml")
	if err != nil {
		b.Fatal(err)
	}
	suite.Cases = suite.Cases[:1]
	suite.Samples = b.N
	f, err := evals.NewFakes([]string{"gemini/gemini-2.5-flash"}, 1)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	b.ResetTimer()
	start := time.Now()
	r, err := evals.Run(context.Background(), suite, "gemini/gemini-2.5-flash", f.Target(), evals.RunOptions{})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "samples/s")
	if r.Stats.Errors > 0 {
		b.Fatalf("%d samples failed", r.Stats.Errors)
	}
}
