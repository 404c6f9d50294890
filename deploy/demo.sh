#!/usr/bin/env bash
# make demo: the demo garage run by a real gatehouse-edge, its devices played by
# gatehouse-sim over Modbus TCP, serial lines on pseudo-terminals, MQTT (the edge's own
# listener) and Hikvision/Axis camera pushes, until Ctrl-C. DEMO_SECONDS=N stops it
# by itself after N seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
data=${DEMO_DATA:-$(mktemp -d -t gatehouse-demo.XXXXXX)}
port=${DEMO_PORT:-8080}
mqtt=${DEMO_MQTT_PORT:-18830}
simport=${DEMO_SIM_PORT:-8090}
token=${DEMO_TOKEN:-demo-operator-token-0001}
export GATEHOUSE_SIM_MODBUS=${GATEHOUSE_SIM_MODBUS:-127.0.0.1:15020}
export GATEHOUSE_SIM_DIR=${GATEHOUSE_SIM_DIR:-$data/tty}
mkdir -p "$GATEHOUSE_SIM_DIR"
config=deploy/garage-sim.yaml

bin/gatehouse-edge check-config "$config"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -INT "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

bin/gatehouse-edge run --config "$config" --data "$data/edge" --listen "127.0.0.1:$port" \
  --operator-tokens "demo:$token" --mqtt-port "$mqtt" >"$data/edge.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
bin/gatehouse-sim --config "$config" --edge "http://127.0.0.1:$port" --kiosk-token "$token" \
  --mqtt "tcp://127.0.0.1:$mqtt" --listen "127.0.0.1:$simport" --rate 25 --speedup 30 --dwell 2h \
  --wait-healthy 60s --fault-every 90s --fault-for 15s >"$data/sim.log" 2>&1 &
pids+=($!)

cat <<MSG

Gatehouse demo: garage 'demo-garage' (2 levels, 400 spaces, 4 lanes), devices simulated
over Modbus TCP, serial, MQTT and camera pushes; cars arrive every few seconds, stays
last minutes (time runs 30x), a random device fault every 90 s.
  occupancy      http://127.0.0.1:$port/v1/occupancy
  lanes          http://127.0.0.1:$port/v1/lanes
  devices        http://127.0.0.1:$port/v1/devices
  open sessions  http://127.0.0.1:$port/v1/sessions?open=true
  events         http://127.0.0.1:$port/v1/events?after=0
  alerts         http://127.0.0.1:$port/v1/alerts
  kiosk pages    http://127.0.0.1:$port/kiosk/
  metrics        http://127.0.0.1:$port/metrics
  ground truth   http://127.0.0.1:$simport/truth   (the simulator's own count)
  operator token $token   (curl -H 'Authorization: Bearer $token' ...)
  logs           $data/edge.log  $data/sim.log
Ctrl-C stops it.

MSG
if [ -n "${DEMO_SECONDS:-}" ]; then
  sleep "$DEMO_SECONDS"
  echo "demo: occupancy after ${DEMO_SECONDS}s:"
  curl -fsS "http://127.0.0.1:$port/v1/occupancy"; echo
  echo "demo: ground truth:"
  curl -fsS "http://127.0.0.1:$simport/truth"; echo
  exit 0
fi
wait
