# tree-key.sh is sourced by scripts that cache a verdict on the whole tree
# (scripts/mutants.sh, scripts/test.sh's demo step).
#
#   tree_key   prints a hash of what such a verdict depends on: the Go
#              toolchain, the environment the tests read, and every file
#              git does not ignore (tracked or not), by path and content

tree_key() {
  {
    go version
    env | grep -E '^(BROWNOUT_|TESTCONTAINERS_|GOFLAGS=|GOEXPERIMENT=|CGO_)' | grep -v '^BROWNOUT_FRESH=' | sort
    git ls-files -z --cached --others --exclude-standard | sort -z | xargs -0 -r sha256sum -- 2>/dev/null || true
  } | sha256sum | cut -c1-64
}
