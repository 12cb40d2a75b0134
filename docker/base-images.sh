#!/usr/bin/env bash
# Build local stand-ins for the public base images the Dockerfile uses, from
# Debian's own packages (debootstrap + chroot + `docker import`), for machines
# that run a Docker engine but can pull from no registry.
#
#   iokernel-base/python:3.11-slim-bookworm   slim runtime: python3 (3.11), ca-certificates
#   iokernel-base/rust:bookworm               builder: gcc, rustc/cargo (rustc-web), python3-dev/venv/pip, patchelf
#   iokernel-base/redis:bookworm              redis-server, for the compose demo
#
# Usage: docker/base-images.sh [--force] [--refresh-cache] [--no-host-ca] [IMAGE...]
#   IMAGE           python | rust | redis (default: all three)
#   --force         rebuild images that already exist
#   --refresh-cache run debootstrap again instead of reusing the cached root
#   --no-host-ca    do not add the host's local CA certificates to the builder
#
# Builder only: the CA certificates this host trusts locally
# (/usr/local/share/ca-certificates/*.crt, e.g. a TLS-intercepting egress
# proxy's) are added to iokernel-base/rust, or pip and cargo inside
# `docker build` cannot reach PyPI and crates.io where the host can. The
# runtime and redis images never get them.
#
# Environment: DEBIAN_MIRROR, DEBIAN_SECURITY_MIRROR, XDG_CACHE_HOME.
# The debootstrap'ed minbase root is cached as a tarball under
# ${XDG_CACHE_HOME:-$HOME/.cache}/iokernel/ together with the .deb files apt
# downloaded; every image gets `apt-get upgrade` from bookworm-security and
# bookworm-updates, so an old cache does not mean an unpatched image.
# Roots are built under a mktemp -d directory in /var/tmp, never in the repo,
# and removed on exit.
set -euo pipefail

SUITE=bookworm
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
SECURITY_MIRROR=${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
CACHE_DIR=${XDG_CACHE_HOME:-$HOME/.cache}/iokernel
PREFIX=iokernel-base

PYTHON_TAG=$PREFIX/python:3.11-slim-bookworm
RUST_TAG=$PREFIX/rust:bookworm
REDIS_TAG=$PREFIX/redis:bookworm

die() { echo "base-images: error: $*" >&2; exit 1; }
log() { echo "base-images: $*" >&2; }

usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; }

FORCE=0
REFRESH=0
HOST_CA=1
HOST_CA_DIR=/usr/local/share/ca-certificates
WANT=()
while [ $# -gt 0 ]; do
    case "$1" in
        --force) FORCE=1 ;;
        --refresh-cache) REFRESH=1 ;;
        --no-host-ca) HOST_CA=0 ;;
        -h|--help) usage; exit 0 ;;
        python|rust|redis) WANT+=("$1") ;;
        *) usage >&2; die "unknown argument: $1" ;;
    esac
    shift
done
[ ${#WANT[@]} -gt 0 ] || WANT=(python rust redis)

# ---------------------------------------------------------------- preflight
[ "$(id -u)" -eq 0 ] || die "must run as root (debootstrap and chroot need it)"
command -v docker >/dev/null 2>&1 || die "docker CLI not found; install Docker first"
docker info >/dev/null 2>&1 || die "the Docker engine is not reachable (is dockerd running? try 'docker info')"
command -v chroot >/dev/null 2>&1 || die "chroot not found"
if ! command -v debootstrap >/dev/null 2>&1; then
    log "installing debootstrap"
    command -v apt-get >/dev/null 2>&1 || die "debootstrap is missing and there is no apt-get to install it"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
fi
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
[ -r "$KEYRING" ] || die "$KEYRING missing (apt-get install debian-archive-keyring)"

ARCH=$(dpkg --print-architecture 2>/dev/null || echo amd64)
ROOT_TARBALL=$CACHE_DIR/$SUITE-minbase-$ARCH.tar
APT_ARCHIVES=$CACHE_DIR/apt-archives-$SUITE-$ARCH
mkdir -p "$CACHE_DIR" "$APT_ARCHIVES/partial"

image_exists() { docker image inspect "$1" >/dev/null 2>&1; }

# ---------------------------------------------------------------- work dir
WORK=$(mktemp -d /var/tmp/iokernel-base.XXXXXX)
MOUNTS=()   # mount points to undo, in order

unmount_all() {
    local i
    for ((i=${#MOUNTS[@]}-1; i>=0; i--)); do
        umount "${MOUNTS[$i]}" 2>/dev/null || umount -l "${MOUNTS[$i]}" 2>/dev/null || true
    done
    MOUNTS=()
}

cleanup() {
    unmount_all
    # Never delete through a mount that is still there (a bind of /dev or of the
    # cache would take host files with it): refuse instead.
    if findmnt -rn -o TARGET | grep -q "^$WORK"; then
        log "WARNING: mounts left under $WORK; not removing it"
    else
        rm -rf --one-file-system "$WORK"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

bind() {  # bind SRC DST
    mkdir -p "$2"
    mount --bind "$1" "$2"
    MOUNTS+=("$2")
}

# ---------------------------------------------------------------- minbase root
make_root_tarball() {
    local root=$WORK/debootstrap start=$SECONDS
    log "debootstrap --variant=minbase $SUITE ($ARCH) from $MIRROR"
    debootstrap --variant=minbase --arch="$ARCH" --keyring="$KEYRING" \
        "$SUITE" "$root" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 \
        || { tail -30 "$WORK/debootstrap.log" >&2; die "debootstrap failed (log above)"; }
    # debootstrap leaves its downloads in the root; keep them in the apt cache.
    find "$root/var/cache/apt/archives" -maxdepth 1 -name '*.deb' -exec mv -f {} "$APT_ARCHIVES/" \;
    rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin
    mkdir -p "$root/var/lib/apt/lists/partial"
    tar --numeric-owner --xattrs -C "$root" -cf "$ROOT_TARBALL.tmp" .
    mv -f "$ROOT_TARBALL.tmp" "$ROOT_TARBALL"
    rm -rf --one-file-system "$root"
    log "cached $ROOT_TARBALL ($(du -h "$ROOT_TARBALL" | cut -f1), $((SECONDS - start)) s)"
}

# ---------------------------------------------------------------- one image
# build_image TAG SLIM PACKAGES -- docker-import --change lines...
#   SLIM=1 also drops docs/man/locales of what is installed later (dpkg path-exclude)
build_image() {
    local tag=$1 slim=$2 pkgs=$3; shift 4
    local changes=("$@") root start=$SECONDS c

    if image_exists "$tag" && [ "$FORCE" -eq 0 ]; then
        log "$tag exists, skipping (use --force to rebuild)"
        return 0
    fi
    root=$(mktemp -d "$WORK/root.XXXXXX")
    log "building $tag"
    tar --numeric-owner --xattrs -C "$root" -xpf "$ROOT_TARBALL"

    # apt sources: main + updates + security (rustc-web 1.8x+ and most fixes
    # come from bookworm-security / bookworm-updates).
    rm -f "$root/etc/apt/sources.list"
    cat >"$root/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $MIRROR
Suites: $SUITE $SUITE-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $SECURITY_MIRROR
Suites: $SUITE-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
    # The apt settings Debian's official container images carry (docker-clean
    # is written after our own installs, which keep their .debs in the cache).
    echo 'Acquire::Languages "none";' >"$root/etc/apt/apt.conf.d/docker-no-languages"
    echo 'Acquire::GzipIndexes "true";' >"$root/etc/apt/apt.conf.d/docker-gzip-indexes"
    echo 'Apt::AutoRemove::SuggestsImportant "false";' >"$root/etc/apt/apt.conf.d/docker-autoremove-suggests"
    if [ "$slim" -eq 1 ]; then
        # Like debian:*-slim: later `apt-get install` in a derived image stays
        # slim too. Copyright files are kept (license notices).
        cat >"$root/etc/dpkg/dpkg.cfg.d/docker-slim" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
EOF
    fi

    # Build-time only: DNS, no daemons started by postinst, shared .deb cache.
    cp -L /etc/resolv.conf "$root/etc/resolv.conf"
    if [ "${WITH_HOST_CA:-0}" -eq 1 ] && [ "$HOST_CA" -eq 1 ] && compgen -G "$HOST_CA_DIR/*.crt" >/dev/null; then
        log "$tag: adding host CA certificates: $(cd "$HOST_CA_DIR" && echo ./*.crt)"
        mkdir -p "$root/usr/local/share/ca-certificates"
        cp -L "$HOST_CA_DIR"/*.crt "$root/usr/local/share/ca-certificates/"
    fi
    printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
    chmod 755 "$root/usr/sbin/policy-rc.d"
    mount -t proc proc "$root/proc"; MOUNTS+=("$root/proc")
    bind "$APT_ARCHIVES" "$root/var/cache/apt/archives"

    local apt=(env DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8 apt-get -q -y
               -o APT::Sandbox::User=root -o Dpkg::Use-Pty=0
               -o Binary::apt::APT::Keep-Downloaded-Packages=true)
    # One && chain: `set -e` does not apply inside a list that ends in ||.
    # shellcheck disable=SC2086  # word-split the package list on purpose
    {
        chroot "$root" "${apt[@]}" update &&
        chroot "$root" "${apt[@]}" upgrade &&
        chroot "$root" "${apt[@]}" install --no-install-recommends $pkgs &&
        { [ "${WITH_HOST_CA:-0}" -eq 0 ] || chroot "$root" update-ca-certificates; } &&
        { [ -z "${POST_INSTALL:-}" ] || chroot "$root" /bin/sh -ec "$POST_INSTALL"; }
    } >"$WORK/apt.log" 2>&1 || { tail -40 "$WORK/apt.log" >&2; die "apt in the $tag root failed (log above)"; }
    unmount_all

    # ---- slim and scrub
    cat >"$root/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
    rm -f "$root/usr/sbin/policy-rc.d"
    : >"$root/etc/resolv.conf"               # docker supplies these at run time
    rm -f "$root/etc/hostname"
    [ -e "$root/etc/machine-id" ] && : >"$root/etc/machine-id"
    rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/* "$root"/var/cache/debconf/*-old \
           "$root"/var/cache/ldconfig/aux-cache "$root"/tmp/* "$root"/var/tmp/* \
           "$root"/root/.cache "$root"/var/lib/dpkg/*-old
    mkdir -p "$root/var/cache/apt/archives/partial" "$root/var/lib/apt/lists/partial"
    find "$root/var/log" -type f -exec truncate -s 0 {} +
    if [ "$slim" -eq 1 ]; then
        find "$root/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete 2>/dev/null || true
        find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete 2>/dev/null || true
        rm -rf "$root"/usr/share/man/* "$root"/usr/share/groff/* "$root"/usr/share/info/* \
               "$root"/usr/share/lintian/* "$root"/usr/share/linda/* "$root"/usr/share/locale/*
    fi

    # {{uid:NAME}} / {{gid:NAME}} in a --change line: the ids of a user that
    # a package created (they are not fixed in Debian).
    local import_args=(--message "built by docker/base-images.sh from Debian $SUITE") name id
    for c in "${changes[@]}"; do
        while [[ $c =~ \{\{(uid|gid):([a-z_][a-z0-9_-]*)\}\} ]]; do
            name=${BASH_REMATCH[2]}
            if [ "${BASH_REMATCH[1]}" = uid ]; then
                id=$(awk -F: -v n="$name" '$1 == n { print $3 }' "$root/etc/passwd")
            else
                id=$(awk -F: -v n="$name" '$1 == n { print $3 }' "$root/etc/group")
            fi
            [ -n "$id" ] || die "$tag: no ${BASH_REMATCH[1]} for $name"
            c=${c//"${BASH_REMATCH[0]}"/$id}
        done
        import_args+=(--change "$c")
    done
    local old_id new_id
    old_id=$(docker image inspect -f '{{.Id}}' "$tag" 2>/dev/null || true)
    tar --numeric-owner --xattrs -C "$root" -c . | docker import "${import_args[@]}" - "$tag" >/dev/null
    new_id=$(docker image inspect -f '{{.Id}}' "$tag")
    # --force: drop the image this one replaced, unless something still uses it.
    if [ -n "$old_id" ] && [ "$old_id" != "$new_id" ]; then
        docker image rm "$old_id" >/dev/null 2>&1 || log "$tag: old image ${old_id#sha256:} still in use, kept"
    fi
    rm -rf --one-file-system "$root"
    TIMES[$tag]=$((SECONDS - start))
    log "built $tag in ${TIMES[$tag]} s"
}

# ---------------------------------------------------------------- main
declare -A TIMES=()
need_root=0
for w in "${WANT[@]}"; do
    case $w in
        python) t=$PYTHON_TAG ;; rust) t=$RUST_TAG ;; redis) t=$REDIS_TAG ;;
    esac
    if [ "$FORCE" -eq 1 ] || ! image_exists "$t"; then need_root=1; fi
done
if [ "$need_root" -eq 1 ] && { [ "$REFRESH" -eq 1 ] || [ ! -s "$ROOT_TARBALL" ]; }; then
    make_root_tarball
fi

for w in "${WANT[@]}"; do
    case $w in
    python)
        # python:3.11-slim-bookworm has `python`, `python3`, ca-certificates and
        # pip. pip is left out: the Dockerfile installs the wheel in the builder
        # (pip install --target) and copies the result, so no pip, no ensurepip,
        # no python3-venv at run time.
        WITH_HOST_CA=0 POST_INSTALL='' build_image "$PYTHON_TAG" 1 \
            "python3 python-is-python3 ca-certificates tzdata" -- \
            'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
            'ENV LANG=C.UTF-8' \
            'CMD ["python3"]'
        ;;
    rust)
        # rustc-web/cargo-web are Debian's newer Rust (bookworm-security);
        # plain `rustc` in bookworm is 1.63, too old for this crate.
        # CARGO_HOME like the public rust image, so `cargo install` lands on PATH.
        WITH_HOST_CA=1 POST_INSTALL='mkdir -p /usr/local/cargo/bin && chmod 1777 /usr/local/cargo' \
        build_image "$RUST_TAG" 1 \
            "build-essential pkg-config patchelf ca-certificates python3 python3-dev python3-venv python3-pip rustc-web cargo-web" -- \
            'ENV CARGO_HOME=/usr/local/cargo' \
            'ENV PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
            'ENV LANG=C.UTF-8' \
            'CMD ["bash"]'
        ;;
    redis)
        # The public redis image runs redis-server without a config file and
        # with protected mode off, as the redis user, in /data.
        WITH_HOST_CA=0 POST_INSTALL='mkdir -p /data && chown redis:redis /data' \
        build_image "$REDIS_TAG" 1 "redis-server" -- \
            'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
            'USER {{uid:redis}}:{{gid:redis}}' \
            'WORKDIR /data' \
            'VOLUME /data' \
            'EXPOSE 6379' \
            'ENV LANG=C.UTF-8' \
            'CMD ["redis-server", "--protected-mode", "no"]'
        ;;
    esac
done

# ---------------------------------------------------------------- report
echo
printf '%-42s %10s %12s\n' IMAGE SIZE BUILD_TIME
for w in "${WANT[@]}"; do
    case $w in python) t=$PYTHON_TAG ;; rust) t=$RUST_TAG ;; redis) t=$REDIS_TAG ;; esac
    if image_exists "$t"; then
        size=$(docker image inspect -f '{{.Size}}' "$t")
        printf '%-42s %8s MB %12s\n' "$t" "$((size / 1000000))" "${TIMES[$t]:+${TIMES[$t]} s}"
    else
        printf '%-42s %10s\n' "$t" missing
    fi
done
