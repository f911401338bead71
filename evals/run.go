package evals

import (
	"context"
	"io"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/shopspring/decimal"

	"github.com/brownout-dev/brownout/gateway/llm"
)

// Sample is one answer to one case.
type Sample struct {
	Case    string          `json:"case"`
	Index   int             `json:"index"`
	Output  string          `json:"output"`
	Score   float64         `json:"score"`
	Pass    bool            `json:"pass"`
	Usage   llm.Usage       `json:"usage"`
	Cost    decimal.Decimal `json:"cost"`
	Latency time.Duration   `json:"latency_ns"`
	Error   string          `json:"error,omitempty"`
}

// Result is a suite run on one model: every sample and their statistics.
type Result struct {
	Suite   string   `json:"suite"`
	Model   string   `json:"model"`
	Seed    uint64   `json:"seed"`
	Samples []Sample `json:"samples"`
	Stats   Stats    `json:"stats"`
}

// Stats summarise a Result. Intervals are at Confidence (95%).
type Stats struct {
	N         int      `json:"n"`
	Errors    int      `json:"errors"`
	Passed    int      `json:"passed"`
	PassRate  Interval `json:"pass_rate"`  // Wilson
	MeanScore Interval `json:"mean_score"` // seeded bootstrap
	// CostPerRequest is the mean cost of every sample, failed and errored
	// ones included: a failure still costs what its attempts were billed.
	CostPerRequest MoneyInterval `json:"cost_per_request"`
	// CostPerPass is total cost over passing samples, what one good answer
	// costs, with a bootstrap interval (replicates without a pass are
	// left out); zero when nothing passed.
	CostPerPass    MoneyInterval `json:"cost_per_pass"`
	CostP50        string        `json:"cost_p50"`
	CostP95        string        `json:"cost_p95"`
	TotalCost      string        `json:"total_cost"`
	LatencyP50     time.Duration `json:"latency_p50_ns"`
	LatencyP95     time.Duration `json:"latency_p95_ns"`
	LatencyP99     time.Duration `json:"latency_p99_ns"`
	ReasoningShare float64       `json:"reasoning_share"` // reasoning / (output + reasoning) tokens
	Tokens         llm.Usage     `json:"tokens"`
	ScoreHistogram Histogram     `json:"score_histogram"`
	CostHistogram  Histogram     `json:"cost_histogram"` // in micro-dollars
}

// RunOptions configure Run.
type RunOptions struct {
	// Progress, when not nil, shows a progress bar (stderr of a terminal).
	Progress io.Writer
}

// Run samples every case of the suite suite.Samples times on model through
// target, at most suite.Concurrency at a time, and computes the statistics.
// A failed call is a sample with score 0 and its error.
func Run(ctx context.Context, suite *Suite, model string, target Target, opts RunOptions) (*Result, error) {
	type job struct{ c, i int }
	n := len(suite.Cases) * suite.Samples
	samples := make([]Sample, n)
	jobs := make(chan job)
	var bar *progressbar.ProgressBar
	if opts.Progress != nil {
		bar = progressbar.NewOptions(n, progressbar.OptionSetWriter(opts.Progress), progressbar.OptionSetDescription(suite.Name+" "+model),
			progressbar.OptionShowCount(), progressbar.OptionClearOnFinish())
	}
	var wg sync.WaitGroup
	for range suite.Concurrency {
		wg.Go(func() {
			for j := range jobs {
				c := &suite.Cases[j.c]
				s := Sample{Case: c.Name, Index: j.i}
				out, err := target.Complete(ctx, model, c.Messages)
				if err != nil {
					// A failed call costs what its attempts were billed.
					s.Error, s.Cost, s.Latency = err.Error(), out.Cost, out.Latency
				} else {
					s.Output, s.Usage, s.Cost, s.Latency = out.Content, out.Usage, out.Cost, out.Latency
					s.Score = c.Score(out.Content)
					s.Pass = c.Passes(s.Score)
				}
				samples[j.c*suite.Samples+j.i] = s
				if bar != nil {
					_ = bar.Add(1)
				}
			}
		})
	}
	for c := range suite.Cases {
		for i := range suite.Samples {
			select {
			case jobs <- job{c, i}:
			case <-ctx.Done():
			}
		}
	}
	close(jobs)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	r := &Result{Suite: suite.Name, Model: model, Seed: suite.Seed, Samples: samples}
	r.Stats = summarize(samples, suite.Seed)
	return r, nil
}

func summarize(samples []Sample, seed uint64) Stats {
	rng := rand.New(rand.NewPCG(seed, 0x6576616c73))
	st := Stats{N: len(samples)}
	scores := make([]float64, len(samples))
	costs := make([]decimal.Decimal, len(samples))
	var lat []float64
	total := decimal.Zero
	for i, s := range samples {
		scores[i], costs[i] = s.Score, s.Cost
		total = total.Add(s.Cost)
		if s.Error != "" {
			st.Errors++
		} else {
			lat = append(lat, float64(s.Latency))
		}
		if s.Pass {
			st.Passed++
		}
		st.Tokens.Input += s.Usage.Input
		st.Tokens.Output += s.Usage.Output
		st.Tokens.Reasoning += s.Usage.Reasoning
		st.Tokens.CacheRead += s.Usage.CacheRead
		st.Tokens.CacheWrite += s.Usage.CacheWrite
		st.Tokens.CacheWrite1h += s.Usage.CacheWrite1h
	}
	st.PassRate = Wilson(st.Passed, st.N, Confidence)
	st.MeanScore = BootstrapMean(scores, Confidence, rng)
	st.CostPerRequest = bootstrapMoney(costs, Confidence, rng)
	st.CostPerPass = bootstrapCostPerPass(samples, Confidence, rng)
	sorted := slices.Clone(costs)
	slices.SortFunc(sorted, func(a, b decimal.Decimal) int { return a.Cmp(b) })
	st.CostP50, st.CostP95, st.TotalCost = decimalQuantile(sorted, 0.5).String(), decimalQuantile(sorted, 0.95).String(), total.String()
	st.LatencyP50 = time.Duration(Quantile(lat, 0.50))
	st.LatencyP95 = time.Duration(Quantile(lat, 0.95))
	st.LatencyP99 = time.Duration(Quantile(lat, 0.99))
	if gen := st.Tokens.Output + st.Tokens.Reasoning; gen > 0 {
		st.ReasoningShare = float64(st.Tokens.Reasoning) / float64(gen)
	}
	st.ScoreHistogram = histogram(scores, 0, 1, 10)
	micro := make([]float64, len(sorted))
	for i, c := range sorted {
		micro[i] = c.Shift(6).InexactFloat64() // display only: the exact figures are above
	}
	if len(micro) > 0 {
		st.CostHistogram = histogram(micro, micro[0], micro[len(micro)-1], 10)
	}
	return st
}
