#!/usr/bin/env bash
# build.sh — the README's two commands.
#   ./build.sh test     install what is missing, build, run the whole ctest suite
#                       (normal build, then the suite again under ASan+UBSan,
#                       then the multi-threaded tests under TSan)
#   ./build.sh bench    build, then rpc_bench's sweeps: the default transport
#                       between processes of this host (auto: shm; 32 B to
#                       1 MiB x depths 1, 8, 64, 8 sessions, its peers in the
#                       same run), then udp over loopback (32 to 65536 B, the
#                       UDP peers), with JSON, CSV and SVG plots in
#                       build/bench-results/; extra arguments go to rpc_bench
#                       (e.g. ./build.sh bench --sizes 32 --depths 1)
#   ./build.sh gate     the regression gate (bench/gate) on build/
#   ./build.sh fuzz [S] the libFuzzer targets (clang; build-fuzz/), each for S
#                       seconds (default 60) from the seeds in test/fuzz/corpus;
#                       any crash fails
#   ./build.sh build    only configure and build (build/)
# Environment: UDRPC_SKIP_SANITIZE=1 skips the sanitizer passes of `test`;
# JOBS=N sets build parallelism.
set -euo pipefail
cd "$(dirname "$0")"
cmd=${1:-test}
JOBS=${JOBS:-$(nproc)}

# Debian packages the build needs; gcc, cmake and pkgconf are on most machines.
PKGS=(cmake gcc make libxxhash-dev libibverbs-dev libbpf-dev pkgconf valgrind doxygen)
need_pkgs() {
    local missing=()
    command -v cmake >/dev/null || missing+=(cmake)
    command -v cc >/dev/null || missing+=(gcc)
    command -v make >/dev/null || missing+=(make)
    [ -f /usr/include/xxhash.h ] || missing+=(libxxhash-dev)
    [ -f /usr/include/infiniband/verbs.h ] || missing+=(libibverbs-dev)
    [ -f /usr/include/bpf/libbpf.h ] || missing+=(libbpf-dev) # the xdp transport
    command -v pkg-config >/dev/null || missing+=(pkgconf)
    command -v valgrind >/dev/null || missing+=(valgrind)
    command -v doxygen >/dev/null || missing+=(doxygen)
    # nft_gso.udp's faults between network namespaces (root only: else skipped)
    if [ "$cmd" = test ] && [ "$(id -u)" = 0 ]; then
        command -v nft >/dev/null || missing+=(nftables)
    fi
    if [ "$cmd" = fuzz ]; then
        command -v clang >/dev/null || missing+=(clang)
        ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a >/dev/null 2>&1 ||
            missing+=(libclang-rt-dev)
    fi
    if [ "$cmd" = bench ] || [ "$cmd" = gate ]; then
        command -v sockperf >/dev/null || missing+=(sockperf)
        command -v gnuplot >/dev/null || missing+=(gnuplot-nox)
    fi
    if [ "$cmd" = bench ]; then
        command -v ucx_perftest >/dev/null || missing+=(ucx-utils) # shm's UCX peer
    fi
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

# One ctest pass: every pass runs even when an earlier one failed; the
# failures are gathered for the summary at the end.
failures=()
run_suite() { # dir "ENV=..." ctest-args...
    local dir=$1 env=$2
    shift 2
    if ! (cd "$dir" && env $env ctest --output-on-failure "$@"); then
        local line
        while IFS=: read -r _ line; do
            failures+=("$dir|$env|$line")
        done < "$dir/Testing/Temporary/LastTestsFailed.log"
    fi
}

# What a failing suite says: each failed test, and how to run it alone.
summarize() {
    [ ${#failures[@]} = 0 ] && { echo "== all passes passed =="; return 0; }
    echo
    echo "== ${#failures[@]} test(s) failed; each reruns alone, with its output, as shown =="
    local f dir env name cmd
    for f in "${failures[@]}"; do
        IFS='|' read -r dir env name <<< "$f"
        cmd=$(cd "$dir" && ctest -N -V -R "^${name}\$" | sed -n 's/^[0-9]*: Test command: //p' | head -n 1)
        echo "FAILED: $name ($dir)"
        echo "  rerun: (cd $dir && ${env:+$env }ctest -R '^${name}\$' --output-on-failure)"
        [ -n "$cmd" ] && echo "  or directly: ${env:+$env }$cmd"
    done
    return 1
}

install_deps
case "$cmd" in
build)
    configure_build build
    ;;
test)
    configure_build build
    run_suite build "" -j 2
    if [ "${UDRPC_SKIP_SANITIZE:-0}" != 1 ]; then
        echo "== the same suite under ASan+UBSan (build-asan/) =="
        configure_build build-asan -DCMAKE_BUILD_TYPE=Debug "-DUDRPC_SANITIZE=address;undefined"
        run_suite build-asan "ASAN_OPTIONS=detect_leaks=1" -j 2
        echo "== the multi-threaded tests under TSan (build-tsan/) =="
        configure_build build-tsan -DCMAKE_BUILD_TYPE=Debug -DUDRPC_SANITIZE=thread
        run_suite build-tsan "TSAN_OPTIONS=halt_on_error=1" -L threaded
    fi
    summarize
    ;;
bench)
    configure_build build
    mkdir -p build/bench-results
    # The default transport between two processes of this host: shm (auto),
    # next to its ring floor, UCX over shared memory and memcpy...
    ./build/bench/rpc_bench --sizes 32,4096,65536,1048576 --depths 1,8,64 --sessions 8 \
        --duration 1 --peers --json build/bench-results/shm.json \
        --csv build/bench-results/shm.csv "${@:2}"
    # ...and udp, over loopback, next to a raw UDP echo, the same with GSO
    # and GRO, and sockperf
    ./build/bench/rpc_bench --transport udp --sizes 32,4096,65536 --depths 1,8,64 --sessions 8 \
        --duration 1 --peers --json build/bench-results/bench.json \
        --csv build/bench-results/bench.csv --plot build/bench-results "${@:2}"
    # 1 MiB RPCs between two network namespaces at MTU 1500, udp with and
    # without GSO/GRO (root only; skipped elsewhere)
    bench/veth_bench.sh build/test/e2e_rpc 200 3 || true
    # udp over IPv6 ([::1]) beside IPv4 (127.0.0.1), alternating, 3 rounds
    bench/ipv6_bench.sh build/bench/rpc_bench 3 || true
    ;;
gate)
    configure_build build
    bench/gate "${@:2}"
    ;;
fuzz)
    secs=${2:-60}
    configure_build build-fuzz -DCMAKE_C_COMPILER=clang -DUDRPC_FUZZ=ON \
        "-DUDRPC_SANITIZE=address;undefined;fuzzer-no-link" -DUDRPC_BUILD_TESTS=OFF \
        -DUDRPC_BUILD_BENCH=OFF
    for t in rx sm uri shm; do
        work=build-fuzz/corpus/$t
        mkdir -p "$work" build-fuzz/artifacts
        echo "== fuzz_$t for $secs s =="
        rc=0
        ./build-fuzz/test/fuzz/fuzz_$t -max_total_time="$secs" -print_final_stats=1 \
            -artifact_prefix=build-fuzz/artifacts/ "$work" test/fuzz/corpus/$t \
            > build-fuzz/fuzz_$t.log 2>&1 || rc=$?
        grep -E "stat::number_of_executed_units|DONE|ERROR|SUMMARY|runtime error" \
            build-fuzz/fuzz_$t.log || true
        if [ $rc != 0 ]; then
            tail -40 build-fuzz/fuzz_$t.log
            echo "fuzz_$t found a crash (exit $rc): build-fuzz/artifacts/"
            exit 1
        fi
    done
    ;;
*)
    echo "usage: $0 test|bench|gate|fuzz|build" >&2
    exit 2
    ;;
esac
