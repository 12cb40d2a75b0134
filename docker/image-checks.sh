#!/usr/bin/env bash
# Build the container image and check it. `make image-check` (part of
# `make test`) runs all steps; `make image` runs `build` only.
#
# Usage: docker/image-checks.sh [STEP...]      (default: all steps, in order)
#   lint       hadolint Dockerfile
#   build      base images if needed, then docker build -t iokernel:latest;
#              reports builder/runtime/base sizes and fails if the runtime
#              image is more than MAX_GROWTH_MB above its base
#   structure  container-structure-test with docker/structure-test.yaml
#   dive       layer efficiency (dive --ci, thresholds below)
#   demo       docker/compose-demo.sh: service + Redis in compose, Redis
#              stopped and started again; fails if the service does not
#              answer 503 while Redis is down or does not recover
#
# With no reachable Docker engine it prints "skipped: no Docker engine (...)"
# and exits 0, so `make test` still works where there is no Docker.
#
# Base images (IOKERNEL_BASE):
#   auto    (default) the public rust/python images if present or pullable,
#           else local ones made by docker/base-images.sh (Debian packages
#           only; needs root). Existing local base images are reused.
#   public  rust:1-slim-bookworm + python:3.11-slim-bookworm
#   local   iokernel-base/rust:bookworm + iokernel-base/python:3.11-slim-bookworm
#
# Environment: IMAGE (default iokernel:latest), IOKERNEL_BASE,
# IOKERNEL_BUILD_CONTEXT (build from another directory, e.g. an export of
# `git archive HEAD`), MAX_GROWTH_MB (20), DIVE_LOWEST_EFFICIENCY (0.99),
# DIVE_HIGHEST_USER_WASTED (0.05), DIVE_HIGHEST_WASTED_BYTES (100KB),
# SKIP_IMAGE_CHECK=1 (skip everything).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
IMAGE=${IMAGE:-iokernel:latest}
BUILDER_TAG=${BUILDER_TAG:-iokernel-builder:latest}
CONTEXT=${IOKERNEL_BUILD_CONTEXT:-$ROOT}
MAX_GROWTH_MB=${MAX_GROWTH_MB:-20}

PUBLIC_BUILDER=rust:1-slim-bookworm
PUBLIC_RUNTIME=python:3.11-slim-bookworm
LOCAL_BUILDER=iokernel-base/rust:bookworm
LOCAL_RUNTIME=iokernel-base/python:3.11-slim-bookworm

say() { echo "image-check: $*"; }
die() { echo "image-check: FAILED: $*" >&2; exit 1; }
usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; }

STEPS=()
for a in "$@"; do
    case $a in
        -h|--help) usage; exit 0 ;;
        all) STEPS+=(lint build structure dive demo) ;;
        lint|build|structure|dive|demo) STEPS+=("$a") ;;
        *) usage >&2; die "unknown step: $a" ;;
    esac
done
[ ${#STEPS[@]} -gt 0 ] || STEPS=(lint build structure dive demo)

# ---------------------------------------------------------------- preflight
if [ "${SKIP_IMAGE_CHECK:-0}" = 1 ]; then
    say "skipped: SKIP_IMAGE_CHECK=1"; exit 0
fi
if ! command -v docker >/dev/null 2>&1; then
    say "skipped: no Docker engine (docker CLI not found)"; exit 0
fi
if ! err=$(timeout 20 docker info 2>&1 >/dev/null); then
    say "skipped: no Docker engine (docker info: $(printf '%s' "$err" | grep -v '^\s*$' | tail -1))"
    exit 0
fi

need_tool() {  # need_tool NAME: on PATH (the Makefile puts .venv/bin first)
    command -v "$1" >/dev/null 2>&1 && return 0
    [ -x "$ROOT/.venv/bin/$1" ] && { PATH="$ROOT/.venv/bin:$PATH"; return 0; }
    die "$1 not found; it is pinned in requirements-dev.txt (make deps, or pip install -r requirements-dev.txt)"
}

image_exists() { docker image inspect "$1" >/dev/null 2>&1; }
size_of() { docker image inspect -f '{{.Size}}' "$1"; }
mb() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1000000 }'; }

declare -A TIME=()
T0=$SECONDS

# ---------------------------------------------------------------- steps
step_lint() {
    need_tool hadolint
    hadolint "$ROOT/Dockerfile"
    say "hadolint Dockerfile: clean"
}

pick_bases() {  # sets BUILDER_IMAGE, RUNTIME_IMAGE, BASE_NOTE
    local mode=${IOKERNEL_BASE:-auto}
    if [ "$mode" = auto ]; then
        if image_exists "$PUBLIC_BUILDER" && image_exists "$PUBLIC_RUNTIME"; then
            mode=public
        elif timeout 120 docker pull -q "$PUBLIC_RUNTIME" >/dev/null 2>&1 \
             && timeout 600 docker pull -q "$PUBLIC_BUILDER" >/dev/null 2>&1; then
            mode=public
        else
            mode=local
        fi
    fi
    case $mode in
        public) BUILDER_IMAGE=$PUBLIC_BUILDER; RUNTIME_IMAGE=$PUBLIC_RUNTIME ;;
        local)  BUILDER_IMAGE=$LOCAL_BUILDER;  RUNTIME_IMAGE=$LOCAL_RUNTIME ;;
        *) die "IOKERNEL_BASE must be auto, public or local (not $mode)" ;;
    esac
    if [ "$mode" = local ]; then
        if image_exists "$LOCAL_BUILDER" && image_exists "$LOCAL_RUNTIME"; then
            BASE_NOTE="local base images reused"
        else
            BASE_NOTE="local base images built"
            say "no public base images here; building local ones (docker/base-images.sh)"
            local sudo=()
            if [ "$(id -u)" -ne 0 ]; then
                sudo -n true 2>/dev/null || die "the local base images need root: run 'sudo docker/base-images.sh' once"
                sudo=(sudo -n)
            fi
            "${sudo[@]}" "$HERE/base-images.sh" python rust
        fi
    else
        BASE_NOTE="public base images"
    fi
}

step_build() {
    local t=$SECONDS
    pick_bases
    say "docker build -t $IMAGE (builder $BUILDER_IMAGE, runtime $RUNTIME_IMAGE)"
    # The classic builder (no buildx here) prints a deprecation notice; the
    # build log goes to a file and is shown only when the build fails.
    local log
    log=$(mktemp /tmp/iokernel-build.XXXXXX.log)
    local args=(--build-arg "BUILDER_IMAGE=$BUILDER_IMAGE" --build-arg "RUNTIME_IMAGE=$RUNTIME_IMAGE")
    if ! { docker build "${args[@]}" --target builder -t "$BUILDER_TAG" "$CONTEXT" &&
           docker build "${args[@]}" -t "$IMAGE" "$CONTEXT"; } >"$log" 2>&1; then
        tail -60 "$log" >&2
        die "docker build failed (last lines above; full log $log)"
    fi
    rm -f "$log"
    # Images this project's earlier builds left untagged (only ours: label).
    docker image prune -f --filter label=iokernel.stage >/dev/null 2>&1 || true
    TIME[build]=$((SECONDS - t))

    local builder runtime base
    builder=$(size_of "$BUILDER_TAG"); runtime=$(size_of "$IMAGE"); base=$(size_of "$RUNTIME_IMAGE")
    printf '  %-58s %8s MB\n' "builder stage ($BUILDER_TAG)" "$(mb "$builder")" \
        "runtime base ($RUNTIME_IMAGE)" "$(mb "$base")" \
        "runtime ($IMAGE)" "$(mb "$runtime")" \
        "runtime - base" "$(mb $((runtime - base)))"
    [ $((runtime - base)) -le $((MAX_GROWTH_MB * 1000000)) ] \
        || die "the runtime image is $(mb $((runtime - base))) MB above its base (limit $MAX_GROWTH_MB MB)"
    say "built $IMAGE in ${TIME[build]} s ($BASE_NOTE); runtime = base + $(mb $((runtime - base))) MB (limit $MAX_GROWTH_MB)"
}

step_structure() {
    need_tool container-structure-test
    image_exists "$IMAGE" || die "$IMAGE does not exist; run the build step first"
    container-structure-test test --no-color --image "$IMAGE" \
        --config "$HERE/structure-test.yaml" >/tmp/iokernel-cst.$$ 2>&1 \
        || { cat /tmp/iokernel-cst.$$ >&2; rm -f /tmp/iokernel-cst.$$; die "container-structure-test"; }
    grep -E '^(Passes|Failures|Duration):' /tmp/iokernel-cst.$$ | sed 's/^/  /'
    rm -f /tmp/iokernel-cst.$$
    say "container-structure-test: passed"
}

step_dive() {
    need_tool dive
    image_exists "$IMAGE" || die "$IMAGE does not exist; run the build step first"
    local out rc=0
    out=$(CI=true dive --ci --source docker \
        --lowestEfficiency="${DIVE_LOWEST_EFFICIENCY:-0.99}" \
        --highestUserWastedPercent="${DIVE_HIGHEST_USER_WASTED:-0.05}" \
        --highestWastedBytes="${DIVE_HIGHEST_WASTED_BYTES:-100KB}" \
        "$IMAGE" 2>&1) || rc=$?
    # Strip colours; show the numbers and the verdicts.
    out=$(printf '%s\n' "$out" | sed 's/\x1b\[[0-9;]*m//g')
    printf '%s\n' "$out" | grep -E '^\s*(efficiency|wastedBytes|userWastedPercent):|^\s*(PASS|FAIL|SKIP|WARN)' | sed 's/^ */  /'
    [ "$rc" -eq 0 ] || { printf '%s\n' "$out" >&2; die "dive: the image wastes more than allowed"; }
    say "dive: passed"
}

step_demo() {
    image_exists "$IMAGE" || die "$IMAGE does not exist; run the build step first"
    local log rc=0
    log=$(mktemp /tmp/iokernel-compose-demo.XXXXXX.log)
    IMAGE="$IMAGE" "$HERE/compose-demo.sh" --no-build >"$log" 2>&1 || rc=$?
    if [ "$rc" -ne 0 ]; then
        cat "$log" >&2; rm -f "$log"
        die "compose demo (exit $rc; its output above)"
    fi
    grep -E '^  => ' "$log" || true
    rm -f "$log"
    say "compose demo: Redis stopped -> 503s with clear errors -> recovered"
}

for s in "${STEPS[@]}"; do
    t=$SECONDS
    say "== $s"
    "step_$s"
    TIME[$s]=$((SECONDS - t))
done

summary=""
for s in "${STEPS[@]}"; do summary+=" $s ${TIME[$s]}s,"; done
summary=${summary%,}
say "all passed in $((SECONDS - T0)) s (${summary# })${BASE_NOTE:+; $BASE_NOTE}"
