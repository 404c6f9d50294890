#!/usr/bin/env bash
# make demo: two simulated garages run by real gatehouse-edge processes, synced over
# NATS leaf nodes into one gatehouse-cloud (embedded NATS hub, throwaway PostgreSQL
# from the system's binaries). Each garage's devices are played by a gatehouse-sim over
# Modbus TCP, serial lines on pseudo-terminals, MQTT (the edge's own listener) and
# Hikvision/Axis camera pushes (with OpenCV, garage-b's Kerkweg exit is a plain IP
# camera whose snapshots its edge reads itself). Runs until Ctrl-C; DEMO_SECONDS=N
# stops it after N s and prints each garage's counts as the edge, the simulator and
# the cloud see them.
set -euo pipefail
cd "$(dirname "$0")/.."
data=${DEMO_DATA:-$(mktemp -d -t gatehouse-demo.XXXXXX)}
base=${DEMO_PORT:-8080}      # edge APIs on base, base+1; simulators on base+10, base+11
cloud=${DEMO_CLOUD_PORT:-8070}
token=${DEMO_TOKEN:-demo-operator-token-0001}
config=deploy/garage-sim.yaml
garages=(demo-garage garage-b)
# The throwaway PostgreSQL runs as the postgres user, which must reach its data dir.
chmod 711 "$data"

# The cloud needs PostgreSQL's binaries for its throwaway database.
if ! command -v initdb >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  echo "demo: installing Debian's postgresql package for the cloud's throwaway database"
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo
  $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq postgresql >/dev/null
fi

# With OpenCV, garage-b's Kerkweg exit camera is a plain IP camera whose snapshots
# (served by its simulator) the edge reads itself: an edge built with -tags gocv.
lpr_edge=""
if pkg-config --exists opencv4 2>/dev/null; then
  echo "demo: building gatehouse-edge with the plate reader (-tags gocv) for garage-b"
  if go build -tags gocv -o bin/gatehouse-edge-lpr ./cmd/gatehouse-edge; then
    lpr_edge=bin/gatehouse-edge-lpr
  else
    echo "demo: that build failed; garage-b's cameras push their reads like garage A's"
  fi
fi

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM
wait_http() { for _ in $(seq 300); do curl -fsS "$1" >/dev/null 2>&1 && return 0; sleep 0.1; done; echo "demo: $1 did not come up" >&2; return 1; }

bin/gatehouse-cloud run --data-dir "$data/cloud" --listen "127.0.0.1:$cloud" \
  --nats-listen 127.0.0.1:0 --leaf-listen "127.0.0.1:${DEMO_LEAF_PORT:-17422}" >"$data/cloud.log" 2>&1 &
pids+=($!)
wait_http "http://127.0.0.1:$cloud/healthz"
# The cloud made an admin account on its new database; log in as it (access tokens
# live 15 minutes: log in again for later calls).
admin_file=$data/cloud/initial-admin.json
admin_token() { curl -fsS -H 'Content-Type: application/json' --data @"$admin_file" "http://127.0.0.1:$cloud/v1/auth/login" | sed -n 's/.*"access_token":"\([^"]*\)".*/\1/p'; }
tok=$(admin_token)
# Both garages as public facilities, so that apps and open-data exports show them.
for g in "demo-garage:Demo Garage:48.137:11.575" "garage-b:Garage B:48.145:11.560"; do
  IFS=: read -r id name lat lon <<<"$g"
  curl -fsS -o /dev/null -H "Authorization: Bearer $tok" -H 'Content-Type: application/json' \
    --data "{\"id\":\"$id\",\"name\":\"$name\",\"city\":\"Munich\",\"country\":\"DE\",\"public\":true,\"location\":{\"lat\":$lat,\"lon\":$lon}}" \
    "http://127.0.0.1:$cloud/v1/facilities"
done

for i in 0 1; do
  id=${garages[$i]}
  dir=$data/$id
  mkdir -p "$dir/tty"
  creds=$(bin/gatehouse-cloud facility add --data-dir "$data/cloud" "$id" | sed -n 's/^credentials: //p')
  api=$((base + i)); sim=$((base + 10 + i))
  export GATEHOUSE_FACILITY=$id GATEHOUSE_SIM_MODBUS=127.0.0.1:$((15020 + i)) GATEHOUSE_SIM_DIR=$dir/tty \
    GATEHOUSE_SIM_ACQUIRER=http://127.0.0.1:$sim/acquirer GATEHOUSE_SIM_SNAPSHOTS=http://127.0.0.1:$sim/snapshot
  edge_bin=bin/gatehouse-edge GATEHOUSE_X2_CAMERA=http_push
  if [ "$i" = 1 ] && [ -n "$lpr_edge" ]; then edge_bin=$lpr_edge GATEHOUSE_X2_CAMERA=lpr; fi
  export GATEHOUSE_X2_CAMERA
  $edge_bin run --config "$config" --data "$dir/edge" --listen "127.0.0.1:$api" \
    --operator-tokens "demo:$token" --mqtt-port $((18830 + i)) --hub-credentials "$creds" >"$dir/edge.log" 2>&1 &
  pids+=($!)
  wait_http "http://127.0.0.1:$api/healthz"
  bin/gatehouse-sim --config "$config" --edge "http://127.0.0.1:$api" --kiosk-token "$token" \
    --mqtt "tcp://127.0.0.1:$((18830 + i))" --listen "127.0.0.1:$sim" --rate 25 --speedup 30 --dwell 2h \
    --wait-healthy 60s --fault-every 90s --fault-for 15s --seed $((i + 1)) >"$dir/sim.log" 2>&1 &
  pids+=($!)
done

cat <<MSG

Gatehouse demo: two garages (2 levels, 400 spaces, 4 lanes each) with their devices
simulated over Modbus TCP, serial, MQTT and camera pushes, synced into one cloud. Cars
arrive every few seconds, time runs 30x, a random device fault every 90 s.
$(if [ -n "$lpr_edge" ]; then echo "garage-b's Kerkweg exit reads plates from camera snapshots itself (protocol lpr):
its reads with confidence and crops: http://127.0.0.1:$((base + 1))/v1/lpr/reads?device=x2-cam"; else echo "(No OpenCV here: every camera pushes its reads; install libopencv-dev for a plate-reading exit.)"; fi)
  cloud API      http://127.0.0.1:$cloud/v1/openapi.json   (docs/api.md)
    availability http://127.0.0.1:$cloud/v1/facilities/demo-garage/availability   (public)
                 http://127.0.0.1:$cloud/v1/facilities/garage-b/availability
    open data    http://127.0.0.1:$cloud/v1/exports/datex2/parking
                 http://127.0.0.1:$cloud/v1/exports/fiware/facilities/demo-garage
    fleet        http://127.0.0.1:$cloud/v1/fleet   (staff: log in first)
    metrics      http://127.0.0.1:$cloud/metrics
  cloud admin    $(sed -n 's/.*"email": "\(.*\)".*/\1/p' "$admin_file"), password in $admin_file
    log in       curl -H 'Content-Type: application/json' --data @$admin_file http://127.0.0.1:$cloud/v1/auth/login
MSG
for i in 0 1; do
  api=$((base + i)); sim=$((base + 10 + i))
  cat <<MSG
  ${garages[$i]}:
    occupancy    http://127.0.0.1:$api/v1/occupancy
    lanes        http://127.0.0.1:$api/v1/lanes     devices http://127.0.0.1:$api/v1/devices
    sessions     http://127.0.0.1:$api/v1/sessions?open=true
    events       http://127.0.0.1:$api/v1/events?after=0
    kiosks       http://127.0.0.1:$api/kiosk/       metrics http://127.0.0.1:$api/metrics
    ground truth http://127.0.0.1:$sim/truth
MSG
done
cat <<MSG
  operator token $token   (curl -H 'Authorization: Bearer $token' ...)
  live command   bin/gatehouse-cloud command --data-dir $data/cloud demo-garage open '{"operator":"you","reason":"demo","lane":"entry-1"}'
  logs           $data
Ctrl-C stops it.

MSG
if [ -n "${DEMO_SECONDS:-}" ]; then
  sleep "$DEMO_SECONDS"
  tok=$(admin_token)
  for i in 0 1; do
    id=${garages[$i]}
    echo "== $id after ${DEMO_SECONDS}s"
    echo -n "edge:  "; curl -fsS "http://127.0.0.1:$((base + i))/v1/occupancy"; echo
    echo -n "sim:   "; curl -fsS "http://127.0.0.1:$((base + 10 + i))/truth"; echo
    echo -n "cloud: "; curl -fsS -H "Authorization: Bearer $tok" "http://127.0.0.1:$cloud/v1/facilities/$id/status"; echo
    echo -n "app:   "; curl -fsS "http://127.0.0.1:$cloud/v1/facilities/$id/availability"; echo
  done
  exit 0
fi
wait
