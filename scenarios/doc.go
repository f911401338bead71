// Package scenarios replays provider outages as data: a fault timeline,
// traffic and expectations, run against the real gateway core and fake
// vendors, in virtual time under testing/synctest (an hour of traffic in
// seconds, the same report for the same seed).
//
// A scenario, annotated (the library in library/ has more):
//
//	name: gemini-outage
//	seed: 7                    # every random choice derives from it
//	duration: 20m              # of traffic
//	providers:                 # fake vendors by provider name (fakeprovider.Config)
//	  gemini:
//	    vendor: gemini
//	    models:
//	      gemini-2.5-flash:
//	        answers: [{text: "Paris", tokens: 1}]
//	        reasoning_tokens: {kind: normal, mean: 24, stddev: 3, min: 10}
//	        ttft_ms: {kind: lognormal, median: 250, sigma: 0.2}
//	  anthropic:
//	    vendor: anthropic
//	    models:
//	      claude-haiku-4-5: {answers: [{text: "Paris.", tokens: 4}]}
//	gateway:                   # as in `brownout serve`
//	  routes:
//	    chat: [gemini/gemini-2.5-flash, anthropic/claude-haiku-4-5]
//	  breaker: {consecutive_failures: 5, open_for: 10m, half_open_probes: 1}
//	  retry: {max_attempts: 2, base_backoff: 100ms, deadline: 30s}
//	  prices: {}               # extra models, on top of the shipped table
//	  budgets: {acme: {usd: "0.50", window: 1h}}
//	traffic:
//	  rate: 5                  # requests per second, open loop
//	  rate_curve: [{at: 10m, rate: 20}]
//	  concurrency: 64          # in flight; more is shed by the client
//	  route: chat              # or routes: [a, b], drawn uniformly
//	  prompts: ["What is the capital of France? One word."]
//	  tenants: [acme]
//	  stream_share: 0.2        # share of streamed requests
//	  duplicate_share: 0.05    # sent again with the same Idempotency-Key
//	faults:                    # the timeline: fakeprovider faults with at and for
//	  - {provider: gemini, kind: server_error, status: 503, at: 5m, for: 10m}
//	expect:
//	  breakers:                # states in order, with windows for transitions
//	    gemini: [closed, open in 5m..5m30s, half_open in 15m..15m30s, closed in 15m..16m]
//	  max_transitions: {gemini: 3}
//	  success_rate: 0.99
//	  latency_p99: 3s
//	  cost_max: "1.00"
//	  cost_per_request_max: "0.0001"
//	  reasoning_share_min: 0.5
//	  ledger_equals_invoices: true
//	  max_unmetered: "0"
//
// Run(t, sc) executes a scenario in a synctest bubble and fails t for each
// expectation that does not hold; Execute runs one on the caller's clock.
// The Report has the breaker timeline, per-minute attempt counts by
// provider and outcome, latency, cost by target, and the reconciliation of
// the ledger against the fakes' invoices; WriteText draws it for a
// terminal, WriteJSON writes its stable JSON form.
package scenarios
