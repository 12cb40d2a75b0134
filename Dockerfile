# iokernel: build the wheel in a Rust+Python builder, run it in a slim Python.
#
#   docker build -t iokernel .                                # public base images
#   docker build -t iokernel \
#     --build-arg BUILDER_IMAGE=iokernel-base/rust:bookworm \
#     --build-arg RUNTIME_IMAGE=iokernel-base/python:3.11-slim-bookworm .
#                                                             # local ones, from docker/base-images.sh
#
# Builder and runtime are both Debian bookworm (glibc 2.36) with CPython 3.11:
# the extension is linked against glibc and built for one CPython ABI, so it
# only loads in a runtime with a glibc at least as new and the same Python
# minor version (no Alpine/musl runtime; see docs/deployment.md).
#
# Classic builder on purpose: the docker CLI on our build machines has no buildx
# plugin, and without it `DOCKER_BUILDKIT=1 docker build` refuses to run. So no
# BuildKit-only syntax here (no RUN --mount caches, no heredocs, no COPY --link);
# the crates.io downloads are cached as an ordinary layer instead (cargo fetch
# on the manifests alone, before the sources are copied). Works the same under
# BuildKit.

ARG BUILDER_IMAGE=rust:1-slim-bookworm
ARG RUNTIME_IMAGE=python:3.11-slim-bookworm

# ---------------------------------------------------------------- builder
FROM ${BUILDER_IMAGE} AS builder
# The label lets docker/image-checks.sh prune this project's stale images only.
LABEL iokernel.stage=builder
ARG MATURIN_VERSION=1.16.0
ARG AUDITWHEEL_VERSION=6.8.2
# manylinux policy to enforce. "auto": the oldest one the wheel actually meets,
# which on a bookworm builder is manylinux_2_34 or newer (Rust's std links the
# glibc 2.34 pthread symbols); any bookworm runtime (glibc 2.36) loads it.
# manylinux_2_28 (for wheels published to PyPI) cannot be met by linking
# against bookworm's glibc: that takes an older-glibc builder or `--zig`.
ARG MANYLINUX=auto
SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# The public rust image has no Python; iokernel-base/rust:bookworm has it all.
# Versions are not pinned: they are whatever bookworm (+ security) ships, the
# same Python 3.11 as the runtime image.
# hadolint ignore=DL3008
RUN if ! command -v python3 >/dev/null || ! python3 -c 'import ensurepip' 2>/dev/null \
        || ! command -v patchelf >/dev/null || [ ! -e /usr/include/python3.11/Python.h ]; then \
        apt-get update \
        && apt-get install -y --no-install-recommends \
            python3 python3-dev python3-venv patchelf \
        && rm -rf /var/lib/apt/lists/*; \
    fi \
    && python3 -c 'import sys; assert sys.version_info[:2] == (3, 11), sys.version'

ENV VIRTUAL_ENV=/opt/build-venv \
    PATH=/opt/build-venv/bin:$PATH \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    CARGO_TERM_COLOR=never
RUN python3 -m venv "$VIRTUAL_ENV" \
    && pip install "maturin==${MATURIN_VERSION}" "auditwheel==${AUDITWHEEL_VERSION}"

WORKDIR /src
# Manifests alone first: this layer (crate downloads) is reused until
# Cargo.toml or Cargo.lock changes. `Cargo.lock*` copies the lock file if
# there is one and does not fail if there is none.
COPY Cargo.toml Cargo.lock* ./
RUN mkdir -p src && touch src/lib.rs \
    && if [ -f Cargo.lock ]; then cargo fetch --locked; else cargo fetch; fi \
    && rm -rf src

COPY pyproject.toml README.md ./
COPY src/ src/
COPY python/ python/
# --auditwheel check: fail (instead of silently vendoring libraries) if the
# extension needs a shared library outside the manylinux policy or glibc
# symbols newer than it allows; `auditwheel show` prints the verdict again
# and the loop fails the build if the wheel is not tagged manylinux at all.
# target/ (~190 MB) is dropped: the classic builder cannot reuse it anyway.
RUN set --; \
    if [ -f Cargo.lock ]; then set -- --locked; fi; \
    if [ "${MANYLINUX}" != auto ]; then set -- "$@" --compatibility "${MANYLINUX}"; fi; \
    maturin build --release --strip "$@" \
        --interpreter python3 --auditwheel check --out /dist \
    && auditwheel show /dist/*.whl \
    && for w in /dist/*.whl; do \
        case $w in *manylinux*) ;; *) echo "not a manylinux wheel: $w" >&2; exit 1 ;; esac; \
    done \
    && rm -rf target

# Install the wheel (and, later, its dependencies) into a plain directory that
# the runtime stage copies: no pip, venv or build tools have to exist there.
# A venv would not do: it points at the builder's interpreter path
# (/usr/bin/python3), and the public runtime image's is /usr/local/bin/python3.
RUN pip install --no-compile --target /opt/iokernel/site-packages /dist/*.whl

# ---------------------------------------------------------------- runtime
FROM ${RUNTIME_IMAGE} AS runtime
LABEL iokernel.stage=runtime
# The example service's settings (examples/service/README.md); compose and
# `docker run -e` override them.
ENV PYTHONPATH=/opt/iokernel/site-packages \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOST=0.0.0.0 \
    PORT=8080 \
    REDIS_URL=redis://redis:6379/0 \
    CACHE_TTL=60

COPY --from=builder /opt/iokernel /opt/iokernel
# Byte-compile with the runtime's own interpreter, as root (the service user
# cannot write there), add the service user, and import the extension now so
# that a wheel that does not load here fails the build, not the deploy.
RUN python -m compileall -q /opt/iokernel \
    && groupadd --gid 10001 iokernel \
    && useradd --no-log-init --uid 10001 --gid 10001 --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin iokernel \
    && python -c "import iokernel._native, iokernel; print('iokernel', iokernel.__file__)"

# The example service last: editing it rebuilds only these two small layers.
COPY examples/service/ /opt/iokernel/service/
RUN python -m compileall -q /opt/iokernel/service

USER 10001:10001
WORKDIR /opt/iokernel/service
EXPOSE 8080
# /healthz PINGs Redis: "unhealthy" means the service cannot use its cache
# (a readiness signal). /livez answers without Redis, for a liveness probe.
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '8080'), timeout=2)"]
CMD ["python", "/opt/iokernel/service/app.py"]
