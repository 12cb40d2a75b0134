#!/usr/bin/env bash
# Run the Rust tests and the Python integration tests once more while the
# machine is busy: a test that only passes when its threads and the kernel
# get the CPU promptly (a sleep used as synchronisation, a request assumed to
# reach a given connection, a fixed short timeout) fails here instead of now
# and then in CI. `make test` runs this as its `test-loaded` step.
#
# The load is LOADED_BURNERS (default 3) processes that spin in pure Python
# at normal priority, started here and stopped on every exit path; each also
# stops by itself soon after this script's process is gone (even if it was
# killed with SIGKILL), so no busy loop outlives the step. Exit status:
# that of the tests (0 only if both runs passed).
#
#   scripts/loaded.sh [more pytest args...]
#   env: PY (python with pytest), LOADED_BURNERS, LOADED_PYTEST_PATHS
#        (default tests/integration), PYTEST_TIMEOUT, CARGO_TEST_ARGS
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PY=${PY:-.venv/bin/python}
BURNERS=${LOADED_BURNERS:-3}
TIMEOUT=${PYTEST_TIMEOUT:-120}
read -r -a CARGO_ARGS <<<"${CARGO_TEST_ARGS:---tests}"
read -r -a PATHS <<<"${LOADED_PYTEST_PATHS:-tests/integration}"

# Spins until the process that started it (this script) is gone; checks
# every ~million iterations (a few tens of ms), so the check costs nothing.
burn='import os
parent = os.getppid()
while os.getppid() == parent:
    for _ in range(1_000_000):
        pass'

pids=()
stop_burners() {
    if [ "${#pids[@]}" -gt 0 ]; then
        kill "${pids[@]}" 2>/dev/null
        wait "${pids[@]}" 2>/dev/null
        pids=()
    fi
}
trap stop_burners EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP

for _ in $(seq "$BURNERS"); do
    python3 -c "$burn" &
    pids+=("$!")
done
echo "== loaded: $BURNERS busy processes (pids ${pids[*]}) on $(nproc) cores"

start=$SECONDS
status=0
echo "== loaded: cargo test ${CARGO_ARGS[*]}"
cargo test "${CARGO_ARGS[@]}" || status=1
echo "== loaded: pytest ${PATHS[*]} $*"
"$PY" -m pytest -p no:cacheprovider -q -rfE --timeout="$TIMEOUT" "${PATHS[@]}" "$@" || status=1
stop_burners
echo "== loaded: $([ "$status" -eq 0 ] && echo passed || echo FAILED) in $((SECONDS - start))s"
exit "$status"
