#!/usr/bin/env bash
# test.sh is `make test`: static checks, then every test with -race against a
# real Postgres in a container. On a machine with no Docker daemon it starts
# one (installing Debian's docker.io if needed) and stops it on exit; with no
# registry it builds the Postgres image from Debian's packages.
#
# Where the time goes on a cold 2-core machine, and what this script does
# about it (the closing note of the issue that made it so has the figures):
#   - Docker's install and the image's build wait mostly on the network and
#     the disk, the compiler on the CPU: they run in the background while the
#     static checks compile, and the tests wait for them only at the end.
#   - go vet and go test -race share one build of every package: vet runs
#     with -race, so the test build finds each dependency in the cache
#     instead of compiling it a second time with the race detector.
#   - What stays on a cold machine: about 430 CPU-seconds to compile the
#     dependencies with -race (the OpenAI and Anthropic SDKs, used by the
#     SDK conformance tests, are half of it), the Docker preparation's own
#     CPU (debootstrap, the image import), and about 200 s of -race tests.
#   - The mutants run one per core (scripts/mutants.sh), after the tests.
#     Beside them at nice 19 was measured and not kept: shorter with the
#     build cache warm (536 to 440 s) but longer cold (880 to 1031 s), as
#     both then compile the same test packages at once.
#
# A second run on the same machine redoes only what changed: go vet's and
# go test's own caches keep each package's result under a hash of
# everything it was built and run from (its code and its dependencies',
# the flags, the environment variables and files the tests read), so a
# package nothing touched prints "(cached)" instead of running again, and
# scripts/mutants.sh keeps each killed mutant's verdict under a hash of the
# whole tree. Every check still ran, on exactly this code, in the run that
# cached it. Shuffling is on in every test binary (internal/testmain)
# rather than on go test's command line, where -shuffle would turn its
# cache off. BROWNOUT_FRESH=1 make test runs everything again.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
step() { printf '\n== %s (%ss)\n' "$*" "$(( $(date +%s) - start ))"; }

step "tracked files: no binaries, nothing over 1 MB (scripts/check-tracked.sh)"
scripts/check-tracked.sh

step "every package with tests shuffles them (internal/testmain)"
unshuffled=$(go list -f '{{if or .TestGoFiles .XTestGoFiles}}{{.Dir}}{{end}}' ./... | while read -r dir; do
  grep -qE '(testmain\.Run|pgtest\.Main)\(m\)' "$dir"/*_test.go || echo "  ${dir#"$PWD"/}"
done)
if [ -n "$unshuffled" ]; then
  echo "these packages have tests but no TestMain calling testmain.Run(m) or pgtest.Main(m), so their tests run in one fixed order:" >&2
  echo "$unshuffled" >&2
  exit 1
fi

step "gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go') 2>&1 || true)
if [ -n "$unformatted" ]; then
  echo "gofmt would change these files (run gofmt -w):" >&2
  echo "$unformatted" >&2
  exit 1
fi

# Chromium, Docker and the Postgres image, in the background
# (scripts/chromium.sh, scripts/docker.sh): one after the other, since
# each may need apt-get, which takes a lock.
source scripts/chromium.sh
source scripts/docker.sh
export TESTCONTAINERS_RYUK_DISABLED=${TESTCONTAINERS_RYUK_DISABLED:-true}
export TESTCONTAINERS_HOST_OVERRIDE=${TESTCONTAINERS_HOST_OVERRIDE:-127.0.0.1}
prep_dir=$(mktemp -d)
step "Chromium, Docker and the Postgres image: preparing in the background (log: $prep_dir/log)"
(
  chromium_up || exit 1
  printf 'BROWNOUT_CHROMIUM=%q\n' "$BROWNOUT_CHROMIUM" >"$prep_dir/state"
  [ -z "${BROWNOUT_TEST_DATABASE_URL:-}" ] || exit 0
  # The daemon's pid is written as soon as it is up, so it is stopped
  # even when the image then fails.
  docker_up || exit 1
  printf 'BROWNOUT_DOCKERD_PID=%q\n' "$BROWNOUT_DOCKERD_PID" >>"$prep_dir/state"
  # The daemon's address, named: without DOCKER_HOST, testcontainers finds
  # the socket by its stat, which go test's cache then keys on, and a
  # socket a new dockerd made is a new file.
  [ -n "${DOCKER_HOST:-}" ] || printf 'DOCKER_HOST=%q\n' "$(docker context inspect -f '{{.Endpoints.docker.Host}}')" >>"$prep_dir/state"
  postgres_image_up || exit 1
  printf 'BROWNOUT_POSTGRES_IMAGE=%q\n' "$BROWNOUT_POSTGRES_IMAGE" >>"$prep_dir/state"
) >"$prep_dir/log" 2>&1 &
prep_pid=$!
# On any exit: let the preparation finish (an apt-get cut short leaves
# dpkg locked), then stop the daemon it started, if it started one.
stop_prepared() {
  wait "$prep_pid" 2>/dev/null || true
  BROWNOUT_DOCKERD_PID=""
  if [ -f "$prep_dir/state" ]; then
    source "$prep_dir/state"
    docker_down
  fi
  rm -rf "$prep_dir"
}
trap stop_prepared EXIT

step "go vet -race (the build go test -race reuses)"
go vet -race ./...

step "mocks are fresh (go tool mockery)"
tree_state() { { git status --porcelain; git diff; } | sha256sum; }
before=$(tree_state)
go tool mockery --log-level=error
if [ "$(tree_state)" != "$before" ]; then
  echo "go tool mockery changed the generated mocks; they were stale. Commit the regenerated files:" >&2
  git status --porcelain >&2
  exit 1
fi

step "waiting for Chromium, Docker and the Postgres image"
status=0
wait "$prep_pid" || status=$?
sed 's/^/  /' "$prep_dir/log"
source "$prep_dir/state" 2>/dev/null || true
if [ "$status" != 0 ] || [ -z "${BROWNOUT_CHROMIUM:-}" ] ||
  { [ -z "${BROWNOUT_TEST_DATABASE_URL:-}" ] && [ -z "${BROWNOUT_POSTGRES_IMAGE:-}" ]; }; then
  echo "Chromium, Docker or the Postgres image could not be made ready (exit $status); see above" >&2
  exit 1
fi
export BROWNOUT_CHROMIUM
[ -z "${BROWNOUT_POSTGRES_IMAGE:-}" ] || export BROWNOUT_POSTGRES_IMAGE
[ -z "${DOCKER_HOST:-}" ] || export DOCKER_HOST

fresh=()
[ -z "${BROWNOUT_FRESH:-}" ] || fresh=(-count=1)
step "go test -race ${fresh[*]+"${fresh[*]} "}./..., shuffled (Postgres: $([ -n "${BROWNOUT_TEST_DATABASE_URL:-}" ] && echo BROWNOUT_TEST_DATABASE_URL || echo "a container of $BROWNOUT_POSTGRES_IMAGE"))"
go test -race ${fresh[@]+"${fresh[@]}"} -timeout 30m ./...

# make demo, the README's first command, runs too: nothing else checks it.
# Its binary is built with -race, from the packages go vet -race compiled
# (a build without would compile them all again, cold: 75 s here). A pass
# is cached under the tree's hash (scripts/tree-key.sh), as a killed
# mutant is, so an unchanged tree does not run it again.
step "make demo: the README's first command (scripts/demo.sh, built with -race)"
source scripts/tree-key.sh
demo_cache=${BROWNOUT_MUTANT_CACHE:-$(go env GOCACHE)/brownout-mutants}/demo-$(tree_key)
if [ -z "${BROWNOUT_FRESH:-}" ] && [ -f "$demo_cache" ]; then
  echo "demo: passed (cached)"
else
  demo_log=$(mktemp)
  demo_start=$(date +%s)
  if ! GOFLAGS=-race scripts/demo.sh >"$demo_log" 2>&1; then
    echo "make demo failed; its output:" >&2
    cat "$demo_log" >&2
    rm -f "$demo_log"
    exit 1
  fi
  rm -f "$demo_log"
  mkdir -p "$(dirname "$demo_cache")"
  touch "$demo_cache"
  echo "demo: passed in $(( $(date +%s) - demo_start ))s"
fi

step "mutants: every bug in mutants/ is caught (scripts/mutants.sh)"
scripts/mutants.sh
step "done"
