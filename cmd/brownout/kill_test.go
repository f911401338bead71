package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brownout-dev/brownout/fakeprovider"
	"github.com/brownout-dev/brownout/gateway/ledger"
	"github.com/brownout-dev/brownout/internal/pgtest"
)

// gatewayProcess is `brownout serve` in a child process of its own, as a
// deployment runs several behind a load balancer.
type gatewayProcess struct {
	cmd     *exec.Cmd
	addr    string
	metrics string // its /metrics URL; "" with --metrics-addr off
}

func startGatewayProcess(t *testing.T, args ...string) *gatewayProcess {
	t.Helper()
	cmd := exec.Command(os.Args[0], append([]string{"serve"}, args...)...)
	cmd.Env = append(os.Environ(), "BROWNOUT_CLI=1")
	cmd.Stderr = io.Discard
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	require.NoError(t, err, "serve's first line")
	var first struct{ Addr, Metrics string }
	require.NoError(t, json.Unmarshal([]byte(line), &first), "%q", line)
	go func() { _, _ = io.Copy(io.Discard, out) }()
	return &gatewayProcess{cmd: cmd, addr: first.Addr, metrics: first.Metrics}
}

// counter reads a counter of the gateway's /metrics.
func (g *gatewayProcess) counter(t *testing.T, name string) float64 {
	t.Helper()
	resp, err := http.Get(g.metrics)
	require.NoError(t, err)
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	require.NoError(t, err)
	f, ok := families[name]
	require.True(t, ok, "%s not in %s", name, g.metrics)
	return f.GetMetric()[0].GetCounter().GetValue()
}

// killPair is two `brownout serve` processes, A and B, on one fresh ledger
// database, in front of the vendor at vendorURL: route chat, tenant acme
// with a $0.05 budget (key tenant-key), and keys leased for a second, so
// a dead gateway's key is soon taken over. prepare, when set, runs on the
// database before they start.
func killPair(t *testing.T, vendorURL string, prepare func(dbURL string)) (a, b *gatewayProcess, dbURL string) {
	t.Helper()
	dir := t.TempDir()
	cfg := serveConfig(t, dir, `
providers:
  openai: {vendor: openai, base_url: "`+vendorURL+`", api_key_env: KILL_TEST_OPENAI_KEY}
routes:
  chat: [openai/gpt-4o-mini]
tenants:
  - {name: acme, api_key_env: KILL_TEST_TENANT_KEY, budget_usd: "0.05", budget_window: 24000h}
idempotency:
  lease: 1s
`, map[string]string{"KILL_TEST_OPENAI_KEY": "provider-key", "KILL_TEST_TENANT_KEY": "tenant-key"})
	dbURL = pgtest.New(t, pgtest.Template{Name: "ledger", Setup: ledger.Migrate})
	if prepare != nil {
		prepare(dbURL)
	}
	a = startGatewayProcess(t, "--config", cfg, "--database-url", dbURL, "--metrics-addr", "off", "--spool-dir", filepath.Join(dir, "a"))
	b = startGatewayProcess(t, "--config", cfg, "--database-url", dbURL, "--metrics-addr", "off", "--spool-dir", filepath.Join(dir, "b"))
	return a, b, dbURL
}

// postOrder sends the kill tests' request, with Idempotency-Key order-1,
// to the gateway at base. Its client's bound makes a gateway that never
// takes a dead one's key over fail the test rather than hang it, and one
// that leaves it to the minute's purge fail too (the lease is 1s).
func postOrder(base string) (int, http.Header, []byte, error) {
	const body = `{"model":"chat","max_tokens":16,"messages":[{"role":"user","content":"What is the capital of France? One word."}]}`
	req, _ := http.NewRequest("POST", base+"/v1/chat/completions", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer tenant-key")
	req.Header.Set("Idempotency-Key", "order-1")
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, answer, err
}

// TestTwoGatewaysSurviveAKill: two `brownout serve` processes on one
// Postgres. Gateway A claims an Idempotency-Key and reserves its tenant's
// budget, calls the vendor, and is killed with SIGKILL before the vendor
// answers: nothing it would have written after the call is written. The
// duplicate sent to gateway B waits on A's lease, takes the key over once
// the lease runs out unrenewed, and runs the request; a third copy
// replays B's answer. A's reservation stays held (its window releases it);
// B's is settled at the vendor's invoice; the budget is never overshot.
// A's attempt, which the vendor may bill, is in the ledger from before its
// call, at the estimate of its prompt. (Seen red without the early row: the
// ledger had B's attempt only.)
func TestTwoGatewaysSurviveAKill(t *testing.T) {
	fake, err := fakeprovider.NewUnstartedServer(fakeprovider.Config{Vendor: fakeprovider.OpenAI, Seed: 1,
		Models: map[string]fakeprovider.Model{"gpt-4o-mini": {Answers: []fakeprovider.Answer{{Text: "Paris"}}}}})
	require.NoError(t, err)
	// The vendor holds its first call until the test ends: gateway A is
	// killed while it waits.
	var calls atomic.Int32
	arrived, hold := make(chan struct{}), make(chan struct{})
	vendor := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			close(arrived)
			select {
			case <-hold:
			case <-r.Context().Done():
			}
			return
		}
		fake.ServeHTTP(w, r)
	}))
	defer vendor.Close()
	defer close(hold)

	a, b, dbURL := killPair(t, vendor.URL, nil)
	toA := make(chan error, 1)
	go func() {
		_, _, _, err := postOrder(a.addr)
		toA <- err
	}()
	select {
	case <-arrived:
	case err := <-toA:
		t.Fatalf("gateway A answered before the vendor was called: %v", err)
	}
	db, err := pgx.Connect(context.Background(), dbURL)
	require.NoError(t, err)
	defer db.Close(context.Background())
	// A's attempt reaches the ledger while the vendor works on it: the row
	// a crash leaves (the writer's flush, within a second; a bound, so that
	// a gateway that never writes it fails rather than hangs).
	unfinished := func() (n int) {
		require.NoError(t, db.QueryRow(context.Background(), `SELECT count(*) FROM ledger_attempts WHERE outcome = 'unfinished'`).Scan(&n))
		return n
	}
	for wait := time.Now().Add(10 * time.Second); unfinished() == 0 && time.Now().Before(wait); {
		time.Sleep(20 * time.Millisecond)
	}
	require.NoError(t, a.cmd.Process.Signal(syscall.SIGKILL))
	_ = a.cmd.Wait()
	assert.Error(t, <-toA, "A's client lost its connection")
	budget := func() (spent, reserved decimal.Decimal) {
		require.NoError(t, db.QueryRow(context.Background(), `SELECT spent::text, reserved::text FROM budget_windows WHERE tenant = 'acme'`).
			Scan(&spent, &reserved))
		return spent, reserved
	}
	keyState := func() (state string) {
		require.NoError(t, db.QueryRow(context.Background(), `SELECT state FROM idempotency_keys WHERE tenant = 'acme' AND key = 'order-1'`).Scan(&state))
		return state
	}
	assert.Equal(t, "in_flight", keyState(), "A's claim, held by a dead process")
	spent, heldByA := budget()
	assert.True(t, spent.IsZero())
	// A's reservation by hand: 40 characters + 8 as input tokens at $0.15/M,
	// 16 output tokens at $0.60/M.
	assert.Equal(t, "0.0000168", heldByA.String(), "A's reservation, taken with its claim")

	status, h, answer, err := postOrder(b.addr)
	require.NoError(t, err)
	require.Equal(t, 200, status, "%s", answer)
	assert.Empty(t, h.Get("Idempotent-Replayed"), "B ran the request once A's lease ran out")
	assert.Equal(t, int32(2), calls.Load(), "the vendor was called by A and then by B")
	status, h, again, err := postOrder(b.addr)
	require.NoError(t, err)
	assert.Equal(t, 200, status)
	assert.Equal(t, "true", h.Get("Idempotent-Replayed"))
	assert.Equal(t, string(answer), string(again))
	assert.Equal(t, int32(2), calls.Load(), "the replay called no vendor")

	require.NoError(t, b.cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, b.cmd.Wait(), "B stops cleanly, its writes flushed")
	assert.Equal(t, "done", keyState())
	spent, reserved := budget()
	assert.Equal(t, heldByA.String(), reserved.String(), "A's reservation is held, B's settled")
	assert.Equal(t, fake.Invoice().Totals.Cost.String(), spent.String(), "B's spend is the vendor's invoice")
	assert.True(t, spent.Add(reserved).LessThanOrEqual(decimal.RequireFromString("0.05")))

	// The ledger has both calls the vendor may bill: A's at the estimate of
	// its prompt, recorded before its call (by hand: 40 characters at 4 a
	// token and 4 tokens for the message, 14 tokens at $0.15 per million),
	// and B's at the invoice.
	var outcome, source, cost string
	var input int64
	require.NoError(t, db.QueryRow(context.Background(), `SELECT outcome, usage_source, input_tokens, cost::text FROM ledger_attempts
		WHERE outcome <> 'ok'`).Scan(&outcome, &source, &input, &cost))
	assert.Equal(t, []any{"unfinished", "estimated", int64(14)}, []any{outcome, source, input}, "A's attempt, left unfinished")
	assert.Equal(t, "0.000002100000", cost)
	var rows int
	var total decimal.Decimal
	require.NoError(t, db.QueryRow(context.Background(), `SELECT count(*), sum(cost)::text FROM ledger_attempts`).Scan(&rows, &total))
	assert.Equal(t, 2, rows, "A's attempt and B's")
	assert.Equal(t, fake.Invoice().Totals.Cost.Add(decimal.RequireFromString("0.0000021")).String(), total.String())
}

// TestTwoGatewaysRideOutADatabaseOutage: two `brownout serve` processes on
// one Postgres, each with two requests at the vendor, when the database
// drops every connection and refuses new ones (a restart, a failover). The
// vendor then answers: the clients get their answers, and what the
// gateways write after them (the ledger's rows, the keys' completions, the
// budget's settlements) waits for the database. Once it is back and the
// gateways stop, everything the vendor billed is in the ledger once, at
// the invoice, the budget has spent the invoice with nothing left
// reserved, and every key is done: no write lost, none counted twice.
// (Seen red with the write-behind giving up on a database out of reach
// after its retries: nothing spent of an invoice of $0.0000108, $0.0000672
// left reserved, 2 keys of 4 done.)
func TestTwoGatewaysRideOutADatabaseOutage(t *testing.T) {
	fake, err := fakeprovider.NewUnstartedServer(fakeprovider.Config{Vendor: fakeprovider.OpenAI, Seed: 1,
		Models: map[string]fakeprovider.Model{"gpt-4o-mini": {Answers: []fakeprovider.Answer{{Text: "Paris"}}}}})
	require.NoError(t, err)
	const requests = 4
	var calls atomic.Int32
	arrived, answer := make(chan struct{}, requests), make(chan struct{})
	vendor := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		arrived <- struct{}{}
		select {
		case <-answer:
		case <-r.Context().Done():
			return
		}
		fake.ServeHTTP(w, r)
	}))
	defer vendor.Close()

	dir := t.TempDir()
	cfg := serveConfig(t, dir, `
providers:
  openai: {vendor: openai, base_url: "`+vendor.URL+`", api_key_env: OUTAGE_TEST_OPENAI_KEY}
routes:
  chat: [openai/gpt-4o-mini]
tenants:
  - {name: acme, api_key_env: OUTAGE_TEST_TENANT_KEY, budget_usd: "1", budget_window: 24000h}
`, map[string]string{"OUTAGE_TEST_OPENAI_KEY": "provider-key", "OUTAGE_TEST_TENANT_KEY": "tenant-key"})
	dbURL := pgtest.New(t, pgtest.Template{Name: "ledger", Setup: ledger.Migrate})
	ctx := context.Background()
	gateways := []*gatewayProcess{
		startGatewayProcess(t, "--config", cfg, "--database-url", dbURL, "--spool-dir", filepath.Join(dir, "a")),
		startGatewayProcess(t, "--config", cfg, "--database-url", dbURL, "--spool-dir", filepath.Join(dir, "b")),
	}

	client := &http.Client{Timeout: 2 * time.Minute}
	answered := make(chan error, requests)
	for i := range requests {
		go func() {
			req, _ := http.NewRequest("POST", gateways[i%2].addr+"/v1/chat/completions", strings.NewReader(
				`{"model":"chat","max_tokens":16,"messages":[{"role":"user","content":"What is the capital of France? One word."}]}`))
			req.Header.Set("Authorization", "Bearer tenant-key")
			req.Header.Set("Idempotency-Key", fmt.Sprintf("order-%d", i))
			resp, err := client.Do(req)
			if err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					err = fmt.Errorf("request %d: status %d", i, resp.StatusCode)
				}
			}
			answered <- err
		}()
	}
	for range requests {
		<-arrived // each claimed its key and reserved its budget
	}
	restore := pgtest.Shared(t).CutOff(t, dbURL)
	close(answer)
	for range requests {
		require.NoError(t, <-answered, "the client's answer does not wait for the database")
	}
	// Both gateways find the database out of reach with their writes.
	for _, g := range gateways {
		require.Eventually(t, func() bool { return g.counter(t, "brownout_write_behind_waits_total") >= 24 },
			2*time.Minute, 20*time.Millisecond, "%s waiting for the database", g.addr)
	}
	restore()
	for _, g := range gateways {
		require.NoError(t, g.cmd.Process.Signal(syscall.SIGTERM))
		require.NoError(t, g.cmd.Wait(), "%s stops cleanly, its writes flushed", g.addr)
	}

	db, err := pgx.Connect(ctx, dbURL)
	require.NoError(t, err)
	defer db.Close(ctx)
	invoice := fake.Invoice().Totals
	require.Equal(t, requests, invoice.Requests, "the vendor billed each request once")
	var spent, reserved decimal.Decimal
	require.NoError(t, db.QueryRow(ctx, `SELECT spent::text, reserved::text FROM budget_windows WHERE tenant = 'acme'`).Scan(&spent, &reserved))
	assert.Equal(t, invoice.Cost.String(), spent.String(), "the budget spent the invoice, once")
	assert.True(t, reserved.IsZero(), "%s still reserved", reserved)
	var rows int
	var total decimal.Decimal
	require.NoError(t, db.QueryRow(ctx, `SELECT count(*), coalesce(sum(cost), 0)::text FROM ledger_attempts WHERE outcome = 'ok'`).Scan(&rows, &total))
	assert.Equal(t, requests, rows, "each billed call in the ledger once")
	assert.Equal(t, invoice.Cost.String(), total.String(), "at the invoice")
	var unfinished int
	require.NoError(t, db.QueryRow(ctx, `SELECT count(*) FROM ledger_attempts WHERE outcome <> 'ok'`).Scan(&unfinished))
	assert.Zero(t, unfinished, "no attempt left unfinished")
	var done int
	require.NoError(t, db.QueryRow(ctx, `SELECT count(*) FROM idempotency_keys WHERE tenant = 'acme' AND state = 'done'`).Scan(&done))
	assert.Equal(t, requests, done, "every key done")
	assert.Equal(t, int32(requests), calls.Load())
}

// TestTwoGatewaysSurviveAKillBetweenAnswerAndCompletion: two `brownout
// serve` processes on one Postgres, and gateway A killed with SIGKILL after
// its client has the answer but before the key's completion and the
// budget's settlement, written behind, have landed. The test holds A's
// write-behind round trip on a lock (its first statement inserts into
// write_behind_batches, which the test has locked), kills A, and Postgres,
// finding A's connection gone (client_connection_check_interval), rolls the
// round trip back: nothing A would have written after the answer is
// written. Then, as the design says: the key stays claimed by a
// dead process until its lease runs out, and a duplicate sent to B waits
// on it, takes it over and runs the request again (the vendor bills twice,
// and the ledger has both calls at the invoice); A's reservation stays
// held until its window closes, B's is settled at its call's invoice line,
// and the budget is never overshot. (Seen red with a claim that never
// takes over a lease run out: B's duplicate waited until its client gave
// up.)
func TestTwoGatewaysSurviveAKillBetweenAnswerAndCompletion(t *testing.T) {
	fake := fakeprovider.NewServer(fakeprovider.Config{Vendor: fakeprovider.OpenAI, Seed: 1,
		Models: map[string]fakeprovider.Model{"gpt-4o-mini": {Answers: []fakeprovider.Answer{{Text: "Paris"}}}}})
	defer fake.Close()
	ctx := context.Background()
	var db *pgx.Conn
	var name string
	a, b, dbURL := killPair(t, fake.URL, func(dbURL string) {
		var err error
		db, err = pgx.Connect(ctx, dbURL)
		require.NoError(t, err)
		t.Cleanup(func() { db.Close(ctx) })
		require.NoError(t, db.QueryRow(ctx, `SELECT current_database()`).Scan(&name))
		// As a production server may be set: a query whose client is gone
		// is stopped within 50ms, not left to finish.
		_, err = db.Exec(ctx, `ALTER DATABASE `+pgx.Identifier{name}.Sanitize()+` SET client_connection_check_interval = '50ms'`)
		require.NoError(t, err)
	})
	post := func(base string) (int, http.Header, []byte) {
		t.Helper()
		status, h, answer, err := postOrder(base)
		require.NoError(t, err)
		return status, h, answer
	}
	count := func(sql string, args ...any) (n int) {
		t.Helper()
		require.NoError(t, db.QueryRow(ctx, sql, args...).Scan(&n))
		return n
	}
	const lockWaiters = `SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND wait_event_type = 'Lock'`

	locker, err := pgx.Connect(ctx, dbURL) // its own connection: the checks below see other transactions
	require.NoError(t, err)
	defer locker.Close(ctx)
	hold, err := locker.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = hold.Rollback(ctx) }()
	_, err = hold.Exec(ctx, `LOCK TABLE write_behind_batches IN EXCLUSIVE MODE`)
	require.NoError(t, err)

	status, _, answer := post(a.addr)
	require.Equal(t, 200, status, "A answers before its writes land: %s", answer)
	// A's writes after the answer are on their way and held; its attempt's
	// row, written by the ledger's own writer, is in.
	require.Eventually(t, func() bool {
		return count(lockWaiters, name) == 1 && count(`SELECT count(*) FROM ledger_attempts WHERE outcome = 'ok'`) == 1
	}, 30*time.Second, 10*time.Millisecond, "A's completion waiting on the lock, its attempt in the ledger")
	require.NoError(t, a.cmd.Process.Signal(syscall.SIGKILL))
	_ = a.cmd.Wait()
	require.Eventually(t, func() bool { return count(lockWaiters, name) == 0 }, 30*time.Second, 10*time.Millisecond,
		"Postgres stops the round trip of a client gone")
	require.NoError(t, hold.Rollback(ctx))

	var state string
	var spent, heldByA decimal.Decimal
	require.NoError(t, db.QueryRow(ctx, `SELECT state FROM idempotency_keys WHERE tenant = 'acme' AND key = 'order-1'`).Scan(&state))
	assert.Equal(t, "in_flight", state, "A's claim, its completion lost with it")
	require.NoError(t, db.QueryRow(ctx, `SELECT spent::text, reserved::text FROM budget_windows WHERE tenant = 'acme'`).Scan(&spent, &heldByA))
	assert.True(t, spent.IsZero(), "A's settlement lost with it: %s spent", spent)
	// A's reservation by hand: 40 characters + 8 as input tokens at $0.15/M,
	// 16 output tokens at $0.60/M.
	assert.Equal(t, "0.0000168", heldByA.String(), "A's reservation, held")

	status, h, again := post(b.addr)
	require.Equal(t, 200, status, "%s", again)
	assert.Empty(t, h.Get("Idempotent-Replayed"), "B ran the request again once A's lease ran out")
	status, h, replayed := post(b.addr)
	assert.Equal(t, 200, status)
	assert.Equal(t, "true", h.Get("Idempotent-Replayed"))
	assert.Equal(t, string(again), string(replayed))

	require.NoError(t, b.cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, b.cmd.Wait(), "B stops cleanly, its writes flushed")
	invoice := fake.Invoice()
	require.Len(t, invoice.Lines, 2, "the vendor billed A's call and B's")
	require.NoError(t, db.QueryRow(ctx, `SELECT state FROM idempotency_keys WHERE tenant = 'acme' AND key = 'order-1'`).Scan(&state))
	assert.Equal(t, "done", state)
	var reserved decimal.Decimal
	require.NoError(t, db.QueryRow(ctx, `SELECT spent::text, reserved::text FROM budget_windows WHERE tenant = 'acme'`).Scan(&spent, &reserved))
	assert.Equal(t, heldByA.String(), reserved.String(), "A's reservation held until its window closes, B's settled")
	assert.Equal(t, invoice.Lines[1].Cost.String(), spent.String(), "B's spend is its call's invoice line")
	assert.True(t, spent.Add(reserved).LessThanOrEqual(decimal.RequireFromString("0.05")))
	var rows int
	var total decimal.Decimal
	require.NoError(t, db.QueryRow(ctx, `SELECT count(*), sum(cost)::text FROM ledger_attempts WHERE outcome = 'ok'`).Scan(&rows, &total))
	assert.Equal(t, 2, rows, "both billed calls in the ledger")
	assert.Equal(t, invoice.Totals.Cost.String(), total.String(), "at the invoice")
	assert.Zero(t, count(`SELECT count(*) FROM ledger_attempts WHERE outcome <> 'ok'`), "no attempt left unfinished")
}
