package ledger_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brownout-dev/brownout/gateway/ledger"
	"github.com/brownout-dev/brownout/gateway/llm"
)

// stores runs the contract test f against each Store implementation.
func stores(t *testing.T, f func(t *testing.T, newStore func(t *testing.T) ledger.Store)) {
	t.Run("memory", func(t *testing.T) {
		f(t, func(t *testing.T) ledger.Store { return ledger.NewMemoryStore() })
	})
	t.Run("postgres", func(t *testing.T) {
		f(t, func(t *testing.T) ledger.Store { return newPostgresStore(t) })
	})
}

func TestStoreInsertIsIdempotent(t *testing.T) {
	stores(t, func(t *testing.T, newStore func(t *testing.T) ledger.Store) {
		ctx := context.Background()
		s := newStore(t)
		batch := attempts(0, 100)
		n, err := s.Insert(ctx, batch)
		require.NoError(t, err)
		assert.Equal(t, 100, n)

		// The same batch again, and a batch that repeats one identity inside
		// itself with different contents: nothing new, the first record wins.
		n, err = s.Insert(ctx, batch)
		require.NoError(t, err)
		assert.Equal(t, 0, n, "Insert(same batch) inserted")
		dup := attempt(0)
		dup.Cost = decimal.RequireFromString("99")
		n, err = s.Insert(ctx, []ledger.Attempt{attempt(100), attempt(100), dup})
		require.NoError(t, err)
		assert.Equal(t, 1, n)

		total := grandTotal(t, s)
		assert.Equal(t, int64(101), total.Attempts)
		assert.True(t, total.Cost.Equal(sumCost(attempts(0, 101))), "cost = %s; want %s", total.Cost, sumCost(attempts(0, 101)))
	})
}

// unfinished is attempt i's row as the gateway records it before the
// upstream call: the prompt's estimate.
func unfinished(i int) ledger.Attempt {
	a := attempt(i)
	a.Outcome, a.UsageSource, a.HTTPStatus, a.ProviderReqID = ledger.OutcomeUnfinished, ledger.UsageEstimated, 0, ""
	a.Tokens = llm.Usage{Input: a.Tokens.Input}
	a.Cost, a.FinishedAt = decimal.RequireFromString("0.000000000123"), a.StartedAt
	return a
}

// TestStoreFinishedReplacesUnfinished: an attempt's finished row replaces
// its unfinished one, once, in whatever batches and order they come (a
// spool replayed late, a retried batch); an unfinished row never replaces
// anything, and one alone stays, counted at its estimate. (Seen red with
// the replacement left out of either store: the unfinished rows kept.)
func TestStoreFinishedReplacesUnfinished(t *testing.T) {
	stores(t, func(t *testing.T, newStore func(t *testing.T) ledger.Store) {
		ctx := context.Background()
		s := newStore(t)
		insert := func(want int, batch ...ledger.Attempt) {
			t.Helper()
			n, err := s.Insert(ctx, batch)
			require.NoError(t, err)
			assert.Equal(t, want, n)
		}
		insert(4, unfinished(0), unfinished(1), unfinished(2), unfinished(3))
		insert(1, attempt(0))                               // finished after unfinished
		insert(0, unfinished(0), unfinished(1))             // an unfinished row replaces nothing
		insert(1, unfinished(4), attempt(4))                // both in one batch
		insert(1, attempt(5), unfinished(5))                // the other way round
		insert(2, attempt(1), attempt(1), attempt(2))       // a duplicate in the batch: replaced once
		insert(0, attempt(0), attempt(1), attempt(2))       // finished rows replace nothing
		insert(0, unfinished(5), unfinished(4), attempt(4)) // nor does anything replace them

		got := map[int]ledger.Outcome{}
		cost := decimal.Zero
		for i := range 6 {
			want := attempt(i)
			rows, err := s.RequestAttempts(ctx, want.RequestID)
			require.NoError(t, err)
			for _, r := range rows {
				if r.Attempt == want.Attempt {
					got[i] = r.Outcome
					cost = cost.Add(r.Cost)
				}
			}
		}
		assert.Equal(t, map[int]ledger.Outcome{0: attempt(0).Outcome, 1: attempt(1).Outcome, 2: attempt(2).Outcome,
			3: ledger.OutcomeUnfinished, 4: attempt(4).Outcome, 5: attempt(5).Outcome}, got)
		want := sumCost([]ledger.Attempt{attempt(0), attempt(1), attempt(2), unfinished(3), attempt(4), attempt(5)})
		assert.Equal(t, want.String(), cost.String())
		total := grandTotal(t, s)
		assert.Equal(t, int64(6), total.Attempts)
		assert.Equal(t, want.String(), total.Cost.String())
	})
}

func TestStoreConcurrentDuplicatesCountOnce(t *testing.T) {
	stores(t, func(t *testing.T, newStore func(t *testing.T) ledger.Store) {
		s := newStore(t)
		a := attempt(7)
		var wg sync.WaitGroup
		inserted := make([]int, 8)
		for i := range 8 {
			wg.Go(func() {
				n, err := s.Insert(context.Background(), []ledger.Attempt{a})
				assert.NoError(t, err)
				inserted[i] = n
			})
		}
		wg.Wait()
		sum := 0
		for _, n := range inserted {
			sum += n
		}
		assert.Equal(t, 1, sum, "inserted counts %v", inserted)
		total := grandTotal(t, s)
		assert.Equal(t, int64(1), total.Attempts)
		assert.True(t, total.Cost.Equal(a.Cost))
	})
}

func TestStoreRejectsBadBatchWhole(t *testing.T) {
	stores(t, func(t *testing.T, newStore func(t *testing.T) ledger.Store) {
		s := newStore(t)
		batch := attempts(0, 10)
		batch[6].Tokens.Output = -3
		_, err := s.Insert(context.Background(), batch)
		require.Error(t, err)
		assert.True(t, errors.Is(err, ledger.ErrInvalid))
		assert.Contains(t, err.Error(), "batch item 6")
		assert.Contains(t, err.Error(), "tokens.output")
		assert.Equal(t, int64(0), grandTotal(t, s).Attempts, "a rejected batch was partly written")
	})
}

func TestStoreTotals(t *testing.T) {
	stores(t, func(t *testing.T, newStore func(t *testing.T) ledger.Store) {
		ctx := context.Background()
		s := newStore(t)
		all := attempts(0, 300)
		_, err := s.Insert(ctx, all)
		require.NoError(t, err)

		// Expected totals, computed here by hand from the same attempts.
		want := map[string]ledger.Total{}
		for _, a := range all {
			if a.Tenant != "tenant-1" || a.StartedAt.Before(t0.Add(50*time.Millisecond)) {
				continue
			}
			w := want[a.Provider]
			w.Provider = a.Provider
			w.Attempts++
			w.Tokens = w.Tokens.Add(a.Tokens)
			w.Cost = w.Cost.Add(a.Cost)
			if a.UsageSource == ledger.UsageEstimated {
				w.EstimatedCost = w.EstimatedCost.Add(a.Cost)
			}
			want[a.Provider] = w
		}
		got, err := s.Totals(ctx, ledger.Query{From: t0.Add(50 * time.Millisecond), Tenant: "tenant-1", GroupBy: []ledger.Dimension{ledger.ByProvider}})
		require.NoError(t, err)
		require.Len(t, got, len(want))
		for i, g := range got {
			if i > 0 {
				assert.Less(t, got[i-1].Provider, g.Provider, "totals not sorted")
			}
			w := want[g.Provider]
			assert.Equal(t, w.Attempts, g.Attempts, "%s attempts", g.Provider)
			assert.Equal(t, w.Tokens, g.Tokens, "%s tokens", g.Provider)
			assert.True(t, w.Cost.Equal(g.Cost), "%s cost = %s; want %s", g.Provider, g.Cost, w.Cost)
			assert.True(t, w.EstimatedCost.IsPositive(), "%s: the sample has estimated rows", g.Provider)
			assert.True(t, w.EstimatedCost.Equal(g.EstimatedCost), "%s estimated cost = %s; want %s", g.Provider, g.EstimatedCost, w.EstimatedCost)
			assert.Empty(t, g.Tenant, "tenant is not grouped")
		}

		byOutcome, err := s.Totals(ctx, ledger.Query{GroupBy: []ledger.Dimension{ledger.ByOutcome, ledger.ByModel}})
		require.NoError(t, err)
		var n int64
		for _, g := range byOutcome {
			n += g.Attempts
			assert.NotEmpty(t, g.Outcome)
			assert.NotEmpty(t, g.Model)
		}
		assert.Equal(t, int64(300), n)

		none, err := s.Totals(ctx, ledger.Query{Tenant: "nobody"})
		require.NoError(t, err)
		assert.Empty(t, none)

		_, err = s.Totals(ctx, ledger.Query{GroupBy: []ledger.Dimension{"colour"}})
		assert.ErrorContains(t, err, `unknown group-by dimension "colour"`)
	})
}

func TestStoreRequestAttempts(t *testing.T) {
	stores(t, func(t *testing.T, newStore func(t *testing.T) ledger.Store) {
		s := newStore(t)
		_, err := s.Insert(context.Background(), attempts(0, 10))
		require.NoError(t, err)
		got, err := s.RequestAttempts(context.Background(), "req-000003")
		require.NoError(t, err)
		require.Len(t, got, 2)
		assert.Equal(t, []int{1, 2}, []int{got[0].Attempt, got[1].Attempt})
		want := attempt(6)
		require.NoError(t, want.Validate())
		assert.Equal(t, want.ProviderReqID, got[0].ProviderReqID)
		assert.True(t, want.Cost.Equal(got[0].Cost))
		assert.True(t, want.StartedAt.Equal(got[0].StartedAt))
	})
}

// TestStoreExportIsTheSameEverywhere guards the export format: the memory and
// Postgres stores write byte-identical JSONL for the same attempts.
func TestStoreExportIsTheSameEverywhere(t *testing.T) {
	ctx := context.Background()
	batch := attempts(0, 50)
	batch[3].ErrorMessage = "upstream said: überlastet"
	batch[3].Outcome = ledger.OutcomeServerError
	batch[3].HTTPStatus = 503
	var exports [][]byte
	for _, s := range []ledger.Store{ledger.NewMemoryStore(), newPostgresStore(t)} {
		_, err := s.Insert(ctx, batch)
		require.NoError(t, err)
		var buf bytes.Buffer
		n, err := s.Export(ctx, ledger.Query{From: t0.Add(10 * time.Millisecond), To: t0.Add(40 * time.Millisecond)}, &buf)
		require.NoError(t, err)
		assert.Equal(t, 30, n)
		exports = append(exports, buf.Bytes())
	}
	assert.Equal(t, string(exports[0]), string(exports[1]))

	lines := bytes.Split(bytes.TrimSpace(exports[1]), []byte("\n"))
	require.Len(t, lines, 30)
	var first ledger.Attempt
	require.NoError(t, json.Unmarshal(lines[0], &first))
	want := attempt(10)
	require.NoError(t, want.Validate())
	assert.Equal(t, want, first)
}

// TestStoreClientRequestID: the client's X-Request-ID is kept beside the
// key, any number of requests may share it, and an export finds them by it.
func TestStoreClientRequestID(t *testing.T) {
	stores(t, func(t *testing.T, newStore func(t *testing.T) ledger.Store) {
		ctx := context.Background()
		s := newStore(t)
		batch := attempts(0, 10)
		for _, i := range []int{2, 5, 7} {
			batch[i].ClientRequestID = "same-id"
		}
		_, err := s.Insert(ctx, batch)
		require.NoError(t, err)
		var buf bytes.Buffer
		n, err := s.Export(ctx, ledger.Query{ClientRequestID: "same-id"}, &buf)
		require.NoError(t, err)
		require.Equal(t, 3, n)
		var ids []string
		for _, line := range bytes.Split(bytes.TrimSpace(buf.Bytes()), []byte("\n")) {
			var a ledger.Attempt
			require.NoError(t, json.Unmarshal(line, &a))
			assert.Equal(t, "same-id", a.ClientRequestID)
			ids = append(ids, a.RequestID)
		}
		assert.Equal(t, []string{batch[2].RequestID, batch[5].RequestID, batch[7].RequestID}, ids)
		got, err := s.RequestAttempts(ctx, batch[0].RequestID)
		require.NoError(t, err)
		require.NotEmpty(t, got)
		for _, a := range got {
			assert.Empty(t, a.ClientRequestID, "a request sent without one")
		}
	})
}

func TestSanitizeID(t *testing.T) {
	long := string(bytes.Repeat([]byte("é"), ledger.MaxIDLen)) // two bytes a rune
	for _, tc := range []struct{ in, want string }{
		{"req_123", "req_123"},
		{"", ""},
		{"a\x00b\nc\x7fd", "a?b?c?d"},
		{"bad\xffutf8", "bad?utf8"},
		{long, long[:ledger.MaxIDLen]},
	} {
		got := ledger.SanitizeID(tc.in)
		assert.Equal(t, tc.want, got, "SanitizeID(%q)", tc.in)
		assert.NoError(t, ledger.CheckID(got), "SanitizeID(%q) is a valid identifier", tc.in)
	}
}
