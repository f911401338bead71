# chromium.sh is sourced by scripts/test.sh: it makes a headless browser
# available to the HTML report tests (internal/browsertest).
#
#   chromium_up   finds Chromium ($BROWNOUT_CHROMIUM, or chromium on the
#                 PATH), installing Debian's chromium when it is missing
#                 (root, apt-get); sets BROWNOUT_CHROMIUM to its path

chromium_up() {
  local path=${BROWNOUT_CHROMIUM:-}
  if [ -z "$path" ]; then
    path=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
  fi
  if [ -z "$path" ]; then
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
      echo "chromium: not installed; install Chromium, or set BROWNOUT_CHROMIUM to a Chromium or Chrome binary" >&2
      return 1
    fi
    echo "chromium: installing Debian's chromium"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-liberation >/dev/null
    path=$(command -v chromium)
  fi
  echo "chromium: $("$path" --version 2>/dev/null || echo "$path")"
  export BROWNOUT_CHROMIUM=$path
}
