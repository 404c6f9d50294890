#!/usr/bin/env bash
# make demo: a garage running on its own, with simulated cars driving in-memory loops
# and barriers, until Ctrl-C. Set DEMO_SECONDS to stop by itself after that long.
set -euo pipefail
cd "$(dirname "$0")/.."
data=${DEMO_DATA:-$(mktemp -d -t gatehouse-demo.XXXXXX)}
port=${DEMO_PORT:-8080}
token=${DEMO_TOKEN:-demo-operator-token-0001}
rate=${DEMO_RATE:-20}

bin/gatehouse-edge check-config deploy/garage-example.yaml
echo
echo "Gatehouse demo: garage 'demo-garage' with simulated traffic ($rate arrivals/min per entry lane)"
echo "  local API      http://127.0.0.1:$port/v1/occupancy"
echo "  lanes          http://127.0.0.1:$port/v1/lanes"
echo "  open sessions  http://127.0.0.1:$port/v1/sessions?open=true"
echo "  events         http://127.0.0.1:$port/v1/events?after=0"
echo "  kiosk pages    http://127.0.0.1:$port/kiosk/"
echo "  metrics        http://127.0.0.1:$port/metrics"
echo "  operator token $token   (curl -H 'Authorization: Bearer $token' ...)"
echo "  data           $data"
echo "Ctrl-C stops it."
echo
args=(run --config deploy/garage-example.yaml --data "$data" --listen "127.0.0.1:$port"
      --operator-tokens "demo:$token" --traffic "$rate" --dwell 45s --travel 800ms)
if [ -n "${DEMO_SECONDS:-}" ]; then
  rc=0
  timeout --signal=INT "$DEMO_SECONDS" bin/gatehouse-edge "${args[@]}" || rc=$?
  [ "$rc" -eq 124 ] && rc=0 # stopped by the timer, as asked
  exit "$rc"
fi
exec bin/gatehouse-edge "${args[@]}"
