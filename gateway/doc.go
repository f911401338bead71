// Package gateway is brownout's request path: it routes a client's request
// to a provider and model, calls the vendor through its adapter, prices the
// attempt exactly and meters it in the ledger. It is safe for concurrent use.
//
// A request goes through these layers, outer to inner, each in the file
// named beside it:
//
//	Handler                    handler.go     HTTP: tenant key, body, OpenAI wire format (openaiwire.go)
//	  hold                     budget.go      route check, the worst case of the first attempt on the budget
//	  Idempotency-Key          idempotency_handler.go  replay, wait for the first, or 422 (stores: idempotency*.go);
//	                                          in Postgres the claim takes the reservation in the same statement
//	  take                     budget.go      the reservation, where the claim did not take it (budget_postgres.go);
//	                                          a sliced tenant's, in memory on a slice of its budget (budget_slices.go)
//	    complete / stream      gateway.go, stream.go (Complete and Stream: hold, take, then these)
//	      run                  retry.go       one loop: targets in order (failover), attempts on each (retry),
//	                                          timeouts (first token, idle, whole call), context-length fallbacks
//	        cool-down          retry.go       a target that answered 429 is skipped until its Retry-After
//	        breaker Allow      breaker.go     one gobreaker two-step breaker per provider (or provider+model)
//	          open             meter.go       with a database, the attempt's row before the call
//	                                          (unfinished, the prompt's estimate: what a crash leaves)
//	          adapter call     providers/     the vendor's wire format
//	        meter              meter.go       every attempt and every rejection: one ledger row
//	    Stream.Next            stream.go      idle timeout; a stream that dies mid-way continues on a
//	                                          target that continues a prefill (Anthropic)
//	    settle                 budget.go      the reservation becomes the actual cost; the handler
//	                                          settles after the answer is flushed to the client
//	  complete the key         idempotency_handler.go  after the answer is flushed to the client
//
// With keys and budgets in Postgres a request waits for one round trip
// before the upstream call and none after it: the settlement and the key's
// completion are written behind, in batches, one commit per batch
// (writebehind.go); a batch whose answer is lost is resolved (a row of its
// own, fenced by the writer) and sent again only if it did not commit, so
// no settlement is counted twice, and a database out of reach is waited
// for, however long, not given up on. The pool they share holds its every connection open
// from the start (pool.go), so no request waits for a new one, and a request
// waits at most DefaultConnectionWait for a busy one before it is refused,
// having sent nothing (a 503).
//
// Idempotency is HTTP middleware, not a wrapper of Complete: it needs the
// response bytes the client saw. Failover, retry and the breaker are one
// loop, not three nested policies: a target is tried while its errors are
// transient (llm.Class.Retryable), the loop moves on when the class allows
// failover (llm.Class.FailOver), and the breaker counts what the error
// table says it counts (llm.Class.BreakerFailure). Attempts are numbered
// across targets; each becomes one ledger.Attempt keyed by (request id,
// attempt), handed to a Recorder (the ledger's asynchronous Writer), so the
// request path never waits for the database; with a spool directory it
// waits for the local disk only when attempts arrive faster than the
// writer's group commit writes them. A row says how its usage is known
// (ledger.UsageSource): an attempt the vendor may have billed whose usage
// never came back is estimated, never zero; one the ledger refuses is a
// dead letter and a metric, never only a log line.
package gateway
