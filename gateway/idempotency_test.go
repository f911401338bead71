package gateway_test

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brownout-dev/brownout/fakeprovider"
	"github.com/brownout-dev/brownout/gateway"
	"github.com/brownout-dev/brownout/gateway/ledger"
	"github.com/brownout-dev/brownout/internal/pgtest"
)

// post sends a raw chat request as the rig's tenant, with an
// Idempotency-Key and an X-Request-ID.
func post(t *testing.T, base, key, reqID, body string) (int, http.Header, []byte) {
	t.Helper()
	resp, b := send(t, base, tenantKey, body, map[string]string{"Idempotency-Key": key, "X-Request-ID": reqID})
	return resp.StatusCode, resp.Header, b
}

const capitalBody = `{"model":"mini","messages":[{"role":"user","content":"What is the capital of France? One word."}]}`

// slowOpenAI makes every OpenAI answer take 300ms, so duplicates overlap.
var slowOpenAI = map[string][]fakeprovider.Fault{"openai": {{Kind: fakeprovider.FaultLatency, Delay: 300 * time.Millisecond}}}

func TestIdempotentReplay(t *testing.T) {
	store := ledger.NewMemoryStore()
	r := rigOn(t, startFakes(t, nil), store, nil, rigExtras{idempotency: gateway.NewMemoryIdempotency(gateway.IdempotencySettings{}, nil)})
	status, h, first := post(t, r.server.URL, "key-1", "idem-a", capitalBody)
	require.Equal(t, 200, status, "%s", first)
	assert.Empty(t, h.Get("Idempotent-Replayed"))
	status, h, again := post(t, r.server.URL, "key-1", "idem-b", capitalBody)
	require.Equal(t, 200, status)
	assert.Equal(t, "true", h.Get("Idempotent-Replayed"))
	assert.Equal(t, string(first), string(again), "the stored response, byte for byte")
	assert.Len(t, r.fakes["openai"].Journal(), 1, "no second upstream call")
	var buf exportBuffer
	_, err := store.Export(context.Background(), ledger.Query{ClientRequestID: "idem-b"}, &buf)
	require.NoError(t, err)
	assert.Empty(t, buf.attempts(t), "a replay writes no ledger row")

	// The same key with another request is a 422; another tenant's key space is separate.
	status, _, body := post(t, r.server.URL, "key-1", "idem-c", `{"model":"mini","messages":[{"role":"user","content":"And of Spain?"}]}`)
	assert.Equal(t, 422, status)
	assert.Contains(t, string(body), "idempotency_key_mismatch")
}

func TestIdempotentConcurrentDuplicates(t *testing.T) {
	for _, backend := range []string{"memory", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			store := ledger.NewMemoryStore()
			var idem gateway.IdempotencyStore = gateway.NewMemoryIdempotency(gateway.IdempotencySettings{}, nil)
			if backend == "postgres" {
				idem = gateway.NewPostgresIdempotency(pgtest.NewPool(t, pgtest.Template{Name: "ledger", Setup: ledger.Migrate}), gateway.IdempotencySettings{})
			}
			r := rigOn(t, startFakes(t, slowOpenAI), store, nil, rigExtras{idempotency: idem})
			bodies := make([][]byte, 50)
			var wg sync.WaitGroup
			for i := range 50 {
				wg.Go(func() {
					status, _, b := post(t, r.server.URL, "dup-key", fmt.Sprintf("dup-%d", i), capitalBody)
					assert.Equal(t, 200, status, "%s", b)
					bodies[i] = b
				})
			}
			wg.Wait()
			for i := range bodies {
				assert.Equal(t, string(bodies[0]), string(bodies[i]), "response %d differs", i)
			}
			assert.Len(t, r.fakes["openai"].Journal(), 1, "50 duplicates, one upstream call")
			totals, err := store.Totals(context.Background(), ledger.Query{})
			require.NoError(t, err)
			require.Len(t, totals, 1)
			assert.Equal(t, int64(1), totals[0].Requests, "ledger rows for one request only")
			assert.Equal(t, int64(1), totals[0].Attempts)
		})
	}
}

// TestIdempotencyAcrossGatewayInstances: two gateways sharing one Postgres
// (separate pools, as separate processes would have) share keys.
func TestIdempotencyAcrossGatewayInstances(t *testing.T) {
	url := pgtest.New(t, pgtest.Template{Name: "ledger", Setup: ledger.Migrate})
	fakes := startFakes(t, slowOpenAI)
	store := ledger.NewPostgresStore(pgtest.Pool(t, url))
	a := rigOn(t, fakes, store, nil, rigExtras{idempotency: gateway.NewPostgresIdempotency(pgtest.Pool(t, url), gateway.IdempotencySettings{})})
	b := rigOn(t, fakes, store, nil, rigExtras{idempotency: gateway.NewPostgresIdempotency(pgtest.Pool(t, url), gateway.IdempotencySettings{})})

	var wg sync.WaitGroup
	bodies := make([][]byte, 20)
	for i := range 20 {
		base := a.server.URL
		if i%2 == 1 {
			base = b.server.URL
		}
		wg.Go(func() {
			status, _, body := post(t, base, "shared-key", fmt.Sprintf("shared-%d", i), capitalBody)
			assert.Equal(t, 200, status, "%s", body)
			bodies[i] = body
		})
	}
	wg.Wait()
	for i := range bodies {
		assert.Equal(t, string(bodies[0]), string(bodies[i]))
	}
	assert.Len(t, fakes["openai"].Journal(), 1, "one upstream call across both gateways")
	status, h, _ := post(t, b.server.URL, "shared-key", "shared-late", capitalBody)
	assert.Equal(t, 200, status)
	assert.Equal(t, "true", h.Get("Idempotent-Replayed"))
}

func TestIdempotencyKeyIsReleasedAfterAFailure(t *testing.T) {
	r := rigOn(t, startFakes(t, map[string][]fakeprovider.Fault{"openai": {{Kind: fakeprovider.FaultServerError, Status: 503, Count: 3}}}),
		ledger.NewMemoryStore(), nil, rigExtras{idempotency: gateway.NewMemoryIdempotency(gateway.IdempotencySettings{}, nil)})
	status, _, _ := post(t, r.server.URL, "retry-me", "rel-1", capitalBody)
	assert.Equal(t, 503, status, "three 503s: the retries ran out")
	status, h, _ := post(t, r.server.URL, "retry-me", "rel-2", capitalBody)
	assert.Equal(t, 200, status, "the client's retry with the same key runs again")
	assert.Empty(t, h.Get("Idempotent-Replayed"))
}
