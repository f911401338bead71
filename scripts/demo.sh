#!/usr/bin/env bash
# demo.sh is `make demo`: brownout's main job on the embedded default (the
# in-memory ledger and fake vendors, no Docker). It replays two library
# scenarios in virtual time (thinking-tax, gemini-outage), asserting their
# expectations, and prints their reports,
# runs a cost regression check before a switch of models, and finally
# calls `brownout serve` in front of `brownout fake` over HTTP.
set -euo pipefail
cd "$(dirname "$0")/.."

# The HTTP part is shown with curl, jq and bc. Debian's packages, installed
# when missing (as root, with apt-get), as make test installs what it needs.
missing=()
for tool in curl jq bc; do command -v "$tool" >/dev/null 2>&1 || missing+=("$tool"); done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "demo: needs ${missing[*]}; install them (Debian: apt-get install ${missing[*]})" >&2
    exit 1
  fi
  echo "demo: installing Debian's ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

go build -o "$work/brownout" ./cmd/brownout
section() { printf '\n=== %s\n\n' "$*"; }

# A replay runs in virtual time: its verdict does not depend on how busy
# the machine is, so a failed expectation fails the demo.
section "brownout replay thinking-tax   (10 minutes of traffic, in virtual time)"
"$work/brownout" replay thinking-tax

# The HTML reports (charts, self-contained) go to reports/, which git ignores.
mkdir -p reports
section "brownout replay gemini-outage   (20 minutes, in virtual time)"
"$work/brownout" replay gemini-outage --html reports/gemini-outage.html

section "brownout cost compare: switch claude-haiku-4-5 for gemini-2.5-flash, at most 2x the cost?"
status=0
"$work/brownout" cost compare --suite evals/suites/capitals.yaml \
  --baseline anthropic/claude-haiku-4-5 --candidate gemini/gemini-2.5-flash --max-cost-ratio 2 \
  --html reports/cost-compare.html || status=$?
echo "(exit status $status: 1 is the check failing, as it should: the thinking tax is over 2x)"
[ "$status" -eq 1 ]
echo "The charts of both: reports/gemini-outage.html and reports/cost-compare.html (open them in a browser)."

section "brownout serve in front of brownout fake, over HTTP"

# started waits for a server's first stdout line, its addresses; a server
# that exits first fails the demo with its stderr.
started() {
  local name=$1 pid=$2
  until [ -s "$work/$name.out" ]; do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "demo: brownout $name exited before it was ready:" >&2
      cat "$work/$name.err" >&2
      exit 1
    fi
    sleep 0.1
  done
}

"$work/brownout" fake --config examples/fakes.yaml >"$work/fake.out" 2>"$work/fake.err" &
pids+=($!)
started fake $!
anthropic=$(head -1 "$work/fake.out" | jq -r .providers.anthropic)
gemini=$(head -1 "$work/fake.out" | jq -r .providers.gemini)
sed -e "s|@ANTHROPIC_URL@|$anthropic|" -e "s|@GEMINI_URL@|$gemini|" examples/serve.yaml.tmpl >"$work/serve.yaml"

export DEMO_PROVIDER_KEY=demo-provider-key DEMO_TENANT_KEY=demo-tenant-key
"$work/brownout" serve --config "$work/serve.yaml" >"$work/serve.out" 2>"$work/serve.err" &
pids+=($!)
started serve $!
gw=$(head -1 "$work/serve.out" | jq -r .addr)
metrics=$(head -1 "$work/serve.out" | jq -r .metrics)
echo "brownout serve at $gw, in front of fake Anthropic ($anthropic) and Gemini ($gemini)"
echo

ask() {
  if ! curl -sS --fail-with-body -D "$work/headers" -H "Authorization: Bearer $DEMO_TENANT_KEY" -H "Content-Type: application/json" \
    -d "{\"model\":\"$1\",\"messages\":[{\"role\":\"user\",\"content\":\"What is the capital of France? One word.\"}]}" \
    "$gw/v1/chat/completions" >"$work/body"; then
    echo "demo: route $1: $(head -1 "$work/headers" | tr -d '\r'):" >&2
    cat "$work/body" >&2
    echo >&2
    exit 1
  fi
  cost=$(grep -i '^x-brownout-cost-usd:' "$work/headers" | tr -d '\r' | awk '{print $2}')
  jq -r --arg route "$1" --arg cost "$cost" \
    '"\($route)\t\(.model)\tanswer=\(.choices[0].message.content)\tprompt=\(.usage.prompt_tokens)\tcompletion=\(.usage.completion_tokens)\treasoning=\(.usage.completion_tokens_details.reasoning_tokens)\tcost=$\($cost)"' "$work/body"
  echo "$cost" >>"$work/costs.$1"
}
printf 'route\tmodel\t\t\tanswer\t\tprompt\tcompletion\treasoning\tcost\n'
for i in 1 2 3; do ask haiku; ask flash; done
echo
sum() { paste -sd+ "$1" | bc -l | sed 's/^\./0./'; }
haiku=$(sum "$work/costs.haiku")
flash=$(sum "$work/costs.flash")
echo "3 requests each: haiku \$$haiku, flash \$$flash; flash costs $(echo "scale=2; $flash / $haiku" | bc -l)x haiku per request,"
echo "although its price per token is lower: its reasoning tokens bill as output."
echo
echo "Metered attempts (from $metrics, the metrics' own listener):"
curl -sS "$metrics" | grep -E '^brownout_(attempts_total|tokens_total)' | sed 's/^/  /'
