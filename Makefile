# brownout: `make test` is the one test command (CI runs it and nothing else).
.PHONY: test bench mocks demo mutants screenshots

test:
	scripts/test.sh

# Benchmarks need Docker for Postgres, as tests do; see each package's bench_test.go.
bench:
	scripts/with-postgres.sh go test -run '^$$' -bench 'Writer|RawInsert' -benchtime 200000x ./gateway/ledger/
	go test -run '^$$' -bench RecordSpaced -benchtime 2000x ./gateway/ledger/
	go test -run '^$$' -bench Serve -benchtime 20000x ./fakeprovider/
	scripts/with-postgres.sh go test -run '^$$' -bench 'Overhead|SustainedDurable|SpacedInMemory' -benchtime 1x ./gateway/
	go test -run '^$$' -bench Samples -benchtime 20000x ./evals/

mocks:
	go tool mockery

# The bugs real gateways shipped, one patch each in mutants/: every one must
# make its named test fail. make test runs it too, after the tests.
mutants:
	scripts/with-postgres.sh scripts/mutants.sh

# The gateway in front of fake vendors, in-memory ledger: no Docker needed.
demo:
	scripts/demo.sh

# The README's pictures of the HTML reports (docs/*.png), taken by the
# browser test in headless Chromium from `brownout replay --html` and
# `brownout cost compare --html`.
screenshots:
	go test ./cmd/brownout/ -run '^TestHTMLReportsInChromium$$' -count=1 -args -screenshots "$(CURDIR)/docs"
