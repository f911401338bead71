# brownout: `make test` is the one test command (CI runs it and nothing else).
.PHONY: test bench mocks

test:
	scripts/test.sh

# Benchmarks need Docker for Postgres, as tests do; see each package's bench_test.go.
bench:
	scripts/with-postgres.sh go test -run '^$$' -bench . -benchtime 200000x ./gateway/ledger/

mocks:
	go tool mockery
