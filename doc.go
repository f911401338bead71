// Package brownout is an LLM gateway core and the chaos-and-cost test
// harness that proves it.
//
// A model API is a downstream like a payment processor: slow, sometimes
// down, it rate-limits its callers and bills per call. brownout's gateway
// makes calls to Anthropic, Gemini and OpenAI reliable (per-provider circuit
// breakers, retries that know a transient failure from a sustained one,
// failover), cheap (exact-decimal cost that counts reasoning tokens, budgets)
// and observable (every upstream attempt metered, idempotently, in Postgres).
// The harness runs that same gateway against programmable fake providers
// that misbehave on a seeded timeline, and asserts what happened: breaker
// transitions, a ledger whose reported spend matches invoices the fakes
// price from their own list to the last digit (with the spend the gateway
// had to estimate, where a vendor's usage never came back, shown apart),
// and eval score distributions instead of exact strings.
//
// # Packages
//
//   - gateway: the product. The request path, routing, the resilience
//     policies and the OpenAI-compatible HTTP front (`brownout serve`).
//   - gateway/gatewaytest: a gateway on fake vendors in one call, shaped
//     like net/http/httptest, for tests of your own.
//   - gateway/providers/{anthropic,gemini,openai}: wire adapters, one per
//     vendor, that normalise usage so reasoning tokens are counted once.
//   - gateway/pricing: the price table and exact-decimal cost per attempt.
//   - gateway/ledger: metering. An Attempt per upstream try, a Store
//     (Postgres or memory) with idempotent writes, and the asynchronous
//     Writer that batches, retries and spools in front of it.
//   - fakeprovider: fake vendors shaped like net/http/httptest, with faults
//     and invoices as data.
//   - scenarios: fault timelines, traffic and expectations as YAML, run in
//     virtual time; replay of incidents exported from the ledger.
//   - evals: scorers, sampling, distributions and cost regression checks.
//   - reconcile: the ledger against the vendors' own usage and cost
//     reports (OpenAI's and Anthropic's admin APIs, Gemini's Cloud
//     Billing export), per day and model.
//   - cmd/brownout: the CLI (serve, fake, replay, eval, cost compare,
//     ledger export and reconcile).
//   - internal/chart: the inline-SVG charts and the self-contained page of
//     the HTML reports; internal/browsertest loads them in headless
//     Chromium.
//   - internal/pgtest: a containerized Postgres for tests.
//   - internal/backoff, internal/sse, internal/strictyaml: the one jittered
//     backoff and sleep, the SSE reader and writer, the strict YAML decoder.
//   - internal/jsonscan: the scanner the request path and every adapter read
//     the bodies of a call with, no reflection, declining to encoding/json's
//     semantics what it does not take whole; internal/coldbench: timing code
//     with the caches emptied first, as a request a millisecond after the
//     last finds them.
//
// # From a request to a ledger row
//
// A client's request reaches gateway.Handler, which authenticates the
// tenant, applies the Idempotency-Key (replay, wait, or 422) and hands a
// canonical request to the gateway. The gateway reserves the request's
// worst case on the tenant's budget, then runs one loop over the route's
// targets: attempts on each while the error is transient (retry), the next
// target when it is not or the breaker is open (failover), every call
// through the provider's circuit breaker; then it settles the budget
// (gateway's package doc names the file of each layer).
//
// Every upstream attempt, successful or not, and every rejection (breaker
// open, budget exceeded) becomes a ledger.Attempt keyed by (request id,
// attempt number). The gateway hands it to ledger.Writer.Record, which only
// validates and enqueues: the request path never waits for the database. The
// writer's goroutine batches attempts by size or time and inserts each batch
// in one statement that keeps the first record of a key, so a retried
// batch, a replayed spool or a client retry with the same Idempotency-Key
// never counts twice; the one update it makes is an attempt's finished row
// replacing the unfinished one recorded before its call (with a database),
// which is what a gateway killed during the call leaves. When Postgres is unreachable the writer appends batches to an
// fsync'd, checksummed spool on local disk and replays it when Postgres is
// back; Close flushes everything. Costs are exact decimals from the price
// table to a NUMERIC(20,12) column: no float64 anywhere on the way.
package brownout
