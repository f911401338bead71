package evals_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brownout-dev/brownout/evals"
	"github.com/brownout-dev/brownout/gateway/llm"
)

// stubTarget answers "Paris" at a fixed cost, wrongly ("Lyon") a share of
// the time and not at all (an error that still cost something) another
// share, each draw from a seeded source.
type stubTarget struct {
	wrong, failed float64
	cost          decimal.Decimal
	mu            sync.Mutex
	rng           *rand.Rand
}

func newStub(wrong, failed float64, cost string, seed uint64) *stubTarget {
	return &stubTarget{wrong: wrong, failed: failed, cost: decimal.RequireFromString(cost), rng: rand.New(rand.NewPCG(seed, 1))}
}

func (s *stubTarget) Complete(ctx context.Context, model string, messages []llm.Message) (evals.Completion, error) {
	s.mu.Lock()
	x := s.rng.Float64()
	s.mu.Unlock()
	switch {
	case x < s.failed:
		return evals.Completion{Cost: s.cost}, errors.New("upstream timed out after the prompt was billed")
	case x < s.failed+s.wrong:
		return evals.Completion{Content: "Lyon", Cost: s.cost}, nil
	}
	return evals.Completion{Content: "Paris", Cost: s.cost}, nil
}

func franceSuite(t *testing.T, samples int) *evals.Suite {
	t.Helper()
	s, err := evals.ParseSuite("france.yaml", []byte(fmt.Sprintf(`name: france
samples: %d
concurrency: 1
seed: 5
cases:
  - name: france
    prompt: "What is the capital of France? One word."
    scorers: [{type: equals, value: Paris}]
`, samples)))
	require.NoError(t, err)
	return s
}

// TestFailedSamplesCostWhatTheyWereBilled: a sample whose call failed
// costs what the call's attempts were billed, not $0, so an unreliable
// model does not look cheaper per request. Every call here costs $0.001:
// the cost per request is $0.001 whatever failed, and the cost per passing
// answer is the total over the passes.
func TestFailedSamplesCostWhatTheyWereBilled(t *testing.T) {
	r, err := evals.Run(context.Background(), franceSuite(t, 100), "stub", newStub(0.1, 0.2, "0.001", 1), evals.RunOptions{})
	require.NoError(t, err)
	st := r.Stats
	require.Positive(t, st.Errors, "some calls failed")
	assert.Equal(t, "0.1", st.TotalCost, "100 calls at $0.001, failed ones included")
	assert.Equal(t, "0.001", st.CostPerRequest.Value.String())
	want := decimal.RequireFromString("0.1").DivRound(decimal.NewFromInt(int64(st.Passed)), 12)
	assert.Equal(t, want.String(), st.CostPerPass.Value.String(), "$0.1 over %d passing answers", st.Passed)
	assert.True(t, st.CostPerPass.Lo.LessThanOrEqual(st.CostPerPass.Value) && st.CostPerPass.Value.LessThanOrEqual(st.CostPerPass.Hi))
}

// recorder is a testing.TB that records a failure instead of failing.
type recorder struct {
	testing.TB
	failed bool
	msg    string
}

func (r *recorder) Helper() {}
func (r *recorder) Fatalf(format string, args ...any) {
	r.failed, r.msg = true, fmt.Sprintf(format, args...)
}

// TestRequirePassRateFailsAnUnreliableModel: the check works in both
// directions. A model that answers wrongly 30% of the time fails
// RequirePassRate(0.90); one that answers wrongly 2% of the time passes.
func TestRequirePassRateFailsAnUnreliableModel(t *testing.T) {
	bad, err := evals.Run(context.Background(), franceSuite(t, 200), "unreliable", newStub(0.3, 0, "0.001", 2), evals.RunOptions{})
	require.NoError(t, err)
	rec := &recorder{TB: t}
	evals.RequirePassRate(rec, bad, 0.90, 0.95)
	assert.True(t, rec.failed, "a 70%%-correct model passed RequirePassRate(0.90): %+v", bad.Stats.PassRate)
	assert.Contains(t, rec.msg, "want its lower bound >= 0.900")

	good, err := evals.Run(context.Background(), franceSuite(t, 200), "reliable", newStub(0.02, 0, "0.001", 3), evals.RunOptions{})
	require.NoError(t, err)
	rec = &recorder{TB: t}
	evals.RequirePassRate(rec, good, 0.90, 0.95)
	assert.False(t, rec.failed, "%s", rec.msg)
}

// TestCostCheckIsNonInferior: a candidate that costs the same but passes
// 10 points less fails the default check on quality (its pass rate may be
// more than 2 points below the baseline's) even with no minimum pass rate;
// the same swap the other way passes.
func TestCostCheckIsNonInferior(t *testing.T) {
	suite := franceSuite(t, 400)
	run := func(name string, wrong float64, seed uint64) *evals.Result {
		r, err := evals.Run(context.Background(), suite, name, newStub(wrong, 0, "0.001", seed), evals.RunOptions{})
		require.NoError(t, err)
		return r
	}
	good, worse := run("good", 0.02, 4), run("worse", 0.12, 5)
	cmp, err := evals.Compare(good, worse, 1)
	require.NoError(t, err)
	ch := evals.RegressionCheck(cmp, decimal.NewFromInt(2), 0, evals.DefaultMaxPassRateDrop)
	require.False(t, ch.Passed(), "%s", cmp.Verdict)
	assert.Contains(t, ch.Failures[0], "quality: worse may pass up to")

	cmp, err = evals.Compare(worse, good, 1)
	require.NoError(t, err)
	ch = evals.RegressionCheck(cmp, decimal.NewFromInt(2), 0, evals.DefaultMaxPassRateDrop)
	assert.True(t, ch.Passed(), "%v", ch.Failures)
}
