#!/usr/bin/env bash
# mutants.sh is `make mutants`: it proves the tests catch the bugs real
# gateways shipped. Each patch in mutants/ is one such bug, applied to a
# copy of the files it touches and compiled in with `go test -overlay`, so
# the tree is never modified. The patch's header names the test that must
# fail:
#
#   # mirrors: <the real-world bug>
#   # killed by: go test <packages> -run <tests>
#
# A mutant is killed when that test fails; one that builds and passes has
# survived, and so has one that does not build (a broken mutant proves
# nothing). The run fails if any survived, and lists them. To add a mutant,
# or remake one the code has moved under: make the bug in a clean tree,
# `git diff > mutants/NN-name.patch`, put the two header lines on top, undo.
#
#   scripts/mutants.sh                 every mutant, with its named test
#   scripts/mutants.sh 05 12           mutants whose file name starts so
#   MUTANTS_FULL=1 scripts/mutants.sh  each against the whole `go test ./...`
#   MUTANTS_JOBS=1 scripts/mutants.sh  one at a time (default: one per core)
#   BROWNOUT_FRESH=1 scripts/mutants.sh  ignore the cache of verdicts
#
# Mutants run side by side, one per core: a run is mostly linking a -race
# test binary and then waiting on the test's own clock or on Postgres.
#
# A killed verdict is cached, as go test caches a passing package: under a
# key that hashes the Go toolchain, the patch, the command and the content
# of every file of the tree that git does not ignore (tracked or not), so
# a run on a tree with any change at all runs every mutant again. A
# survivor is never cached. A mutant whose test failed on its Postgres
# (pgtest: ...) is neither killed nor survived: the run fails, saying so.
# The cache lives in ${BROWNOUT_MUTANT_CACHE:-$(go env GOCACHE)/brownout-mutants}.
#
# Tests that need Postgres find it as `make test` leaves it (BROWNOUT_* and
# TESTCONTAINERS_* from the environment); `make mutants` provides it.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
start=$(date +%s)

patches=()
if [ $# -gt 0 ]; then
  for p in "$@"; do patches+=(mutants/"$p"*.patch); done
else
  patches=(mutants/*.patch)
fi
jobs=${MUTANTS_JOBS:-$(nproc)}
cache=${BROWNOUT_MUTANT_CACHE:-$(go env GOCACHE)/brownout-mutants}
mkdir -p "$cache"

# What a verdict depends on besides the patch (scripts/tree-key.sh).
source scripts/tree-key.sh
tree=$(tree_key)

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

# run_one writes the mutant's verdict line to $out/<name>.line and its
# state (killed, survived or broken) to $out/<name>.state.
run_one() {
  local patch=$1 name cmd key tmp files f t0 verdict state
  name=$(basename "$patch" .patch)
  cmd=$(sed -n 's/^# killed by: go test //p' "$patch")
  if [ -n "${MUTANTS_FULL:-}" ]; then
    cmd="./..."
  fi
  key=$( { echo "$tree"; echo "$cmd"; cat "$patch"; } | sha256sum | cut -c1-64)
  if [ -z "${BROWNOUT_FRESH:-}" ] && [ -f "$cache/$key" ]; then
    printf '%-44s %-28s %3ss  go test %s\n' "$name" "killed (cached)" 0 "$cmd" >"$out/$name.line"
    echo killed >"$out/$name.state"
    return
  fi
  tmp=$(mktemp -d)
  files=$(sed -n 's|^+++ b/||p' "$patch")
  for f in $files; do
    mkdir -p "$tmp/$(dirname "$f")"
    cp "$f" "$tmp/$f"
  done
  if ! git apply --unsafe-paths --directory="$tmp" "$patch" 2>"$tmp/apply.log"; then
    { echo "mutants: $name no longer applies (the code it mutates moved):"; sed 's/^/  /' "$tmp/apply.log"; } >"$out/$name.line"
    echo broken >"$out/$name.state"
    rm -rf "$tmp"
    return
  fi
  {
    printf '{"Replace":{'
    local sep=""
    for f in $files; do
      printf '%s"%s":"%s"' "$sep" "$root/$f" "$tmp/$f"
      sep=","
    done
    printf '}}\n'
  } >"$tmp/overlay.json"
  t0=$(date +%s)
  # -race shares the build cache of `make test`'s go test -race. TMPDIR is
  # the mutant's own, so its tests leave the package's temporary directory
  # (internal/testmain), which go test's cached results key on, as it was.
  if TMPDIR=$tmp eval go test -race -count=1 -overlay "$tmp/overlay.json" "$cmd" >"$tmp/test.log" 2>&1; then
    verdict="SURVIVED (its test passed)"
    state=survived
  elif grep -qE '^(FAIL.*\[build failed\]|# .*\[.*\.test\]$)|setup failed' "$tmp/test.log"; then
    verdict="SURVIVED (it does not build):"
    state=survived
  elif grep -q 'pgtest: ' "$tmp/test.log"; then
    # Its test failed on its Postgres, which says nothing of the bug.
    verdict="NOT RUN (no Postgres):"
    state=broken
  else
    verdict="killed"
    state=killed
    grep -E '^(--- FAIL|FAIL)' "$tmp/test.log" >"$cache/$key" || true
  fi
  {
    printf '%-44s %-28s %3ss  go test %s\n' "$name" "$verdict" "$(($(date +%s) - t0))" "$cmd"
    case $verdict in
    "SURVIVED (it does not build):") sed -n '1,15p' "$tmp/test.log" | sed 's/^/    /' ;;
    "NOT RUN (no Postgres):") grep -m 3 'pgtest: ' "$tmp/test.log" | sed 's/^ */    /' ;;
    esac
  } >"$out/$name.line"
  echo "$state" >"$out/$name.state"
  rm -rf "$tmp"
}

for patch in "${patches[@]}"; do
  if ! grep -q '^# killed by: go test ' "$patch"; then
    echo "mutants: $patch has no '# killed by: go test ...' line" >&2
    exit 2
  fi
done
for patch in "${patches[@]}"; do
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n || true; done
  run_one "$patch" &
done
wait

killed=0
survivors=()
unrun=()
for patch in "${patches[@]}"; do
  name=$(basename "$patch" .patch)
  cat "$out/$name.line" 2>/dev/null || echo "mutants: $name: its run ended without a verdict"
  case $(cat "$out/$name.state" 2>/dev/null || echo broken) in
  killed) killed=$((killed + 1)) ;;
  broken) unrun+=("$name") ;;
  *) survivors+=("$name") ;;
  esac
done

echo
echo "mutants: ${killed} of ${#patches[@]} killed in $(($(date +%s) - start))s ($jobs at a time)"
if [ ${#unrun[@]} -gt 0 ]; then
  echo "mutants: no verdict (the patch no longer applies, or the test could not run; see above): ${unrun[*]}" >&2
  exit 2
fi
if [ ${#survivors[@]} -gt 0 ]; then
  echo "mutants: survived (the tests do not catch these bugs): ${survivors[*]}" >&2
  exit 1
fi
