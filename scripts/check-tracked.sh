#!/usr/bin/env bash
# check-tracked.sh fails when git tracks a binary file, or a file over 1 MB,
# that is not on the allow-list below: build outputs never enter git.
#
#   scripts/check-tracked.sh
set -euo pipefail
cd "$(dirname "$0")/.."

max_bytes=$((1024 * 1024))
# Paths (exact) that may be binary or large, each with the reason.
allow=(
  docs/replay-gemini-outage.png # the README's picture of an HTML report, made by `make screenshots`
  docs/cost-compare.png         # the same, of a cost comparison
)

allowed() {
  local p
  for p in "${allow[@]+"${allow[@]}"}"; do
    [ "$p" = "$1" ] && return 0
  done
  return 1
}

bad=0
# Binary: git's own test (numstat prints "-" for files it will not diff as text),
# on the index, so a file staged but not committed counts too.
empty_tree=$(git hash-object -t tree /dev/null)
while IFS=$'\t' read -r added _ path; do
  if [ "$added" = "-" ] && ! allowed "$path"; then
    echo "check-tracked: $path is a binary file; build outputs never enter git (git rm --cached it, or allow it in $0 with a reason)" >&2
    bad=1
  fi
done < <(git diff --cached --numstat "$empty_tree")

# Size: the blob git stores for each tracked path, asked of git in one batch.
while read -r size path; do
  if [ "$size" -gt "$max_bytes" ] && ! allowed "$path"; then
    echo "check-tracked: $path is $size bytes, over the $max_bytes-byte limit (git rm --cached it, or allow it in $0 with a reason)" >&2
    bad=1
  fi
done < <(paste -d ' ' \
  <(git ls-files -s -z | tr '\0' '\n' | cut -d ' ' -f 2 | git cat-file --batch-check='%(objectsize)') \
  <(git ls-files -z | tr '\0' '\n'))

exit "$bad"
