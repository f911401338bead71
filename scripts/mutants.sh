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

killed=0
survivors=()
for patch in "${patches[@]}"; do
  name=$(basename "$patch" .patch)
  cmd=$(sed -n 's/^# killed by: go test //p' "$patch")
  if [ -z "$cmd" ]; then
    echo "mutants: $patch has no '# killed by: go test ...' line" >&2
    exit 2
  fi
  if [ -n "${MUTANTS_FULL:-}" ]; then
    cmd="./..."
  fi
  tmp=$(mktemp -d)
  files=$(sed -n 's|^+++ b/||p' "$patch")
  for f in $files; do
    mkdir -p "$tmp/$(dirname "$f")"
    cp "$f" "$tmp/$f"
  done
  if ! git apply --unsafe-paths --directory="$tmp" "$patch" 2>"$tmp/apply.log"; then
    echo "mutants: $name no longer applies (the code it mutates moved):" >&2
    sed 's/^/  /' "$tmp/apply.log" >&2
    rm -rf "$tmp"
    exit 2
  fi
  {
    printf '{"Replace":{'
    sep=""
    for f in $files; do
      printf '%s"%s":"%s"' "$sep" "$root/$f" "$tmp/$f"
      sep=","
    done
    printf '}}\n'
  } >"$tmp/overlay.json"
  t0=$(date +%s)
  # -race shares the build cache of `make test`'s go test -race.
  if eval go test -race -count=1 -overlay "$tmp/overlay.json" "$cmd" >"$tmp/test.log" 2>&1; then
    verdict="SURVIVED (its test passed)"
    survivors+=("$name")
  elif grep -qE '^(FAIL.*\[build failed\]|# .*\[.*\.test\]$)|setup failed' "$tmp/test.log"; then
    verdict="SURVIVED (it does not build):"
    survivors+=("$name")
    sed -n '1,15p' "$tmp/test.log" | sed 's/^/    /'
  else
    verdict="killed"
    killed=$((killed + 1))
  fi
  printf '%-44s %-28s %3ss  go test %s\n' "$name" "$verdict" "$(($(date +%s) - t0))" "$cmd"
  rm -rf "$tmp"
done

echo
echo "mutants: ${killed} of ${#patches[@]} killed in $(($(date +%s) - start))s"
if [ ${#survivors[@]} -gt 0 ]; then
  echo "mutants: survived (the tests do not catch these bugs): ${survivors[*]}" >&2
  exit 1
fi
