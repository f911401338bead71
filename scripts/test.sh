#!/usr/bin/env bash
# test.sh is `make test`: static checks, then every test with -race against a
# real Postgres in a container. On a machine with no Docker daemon it starts
# one (installing Debian's docker.io if needed) and stops it on exit; with no
# registry it builds the Postgres image from Debian's packages.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
step() { printf '\n== %s (%ss)\n' "$*" "$(( $(date +%s) - start ))"; }

step "tracked files: no binaries, nothing over 1 MB (scripts/check-tracked.sh)"
scripts/check-tracked.sh

step "gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go') 2>&1 || true)
if [ -n "$unformatted" ]; then
  echo "gofmt would change these files (run gofmt -w):" >&2
  echo "$unformatted" >&2
  exit 1
fi

step "go vet"
go vet ./...

step "mocks are fresh (go tool mockery)"
tree_state() { { git status --porcelain; git diff; } | sha256sum; }
before=$(tree_state)
go tool mockery --log-level=error
if [ "$(tree_state)" != "$before" ]; then
  echo "go tool mockery changed the generated mocks; they were stale. Commit the regenerated files:" >&2
  git status --porcelain >&2
  exit 1
fi

step "go test -race -shuffle=on ./... (with Postgres: scripts/with-postgres.sh)"
scripts/with-postgres.sh go test -race -shuffle=on -timeout 30m ./...
step "done"
