// Package fakeprovider serves programmable fakes of the Anthropic Messages,
// Gemini generateContent and OpenAI Chat Completions APIs, close enough to
// the real wire formats that each vendor's official Go SDK accepts them
// (the package's tests use the SDKs as clients), streaming and errors
// included.
//
// A Server is shaped like httptest.Server: NewServer starts one on a
// loopback port; NewUnstartedServer returns one that already serves an
// in-memory transport (Transport, Client), which runs inside
// testing/synctest so that minutes of configured latency pass in virtual
// time. Close waits for in-flight requests.
//
// Behaviour is data (Config, Model): per model a weighted set of answers,
// reasoning tokens, cached tokens, time to first token and time per token,
// each a Dist. Faults are data too (Fault): a kind, a probability, a time
// window on the fake's clock, a model filter and a count; one file per kind
// (fault_*.go). Faults change at run time through SetFaults or the control
// API under /_fake/ (see Server.ServeHTTP).
//
// Every random choice (the answer, token counts, latencies, the fault dice)
// comes from a PCG stream keyed by the config's seed and the request's
// sequence number, so the same seed and the same order of requests give
// byte-identical responses. Response timestamps come from the fake's clock
// (Config.Epoch plus time since start), not the wall clock.
//
// Each fake keeps an Invoice of what its vendor would bill, by the vendor's
// rules: errors bill nothing; a generation bills its input and every
// reasoning and output token generated, also when the client left or the
// stream was cut. Token counts follow each vendor's usage conventions:
//
//   - Anthropic: output_tokens includes the thinking tokens;
//     output_tokens_details.thinking_tokens says how many;
//     input_tokens excludes cache reads.
//   - Gemini: candidatesTokenCount excludes thoughtsTokenCount;
//     totalTokenCount = prompt + candidates + thoughts.
//   - OpenAI: completion_tokens includes
//     completion_tokens_details.reasoning_tokens.
//
// A line's cost is what the vendor charges for those usage fields at the
// fake's own price list (ListPrices, typed from the vendors' pricing pages,
// or a Model's Price), with its own arithmetic: the fakes never import the
// gateway's price table or its normalised usage, so a ledger that equals
// their invoices is checked against numbers the gateway did not compute.
// A model priced by neither is billed as Unpriced, at zero.
//
// Input tokens are approximated as one per 4 characters of text, rounded up.
package fakeprovider
