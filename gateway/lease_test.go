package gateway_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brownout-dev/brownout/fakeprovider"
	"github.com/brownout-dev/brownout/gateway"
	"github.com/brownout-dev/brownout/gateway/gatewaytest"
	"github.com/brownout-dev/brownout/gateway/ledger"
	"github.com/brownout-dev/brownout/internal/pgtest"
)

// stores are the two IdempotencyStores with the same settings, the
// Postgres one on a fresh database.
func stores(t *testing.T, s gateway.IdempotencySettings) map[string]gateway.IdempotencyStore {
	return map[string]gateway.IdempotencyStore{
		"memory":   gateway.NewMemoryIdempotency(s, nil),
		"postgres": gateway.NewPostgresIdempotency(pgtest.NewPool(t, pgtest.Template{Name: "ledger", Setup: ledger.Migrate}), s),
	}
}

// TestOnlyTheLeaseHolderCompletesOrReleases: once a claim's lease ran out
// and a duplicate took the key over, the first holder can neither complete,
// release nor renew it (it would act on the other's claim); the new holder
// can. Observed before: no owner token, so either could.
func TestOnlyTheLeaseHolderCompletesOrReleases(t *testing.T) {
	for name, store := range stores(t, gateway.IdempotencySettings{Lease: time.Second}) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			hash := []byte("request")
			first, stored, err := store.Begin(ctx, "acme", "k", hash)
			require.NoError(t, err)
			require.Nil(t, stored)
			require.NotNil(t, first)
			require.NoError(t, store.Heartbeat(ctx, first), "the holder renews")

			time.Sleep(1500 * time.Millisecond) // the lease runs out unrenewed
			second, stored, err := store.Begin(ctx, "acme", "k", hash)
			require.NoError(t, err)
			require.Nil(t, stored)
			require.NotNil(t, second, "taken over")
			assert.NotEqual(t, first.Token, second.Token)

			assert.ErrorIs(t, store.Heartbeat(ctx, first), gateway.ErrLeaseLost)
			assert.ErrorIs(t, store.Complete(ctx, first, gateway.StoredResponse{Status: 200, ContentType: "text/plain", Body: []byte("first")}), gateway.ErrLeaseLost)
			assert.ErrorIs(t, store.Release(ctx, first), gateway.ErrLeaseLost)

			require.NoError(t, store.Complete(ctx, second, gateway.StoredResponse{Status: 200, ContentType: "text/plain", Body: []byte("second")}))
			_, stored, err = store.Begin(ctx, "acme", "k", hash)
			require.NoError(t, err)
			require.NotNil(t, stored)
			assert.Equal(t, "second", string(stored.Body))
		})
	}
}

// TestPurgeDeletesExpiredKeys: completed keys past their retention and
// claims abandoned past their lease are deleted, in both stores; live ones
// stay.
func TestPurgeDeletesExpiredKeys(t *testing.T) {
	for name, store := range stores(t, gateway.IdempotencySettings{Retention: time.Second, Lease: 500 * time.Millisecond}) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			for i := range 5 {
				l, _, err := store.Begin(ctx, "acme", fmt.Sprintf("done-%d", i), []byte("r"))
				require.NoError(t, err)
				require.NoError(t, store.Complete(ctx, l, gateway.StoredResponse{Status: 200, ContentType: "text/plain"}))
			}
			_, _, err := store.Begin(ctx, "acme", "abandoned", []byte("r"))
			require.NoError(t, err)
			n, err := store.Purge(ctx)
			require.NoError(t, err)
			assert.Zero(t, n, "nothing has expired yet")

			time.Sleep(1100 * time.Millisecond)
			live, _, err := store.Begin(ctx, "acme", "live", []byte("r"))
			require.NoError(t, err)
			n, err = store.Purge(ctx)
			require.NoError(t, err)
			assert.Equal(t, 6, n, "five expired keys and one abandoned claim")
			require.NoError(t, store.Heartbeat(ctx, live), "a live claim stays")
		})
	}
}

// TestMemoryIdempotencyIsBounded: a million unique keys through the
// embedded store hold at most MaxKeys of them (the completed ones closest
// to expiry go first), and the heap stays about that size.
func TestMemoryIdempotencyIsBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("a million keys: skipped under -short")
	}
	const max = 10_000
	store := gateway.NewMemoryIdempotency(gateway.IdempotencySettings{MaxKeys: max}, nil)
	ctx := context.Background()
	body := []byte(strings.Repeat("x", 200))
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for i := range 1_000_000 {
		l, _, err := store.Begin(ctx, "acme", fmt.Sprintf("key-%d", i), []byte("r"))
		require.NoError(t, err)
		require.NoError(t, store.Complete(ctx, l, gateway.StoredResponse{Status: 200, ContentType: "application/json", Body: body}))
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	assert.LessOrEqual(t, store.Len(), max)
	grew := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("1,000,000 keys through a store of %d: %d held, heap grew %.1f MiB", max, store.Len(), float64(grew)/(1<<20))
	assert.Less(t, grew, int64(64<<20), "the heap holds about MaxKeys keys, not a million")
	// The newest keys are the ones kept.
	_, stored, err := store.Begin(ctx, "acme", "key-999999", []byte("r"))
	require.NoError(t, err)
	assert.NotNil(t, stored)
}

// TestMemoryIdempotencyBoundsItsBytes: the embedded store keeps at most
// MaxBytes of response bodies, dropping the completed keys closest to
// expiry first (a duplicate of one runs again, as past MaxKeys), and the
// bytes of the keys it purges or replaces are free again. Observed before:
// only the count was bounded, so a store of 100,000 keys could hold 100 GiB
// of responses at the default MaxResponseBytes.
func TestMemoryIdempotencyBoundsItsBytes(t *testing.T) {
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	store := gateway.NewMemoryIdempotency(gateway.IdempotencySettings{MaxBytes: 10_000, MaxResponseBytes: 1_000, Retention: time.Minute},
		func() time.Time { return now })
	ctx := context.Background()
	complete := func(key string) {
		t.Helper()
		l, stored, err := store.Begin(ctx, "acme", key, []byte("r"))
		require.NoError(t, err)
		require.Nil(t, stored, "%s: claimed, not replayed", key)
		require.NoError(t, store.Complete(ctx, l, gateway.StoredResponse{Status: 200, ContentType: "application/json", Body: []byte(strings.Repeat(key[:1], 1_000))}))
	}
	replays := func(key string) bool {
		t.Helper()
		l, stored, err := store.Begin(ctx, "acme", key, []byte("r"))
		require.NoError(t, err)
		if l != nil {
			require.NoError(t, store.Release(ctx, l))
			return false
		}
		require.Len(t, stored.Body, 1_000, "%s: replayed whole", key)
		return true
	}
	for i := range 25 {
		complete(fmt.Sprintf("a%02d", i))
	}
	for i := range 25 {
		assert.Equal(t, i >= 15, replays(fmt.Sprintf("a%02d", i)), "a%02d: only the last 10 fit in 10,000 bytes", i)
	}

	now = now.Add(2 * time.Minute) // all expired
	n, err := store.Purge(ctx)
	require.NoError(t, err)
	assert.Equal(t, 10, n)
	for i := range 10 {
		complete(fmt.Sprintf("b%02d", i))
	}
	for i := range 10 {
		assert.True(t, replays(fmt.Sprintf("b%02d", i)), "b%02d: the purged keys' bytes are free again", i)
	}

	now = now.Add(2 * time.Minute) // expired, not purged: replaced one by one
	for i := range 10 {
		complete(fmt.Sprintf("b%02d", i))
	}
	for i := range 10 {
		assert.True(t, replays(fmt.Sprintf("b%02d", i)), "b%02d: a replaced key's bytes are free again", i)
	}

	// A body larger than the whole bound (a store built with MaxBytes under
	// MaxResponseBytes, which the configuration refuses) is not kept: its
	// duplicate is told so, never run again.
	small := gateway.NewMemoryIdempotency(gateway.IdempotencySettings{MaxBytes: 500, MaxResponseBytes: 1_000}, nil)
	l, _, err := small.Begin(ctx, "acme", "big", []byte("r"))
	require.NoError(t, err)
	require.NoError(t, small.Complete(ctx, l, gateway.StoredResponse{Status: 200, ContentType: "application/json", Body: make([]byte, 800)}))
	l, stored, err := small.Begin(ctx, "acme", "big", []byte("r"))
	require.NoError(t, err)
	assert.Nil(t, l, "not claimed again")
	require.NotNil(t, stored)
	assert.Equal(t, int64(800), stored.Omitted)
	assert.Empty(t, stored.Body)
}

// TestHeartbeatHoldsALongRequestsKey: a request that runs five times its
// lease keeps its key by heartbeats, so a duplicate arriving meanwhile
// waits and replays instead of taking the key over and running the
// request again (observed before: a stream longer than the lease ran
// twice). In virtual time, through the HTTP front.
func TestHeartbeatHoldsALongRequestsKey(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		slow := fakeprovider.Model{Answers: []fakeprovider.Answer{{Text: "The capital of France is Paris.", Tokens: 10}},
			TTFTms: fakeprovider.Fixed(100), PerTokenMs: fakeprovider.Fixed(500)}
		g, err := gatewaytest.New(gatewaytest.Config{
			Fakes:       map[string]fakeprovider.Config{"openai": {Vendor: fakeprovider.OpenAI, Seed: 1, Models: map[string]fakeprovider.Model{"gpt-4o-mini": slow}}},
			Gateway:     gateway.Config{Routes: map[string][]string{"chat": {"openai/gpt-4o-mini"}}},
			Idempotency: gateway.NewMemoryIdempotency(gateway.IdempotencySettings{Lease: time.Second}, nil),
		})
		require.NoError(t, err)
		t.Cleanup(g.Close)
		ask := func() *httptest.ResponseRecorder { return askWithKey(g, "long-one") }
		var first, second *httptest.ResponseRecorder
		var wg sync.WaitGroup
		wg.Go(func() { first = ask() })
		time.Sleep(2 * time.Second) // the first runs about 5 s, five leases
		wg.Go(func() { second = ask() })
		wg.Wait()
		require.Equal(t, http.StatusOK, first.Code, first.Body.String())
		require.Equal(t, http.StatusOK, second.Code, second.Body.String())
		assert.Equal(t, "true", second.Header().Get("Idempotent-Replayed"))
		assert.Equal(t, first.Body.String(), second.Body.String())
		assert.Len(t, g.Fakes["openai"].Journal(), 1, "one upstream call")
	})
}

// heldHeartbeat is a store whose first Heartbeat waits until the test
// lets it go, and which notes the order of its calls.
type heldHeartbeat struct {
	gateway.IdempotencyStore
	entered, release chan struct{}
	mu               sync.Mutex
	calls            []string
}

func (h *heldHeartbeat) note(call string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.calls = append(h.calls, call)
}

func (h *heldHeartbeat) Heartbeat(ctx context.Context, l *gateway.Lease) error {
	h.note("heartbeat")
	select {
	case <-h.entered:
	default:
		close(h.entered)
		<-h.release
	}
	defer h.note("heartbeat returned")
	return h.IdempotencyStore.Heartbeat(ctx, l)
}

func (h *heldHeartbeat) Complete(ctx context.Context, l *gateway.Lease, resp gateway.StoredResponse) error {
	h.note("complete")
	return h.IdempotencyStore.Complete(ctx, l, resp)
}

// TestHeartbeatStopsBeforeTheKeyIsCompleted: a request whose answer comes
// while its lease is being renewed completes its key only once that
// renewal has returned, so no renewal of the key runs after its
// completion; and no renewal starts after it. In virtual time.
func TestHeartbeatStopsBeforeTheKeyIsCompleted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := &heldHeartbeat{IdempotencyStore: gateway.NewMemoryIdempotency(gateway.IdempotencySettings{Lease: 300 * time.Millisecond}, nil),
			entered: make(chan struct{}), release: make(chan struct{})}
		g := answersAt150ms(t, store)
		done := make(chan *httptest.ResponseRecorder, 1)
		go func() { done <- askWithKey(g, "renewed-while-answered") }()
		<-store.entered         // the renewal at 100 ms, held
		time.Sleep(time.Second) // the answer came at 150 ms
		synctest.Wait()
		store.mu.Lock()
		before := slices.Clone(store.calls)
		store.mu.Unlock()
		assert.Equal(t, []string{"heartbeat"}, before, "the key waits for the renewal in progress")
		close(store.release)
		rec := <-done
		require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
		time.Sleep(time.Second)
		synctest.Wait()
		store.mu.Lock()
		defer store.mu.Unlock()
		assert.Equal(t, []string{"heartbeat", "heartbeat returned", "complete"}, store.calls)
	})
}

// stalledHeartbeat is a store whose every Heartbeat stalls, as a database
// that stopped answering does, until its ctx ends.
type stalledHeartbeat struct {
	gateway.IdempotencyStore
	mu                  sync.Mutex
	renewals, completed int
}

func (s *stalledHeartbeat) Heartbeat(ctx context.Context, _ *gateway.Lease) error {
	s.mu.Lock()
	s.renewals++
	s.mu.Unlock()
	<-ctx.Done()
	return ctx.Err()
}

func (s *stalledHeartbeat) Complete(ctx context.Context, l *gateway.Lease, resp gateway.StoredResponse) error {
	s.mu.Lock()
	s.completed++
	s.mu.Unlock()
	return s.IdempotencyStore.Complete(ctx, l, resp)
}

// TestAStalledRenewalIsGivenUpWhenTheNextIsDue: a request whose lease
// renewal meets a stalled store (its round trip never answered) ends, and
// completes its key, once that renewal is given up, when the next is due
// (a third of the lease), not when the store answers. In virtual time.
// (Seen red with the renewal on the request's context alone: the request
// had not ended 10 s on.)
func TestAStalledRenewalIsGivenUpWhenTheNextIsDue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := &stalledHeartbeat{IdempotencyStore: gateway.NewMemoryIdempotency(gateway.IdempotencySettings{Lease: 300 * time.Millisecond}, nil)}
		g := answersAt150ms(t, store)
		start := time.Now()
		done := make(chan *httptest.ResponseRecorder, 1)
		go func() { done <- askWithKey(g, "renewed-in-a-stall") }()
		var rec *httptest.ResponseRecorder
		select {
		case rec = <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("the request had not ended 10 s on, its renewal stalled")
		}
		// The answer at 150 ms, during the renewal begun at 100 ms; that
		// renewal given up at 200 ms.
		assert.Equal(t, 200*time.Millisecond, time.Since(start))
		require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
		store.mu.Lock()
		defer store.mu.Unlock()
		assert.Equal(t, 1, store.renewals)
		assert.Equal(t, 1, store.completed, "the key completed")
	})
}

// TestResponseTooLargeIsNotReplayed: a response over max_response_bytes is
// delivered once and not kept; a duplicate gets a 409 that says so, and
// the request is not run again.
func TestResponseTooLargeIsNotReplayed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g, err := gatewaytest.New(gatewaytest.Config{
			Fakes: map[string]fakeprovider.Config{"openai": {Vendor: fakeprovider.OpenAI, Seed: 1,
				Models: map[string]fakeprovider.Model{"gpt-4o-mini": {Answers: []fakeprovider.Answer{{Text: strings.Repeat("Paris ", 100)}}}}}},
			Gateway:     gateway.Config{Routes: map[string][]string{"chat": {"openai/gpt-4o-mini"}}},
			Idempotency: gateway.NewMemoryIdempotency(gateway.IdempotencySettings{MaxResponseBytes: 256}, nil),
		})
		require.NoError(t, err)
		t.Cleanup(g.Close)
		ask := func() *httptest.ResponseRecorder { return askWithKey(g, "big-one") }
		first := ask()
		require.Equal(t, http.StatusOK, first.Code)
		assert.Greater(t, first.Body.Len(), 256)
		second := ask()
		assert.Equal(t, http.StatusConflict, second.Code)
		assert.Contains(t, second.Body.String(), "idempotency_response_not_kept")
		assert.Contains(t, second.Body.String(), fmt.Sprintf("(%d bytes)", first.Body.Len()))
		assert.Len(t, g.Fakes["openai"].Journal(), 1, "not run again")
	})
}

// answersAt150ms is a gateway whose one route's vendor answers 150 ms
// after it is asked, with keys in store.
func answersAt150ms(t *testing.T, store gateway.IdempotencyStore) *gatewaytest.Gateway {
	t.Helper()
	slow := fakeprovider.Model{Answers: []fakeprovider.Answer{{Text: "Paris"}}, TTFTms: fakeprovider.Fixed(150)}
	g, err := gatewaytest.New(gatewaytest.Config{
		Fakes:       map[string]fakeprovider.Config{"openai": {Vendor: fakeprovider.OpenAI, Seed: 1, Models: map[string]fakeprovider.Model{"gpt-4o-mini": slow}}},
		Gateway:     gateway.Config{Routes: map[string][]string{"chat": {"openai/gpt-4o-mini"}}},
		Idempotency: store,
	})
	require.NoError(t, err)
	t.Cleanup(g.Close)
	return g
}

// askWithKey sends a chat request with an Idempotency-Key through g's HTTP
// front, in process.
func askWithKey(g *gatewaytest.Gateway, key string) *httptest.ResponseRecorder {
	req := httptest.NewRequest("POST", "/v1/chat/completions", strings.NewReader(`{"model":"chat","messages":[{"role":"user","content":"Capital of France?"}]}`))
	req.Header.Set("Authorization", "Bearer "+gatewaytest.DefaultKey)
	req.Header.Set("Idempotency-Key", key)
	rec := httptest.NewRecorder()
	g.Handler.ServeHTTP(rec, req)
	return rec
}

// heldComplete is a store whose Complete waits until the test lets it go.
type heldComplete struct {
	gateway.IdempotencyStore
	entered, release chan struct{}
}

func (h heldComplete) Complete(ctx context.Context, l *gateway.Lease, resp gateway.StoredResponse) error {
	close(h.entered)
	<-h.release
	return h.IdempotencyStore.Complete(ctx, l, resp)
}

// TestAnswerBeforeTheKeyIsStored: the client has the whole answer while
// the store's Complete, a round trip to Postgres in production, has not
// returned: it is off the request's critical path. (Observed before: the
// answer was flushed only when the handler returned, after Complete.)
func TestAnswerBeforeTheKeyIsStored(t *testing.T) {
	store := heldComplete{IdempotencyStore: gateway.NewMemoryIdempotency(gateway.IdempotencySettings{}, nil),
		entered: make(chan struct{}), release: make(chan struct{})}
	r := rigOn(t, startFakes(t, nil), ledger.NewMemoryStore(), nil, rigExtras{idempotency: store})
	answeredWhileHeld(t, r, map[string]string{"Idempotency-Key": "held"}, store.entered, "Complete")
	close(store.release)
}

// answeredWhileHeld sends capitalBody to r and checks that the client has
// its whole answer once entered is closed (a store's call has begun, and
// holds) and before the test lets that call return: the call is off the
// request's critical path.
func answeredWhileHeld(t *testing.T, r *rig, headers map[string]string, entered <-chan struct{}, call string) {
	t.Helper()
	got := make(chan int, 1)
	go func() {
		resp, body := send(t, r.server.URL, tenantKey, capitalBody, headers)
		if len(body) > 0 {
			got <- resp.StatusCode
		}
	}()
	<-entered
	select {
	case status := <-got:
		assert.Equal(t, 200, status)
	case <-time.After(30 * time.Second): // only a failure detector: the answer comes at once or never
		t.Errorf("the client had no answer while %s ran", call)
	}
}

// heldSettle is a budget store whose Settle waits until the test lets it go.
type heldSettle struct {
	*gateway.MemoryBudgets
	entered, release, settled chan struct{}
}

func (h heldSettle) Settle(ctx context.Context, tenant string, w time.Time, reserved, actual decimal.Decimal) error {
	close(h.entered)
	<-h.release
	defer close(h.settled)
	return h.MemoryBudgets.Settle(ctx, tenant, w, reserved, actual)
}

// TestAnswerBeforeTheBudgetSettles: as a key's completion, a reservation's
// settlement is off the request's critical path: the client has the whole
// answer while Settle has not returned, and the settlement lands after it.
// (Before, the handler settled before it wrote the answer.)
func TestAnswerBeforeTheBudgetSettles(t *testing.T) {
	store := heldSettle{MemoryBudgets: gateway.NewMemoryBudgets(),
		entered: make(chan struct{}), release: make(chan struct{}), settled: make(chan struct{})}
	r := rigOn(t, startFakes(t, nil), ledger.NewMemoryStore(), nil,
		rigExtras{budgets: map[string]gateway.Budget{"acme": {Limit: decimal.NewFromInt(1), Window: budgetWindow}}, budgetStore: store})
	answeredWhileHeld(t, r, nil, store.entered, "Settle")
	close(store.release)
	<-store.settled
	spent, reserved := gateway.MemorySpent(store.MemoryBudgets, "acme", time.Now().UTC().Truncate(budgetWindow))
	assert.True(t, reserved.IsZero(), "the reservation was settled; %s still held", reserved)
	assert.True(t, spent.IsPositive(), "the answer's cost was spent")
}

// TestAClaimOutlivesItsClientsCancel: a client that goes away while its
// Idempotency-Key's claim is on its way to Postgres does not leave the key
// held by no one until the lease runs out. The claim's commit is held
// (pgtest.HoldCommits) when the client cancels; a round trip cut then
// would have committed the claim unseen. The claim runs to its end and
// hands back the lease, which the caller releases, as the handler does:
// the key is free at once. (Seen red with the claim on the client's
// context: the claim failed with the cancel and the key stayed in flight.)
func TestAClaimOutlivesItsClientsCancel(t *testing.T) {
	pool, holdCommits := heldCommits(t)
	keys := gateway.NewPostgresIdempotency(pool, gateway.IdempotencySettings{})

	release := holdCommits()
	ctx, cancel := context.WithCancel(context.Background())
	type claim struct {
		lease *gateway.Lease
		err   error
	}
	done := make(chan claim, 1)
	go func() {
		l, _, err := keys.Begin(ctx, "acme", "order-1", []byte("h"))
		done <- claim{l, err}
	}()
	release.await("the claim")
	cancel() // the client goes away
	release.now()
	c := <-done
	require.NoError(t, c.err, "the claim's outcome reached its caller")
	require.NotNil(t, c.lease)
	require.NoError(t, keys.Release(context.Background(), c.lease))
	var held int
	require.NoError(t, pool.QueryRow(context.Background(), `SELECT count(*) FROM idempotency_keys WHERE key = 'order-1'`).Scan(&held))
	assert.Zero(t, held, "the key is free")
}
