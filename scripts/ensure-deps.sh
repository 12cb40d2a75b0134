#!/usr/bin/env bash
# Make this machine ready to build and test iokernel. Idempotent and cheap
# when nothing is missing, so `make demo` / `make test` run it every time.
#
#   1. Debian packages listed in scripts/apt-packages.txt (plus EXTRA_APT_PACKAGES),
#      installed only when missing, with a single `apt-get update` first.
#   2. The Rust toolchain's clippy component (cargo comes from rustup).
#   3. A project virtualenv in .venv (python3 -m venv; python3-venv from apt
#      if the venv module is broken) with requirements-dev.txt installed.
#      A stamp (hash of requirements + interpreter) skips pip when nothing changed.
#
# Env: VENV (default .venv), PYTHON (default python3), EXTRA_APT_PACKAGES,
#      SKIP_APT=1 (don't touch apt), SKIP_RUST=1 (don't touch rustup).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="${VENV:-.venv}"
PYTHON="${PYTHON:-python3}"
export PATH="$HOME/.cargo/bin:$PATH"

log() { printf '[ensure-deps] %s\n' "$*" >&2; }

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO="sudo -n"; fi
fi

APT_UPDATED=0
apt_install() {
    # apt_install PKG... : install the packages, running `apt-get update` once.
    [ "$#" -gt 0 ] || return 0
    if [ "${SKIP_APT:-0}" = 1 ]; then
        log "SKIP_APT=1 but missing Debian packages: $*"; return 1
    fi
    if ! command -v apt-get >/dev/null 2>&1; then
        log "no apt-get on this machine; install these yourself: $*"; return 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    if [ "$APT_UPDATED" = 0 ]; then
        log "apt-get update"
        $SUDO apt-get update -qq
        APT_UPDATED=1
    fi
    log "apt-get install $*"
    $SUDO apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

is_installed() {
    [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)" = "install ok installed" ]
}

# ---- 1. Debian packages -------------------------------------------------------
wanted=()
while read -r line; do
    line="${line%%#*}"
    for pkg in $line; do wanted+=("$pkg"); done
done < "$ROOT/scripts/apt-packages.txt"
for pkg in ${EXTRA_APT_PACKAGES:-}; do wanted+=("$pkg"); done

missing=()
if command -v dpkg-query >/dev/null 2>&1; then
    for pkg in "${wanted[@]}"; do is_installed "$pkg" || missing+=("$pkg"); done
fi
if [ "${#missing[@]}" -gt 0 ]; then
    apt_install "${missing[@]}"
fi

# ---- 2. Rust ------------------------------------------------------------------
if [ "${SKIP_RUST:-0}" != 1 ]; then
    if ! command -v cargo >/dev/null 2>&1; then
        log "cargo not found (expected rustup's in \$HOME/.cargo/bin)"; exit 1
    fi
    if ! cargo clippy --version >/dev/null 2>&1; then
        log "rustup component add clippy"
        rustup component add clippy
    fi
fi

# ---- 3. Python virtualenv -----------------------------------------------------
if [ ! -x "$VENV/bin/python" ]; then
    log "creating $VENV with $($PYTHON --version 2>&1) ($(command -v "$PYTHON"))"
    rm -rf "$VENV"
    if ! "$PYTHON" -m venv "$VENV"; then
        log "'$PYTHON -m venv' failed; installing python3-venv"
        rm -rf "$VENV"
        apt_install python3-venv
        "$PYTHON" -m venv "$VENV"
    fi
fi

stamp="$VENV/.deps-stamp"
want_stamp="$(cat requirements-dev.txt "$VENV/pyvenv.cfg" | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want_stamp" ]; then
    log "pip install -r requirements-dev.txt"
    export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1
    "$VENV/bin/python" -m pip install -q -r requirements-dev.txt
    echo "$want_stamp" > "$stamp"
else
    log "python deps up to date ($VENV)"
fi
