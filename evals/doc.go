// Package evals judges model outputs by their distribution, not by exact
// strings, and checks the cost of switching models before it is done.
//
// A Suite (YAML, see suite.go) is a set of Cases, each messages plus
// weighted Scorers (equals, contains, regex, JSON and JSON Schema, edit
// distance, numeric tolerance, custom Go funcs) and a pass threshold. Run
// samples every case N times through a Target (a Gateway in process, or a
// running `brownout serve` over HTTP) and computes Stats: pass rate with a
// Wilson interval, mean score and cost per request with seeded bootstrap
// intervals, cost and latency quantiles, reasoning-token share and
// histograms. Costs stay exact decimals throughout.
//
// Compare puts a candidate model against a baseline (pass-rate difference
// and cost ratio, bootstrapped within each case), and RegressionCheck fails
// when the candidate is dearer than allowed beyond doubt, or not shown good
// enough: `brownout cost compare` exits 1 then. Without a gateway, NewFakes
// serves the shipped model Profiles on fake vendors with the default prices.
//
// In Go tests, RequirePassRate(t, result, 0.90, 0.95) asserts that with 95%
// confidence at least 90% of samples pass, and prints the distribution when
// they do not.
package evals
