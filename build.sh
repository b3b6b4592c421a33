#!/usr/bin/env bash
# build.sh — the README's two commands.
#   ./build.sh test     install what is missing, build, run the whole ctest suite
#                       (normal build, then the suite again under ASan+UBSan)
#   ./build.sh bench    build, then a short client/server run on UDP loopback
#   ./build.sh build    only configure and build (build/)
# Environment: UDRPC_SKIP_SANITIZE=1 skips the ASan+UBSan pass of `test`;
# JOBS=N sets build parallelism.
set -euo pipefail
cd "$(dirname "$0")"
cmd=${1:-test}
JOBS=${JOBS:-$(nproc)}

# Debian packages the build needs; gcc, cmake and pkgconf are on most machines.
PKGS=(cmake gcc make libxxhash-dev libibverbs-dev pkgconf)
need_pkgs() {
    local missing=()
    command -v cmake >/dev/null || missing+=(cmake)
    command -v cc >/dev/null || missing+=(gcc)
    command -v make >/dev/null || missing+=(make)
    [ -f /usr/include/xxhash.h ] || missing+=(libxxhash-dev)
    [ -f /usr/include/infiniband/verbs.h ] || missing+=(libibverbs-dev)
    command -v pkg-config >/dev/null || missing+=(pkgconf)
    if [ "$cmd" = bench ] && ! command -v sockperf >/dev/null; then missing+=(sockperf); fi
    echo "${missing[@]:-}"
}
install_deps() {
    local missing
    missing=$(need_pkgs)
    [ -z "$missing" ] && return 0
    if [ "$(id -u)" = 0 ]; then
        echo "build.sh: installing $missing"
        export DEBIAN_FRONTEND=noninteractive
        apt-get install -y -qq $missing >/dev/null 2>&1 ||
            { apt-get update -qq && apt-get install -y -qq $missing >/dev/null; }
    else
        echo "build.sh: missing packages; run:"
        echo "  sudo apt-get install -y $missing"
        exit 1
    fi
}

configure_build() { # dir, extra cmake args...
    local dir=$1
    shift
    local gen=()
    command -v ninja >/dev/null && gen=(-G Ninja)
    cmake -S . -B "$dir" "${gen[@]}" -DUDRPC_WERROR=ON "$@" >/dev/null
    cmake --build "$dir" -j "$JOBS"
}

install_deps
case "$cmd" in
build)
    configure_build build
    ;;
test)
    configure_build build
    (cd build && ctest --output-on-failure -j 2)
    if [ "${UDRPC_SKIP_SANITIZE:-0}" != 1 ]; then
        echo "== the same suite under ASan+UBSan (build-asan/) =="
        configure_build build-asan -DCMAKE_BUILD_TYPE=Debug "-DUDRPC_SANITIZE=address;undefined"
        (cd build-asan && ASAN_OPTIONS=detect_leaks=1 ctest --output-on-failure -j 2)
    fi
    ;;
bench)
    configure_build build
    ./build/bench/rpc_bench "${@:2}"
    ;;
*)
    echo "usage: $0 test|bench|build" >&2
    exit 2
    ;;
esac
