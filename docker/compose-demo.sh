#!/usr/bin/env bash
# `make compose-demo`: the example service and a Redis under docker compose.
#
#   1. builds what is missing: local base images (docker/base-images.sh) and
#      the iokernel image (docker/image-checks.sh build); --no-build skips it
#   2. `up`: Redis, then the service once Redis is healthy
#   3. traffic from the host through the published loopback port: cache miss,
#      hit, write-through, a burst of concurrent requests on ONE Redis connection
#   4. stops Redis: the service answers 503 with a JSON error that says what
#      is wrong, at once; its HEALTHCHECK fails and Docker marks it unhealthy
#   5. starts Redis again: requests succeed again within RECOVERY_TIMEOUT
#      seconds, without restarting the service
#   6. tears everything down, also when a step fails (trap)
#
# Exits non-zero if any step fails, e.g. if the service hangs or answers
# anything but 503 while Redis is down, or does not recover.
#
# Environment: IMAGE (iokernel:latest), REDIS_IMAGE
# (iokernel-base/redis:bookworm), SERVICE_PORT (a free loopback port),
# RECOVERY_TIMEOUT (30), DOWN_SECONDS (4).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export IMAGE=${IMAGE:-iokernel:latest}
export REDIS_IMAGE=${REDIS_IMAGE:-iokernel-base/redis:bookworm}
RECOVERY_TIMEOUT=${RECOVERY_TIMEOUT:-30}
DOWN_SECONDS=${DOWN_SECONDS:-4}
BUILD=1
for a in "$@"; do
    case $a in
        --no-build) BUILD=0 ;;
        -h|--help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
        *) echo "compose-demo: unknown argument $a" >&2; exit 2 ;;
    esac
done

T0=$SECONDS
title() { printf '\n== %s\n' "$*"; }
info() { printf '   %s\n' "$*"; }
fail() { printf '\ncompose-demo: FAILED: %s\n' "$*" >&2; exit 1; }
since() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }

# ---------------------------------------------------------------- tools
command -v docker >/dev/null 2>&1 || fail "docker not found"
docker info >/dev/null 2>&1 || fail "the Docker engine is not reachable (docker info)"
if docker compose version >/dev/null 2>&1; then
    COMPOSE_CMD=(docker compose)
elif command -v docker-compose >/dev/null 2>&1; then
    COMPOSE_CMD=(docker-compose)
else
    fail "neither 'docker compose' nor 'docker-compose' is installed"
fi
command -v python3 >/dev/null 2>&1 || fail "python3 not found (the demo's HTTP client)"

PROJECT=iokernel-demo-$$
export SERVICE_PORT=${SERVICE_PORT:-$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
BASE_URL=http://127.0.0.1:$SERVICE_PORT
compose() { "${COMPOSE_CMD[@]}" --ansi never -f "$HERE/compose.yaml" -p "$PROJECT" "$@"; }
# docker-compose v1 knows --no-ansi, not --ansi (1.28+ knows both): probe once.
if ! compose version >/dev/null 2>&1; then
    compose() { "${COMPOSE_CMD[@]}" --no-ansi -f "$HERE/compose.yaml" -p "$PROJECT" "$@"; }
fi

# ---------------------------------------------------------------- teardown
STARTED=0
OK=0
teardown() {
    local rc=$?
    if [ "$STARTED" -eq 1 ]; then
        if [ "$OK" -eq 0 ]; then
            echo >&2
            echo "-- service and redis logs (last 30 lines each)" >&2
            compose logs --no-color --tail 30 service redis >&2 2>&1 || true
        fi
        title "tearing down (docker compose down -v)"
        compose down -v --remove-orphans -t 5 >/dev/null 2>&1 \
            || info "WARNING: 'down' failed; remove project $PROJECT by hand"
    fi
    exit "$rc"
}
trap teardown EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- 1. images
title "iokernel compose demo: the items service + Redis (${COMPOSE_CMD[*]}, project $PROJECT)"
if [ "$BUILD" -eq 1 ]; then
    info "building the image (docker/image-checks.sh build)"
    "$HERE/image-checks.sh" build | sed 's/^/   /'
fi
docker image inspect "$IMAGE" >/dev/null 2>&1 || fail "$IMAGE does not exist (make image)"
if ! docker image inspect "$REDIS_IMAGE" >/dev/null 2>&1; then
    [ "$REDIS_IMAGE" = iokernel-base/redis:bookworm ] || fail "$REDIS_IMAGE does not exist"
    info "building $REDIS_IMAGE (docker/base-images.sh redis)"
    if [ "$(id -u)" -eq 0 ]; then "$HERE/base-images.sh" redis; else sudo -n "$HERE/base-images.sh" redis; fi
fi
info "service image: $IMAGE ($(docker image inspect -f '{{.Size}}' "$IMAGE" | awk '{ printf "%.1f MB", $1 / 1e6 }'))"
info "redis image:   $REDIS_IMAGE"

# ---------------------------------------------------------------- helpers
# req EXPECT METHOD PATH [JSON]: one request from the host, one line of output;
# fails unless the status is EXPECT and the answer came within 5 s.
req() {
    python3 - "$BASE_URL" "$@" <<'PY'
import json, sys, time, urllib.error, urllib.request
base, expect, method, path = sys.argv[1:5]
body = sys.argv[5].encode() if len(sys.argv) > 5 else None
r = urllib.request.Request(base + path, data=body, method=method,
                           headers={"Content-Type": "application/json"} if body else {})
t0 = time.monotonic()
try:
    with urllib.request.urlopen(r, timeout=5) as resp:
        status, raw = resp.status, resp.read()
except urllib.error.HTTPError as e:
    status, raw = e.code, e.read()
except OSError as e:
    print(f"   {method:<5}{path:<15} no answer: {e}")
    sys.exit(1)
ms = (time.monotonic() - t0) * 1000
try:
    doc = json.loads(raw)
except ValueError:
    doc = {}
if "error" in doc:
    what = f"{doc['error']} ({doc.get('type', '-')}): {doc['detail']}"
elif "item" in doc:
    what = f"cached={str(doc['cached']).lower():<5}  {json.dumps(doc['item'], separators=(',', ':'))}"
else:
    what = json.dumps(doc, separators=(",", ":"))
print(f"   {method:<5}{path:<15}{status}  {ms:6.1f} ms  {what}")
sys.exit(0 if str(status) == expect else 1)
PY
}

cid() { compose ps -q "$1"; }
health() { docker inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}' "$(cid "$1")"; }
wait_health() {  # wait_health SERVICE STATUS SECONDS
    local deadline=$((SECONDS + $3)) t
    t=$(date +%s.%N)
    until [ "$(health "$1")" = "$2" ]; do
        [ $SECONDS -lt "$deadline" ] || fail "$1 not $2 within $3 s (it is $(health "$1"))"
        sleep 0.5
    done
    info "docker reports $1: $2 (after $(since "$t") s)"
}
# The image's own HEALTHCHECK command, run with docker exec: its exit code.
HC=()
while IFS= read -r line; do HC+=("$line"); done < <(
    docker image inspect -f '{{json .Config.Healthcheck.Test}}' "$IMAGE" |
    python3 -c 'import json, sys; t = json.load(sys.stdin); assert t[0] == "CMD", t; print("\n".join(t[1:]))')
[ ${#HC[@]} -gt 0 ] || fail "$IMAGE has no exec-form HEALTHCHECK"
healthcheck() {
    local rc=0
    docker exec "$(cid service)" "${HC[@]}" >/dev/null 2>&1 || rc=$?
    echo "$rc"
}

# ---------------------------------------------------------------- 2. up
title "starting Redis, then the service once Redis is healthy"
STARTED=1
compose up -d 2>&1 | sed 's/^/   /'
wait_health redis healthy 60
wait_health service healthy 60
rc=$(healthcheck)
info "the image's HEALTHCHECK command (GET /healthz), run with docker exec: exit $rc"
[ "$rc" -eq 0 ] || fail "the healthcheck command fails although Redis is up"
echo "  => the HEALTHCHECK passes with Redis up (exit 0)"

# ---------------------------------------------------------------- 3. traffic
title "traffic from the host through $BASE_URL"
req 200 GET /healthz
req 200 GET /items/42                  # miss: loaded from the backend, cached
req 200 GET /items/42                  # hit
req 200 POST /items/42 '{"name": "the answer", "price_cents": 4200}'
req 200 GET /items/42                  # the write is in the cache
req 404 GET /nope
python3 - "$BASE_URL" <<'PY'
import sys, time, urllib.request
from concurrent.futures import ThreadPoolExecutor
base = sys.argv[1]
def get(i):
    with urllib.request.urlopen(f"{base}/items/burst-{i % 50}", timeout=5) as r:
        return r.status
t0 = time.monotonic()
with ThreadPoolExecutor(32) as ex:
    codes = list(ex.map(get, range(400)))
dt = time.monotonic() - t0
print(f"   400 GETs from 32 threads in {dt:.2f} s: {codes.count(200)} x 200")
sys.exit(0 if codes.count(200) == 400 else 1)
PY
conns=$(docker exec "$(cid redis)" redis-cli client list | grep -c 'name=items-service' || true)
info "connections from the service to Redis: $conns (iokernel pipelines every request over one)"

# ---------------------------------------------------------------- 4. Redis down
title "stopping Redis (docker compose stop redis)"
compose stop -t 2 redis 2>&1 | sed 's/^/   /'
down_t=$(date +%s.%N)
n503=0
end=$((SECONDS + DOWN_SECONDS))
while [ $SECONDS -lt $end ]; do
    req 503 GET /items/42 || fail "expected 503 while Redis is down"
    n503=$((n503 + 1))
    sleep 1
done
req 503 POST /items/7 '{"name": "seven"}' || fail "expected 503 for a write while Redis is down"
req 503 GET /healthz || fail "expected /healthz 503 while Redis is down"
req 200 GET /livez || fail "/livez should not depend on Redis"
rc=$(healthcheck)
info "the image's HEALTHCHECK command: exit $rc"
[ "$rc" -ne 0 ] || fail "the healthcheck command passes although Redis is down"
wait_health service unhealthy 30
echo "  => the HEALTHCHECK fails with Redis down (exit $rc); docker marks the service unhealthy"
echo "  => 503 while Redis was down: $((n503 + 2)) requests, each answered at once with a JSON error"

# ---------------------------------------------------------------- 5. recovery
title "starting Redis again (docker compose start redis)"
compose start redis 2>&1 | sed 's/^/   /'
start_t=$(date +%s.%N)
deadline=$((SECONDS + RECOVERY_TIMEOUT))
tries=0
until out=$(req 200 GET /items/42 2>&1); do
    tries=$((tries + 1))
    [ $SECONDS -lt "$deadline" ] || { printf '%s\n' "$out"; fail "no recovery within $RECOVERY_TIMEOUT s after Redis started"; }
    sleep 0.2
done
printf '%s\n' "$out"                   # the restarted Redis is empty: a miss
echo "  => recovered $(since "$start_t") s after 'start redis' ($(since "$down_t") s after Redis went down; $tries requests got 503 meanwhile), service not restarted"
req 200 GET /items/42                  # and cached again
wait_health service healthy 30
rc=$(healthcheck)
info "the image's HEALTHCHECK command: exit $rc"
[ "$rc" -eq 0 ] || fail "the healthcheck command still fails after recovery"

# ---------------------------------------------------------------- metrics
title "the service's metrics (GET /metrics, excerpt)"
python3 - "$BASE_URL" <<'PY'
import sys, urllib.request
with urllib.request.urlopen(sys.argv[1] + "/metrics", timeout=5) as r:
    text = r.read().decode()
for line in text.splitlines():
    if line.startswith(("items_http_requests_total", "items_cache_lookups_total",
                        "items_redis_errors_total", "items_redis_up",
                        "items_http_request_duration_seconds_count")):
        print("   " + line)
PY

title "service log: Redis state changes"
compose logs --no-color service 2>&1 | grep -E 'redis (unavailable|reachable)|items service on' \
    | sed -E 's/^[^|]*\| ?//; s/^/   /' | cut -c1-200 || true

OK=1
title "demo OK in $((SECONDS - T0)) s"
