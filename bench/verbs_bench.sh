#!/usr/bin/env bash
# verbs_bench.sh [BUILD_DIR] — rpc_bench over the verbs transport next to
# ibv_ud_pingpong, in one Soft-RoCE guest (shared/tools/rxe-vm). Both are
# slowed alike by the emulated CPU, so only the ratio means anything: the
# median udrpc round trip (32 B, depth 1) over ibv_ud_pingpong's mean
# round trip (it reports no median), and the same for the means.
set -u
if [ "${1:-}" = --inside ]; then
    bench=$2
    ibv_ud_pingpong -d "$RXE_DEV" -g "$RXE_GID_INDEX" -s 32 -n 20000 >/dev/null 2>&1 &
    sleep 0.5
    pp=$(ibv_ud_pingpong -d "$RXE_DEV" -g "$RXE_GID_INDEX" -s 32 -n 20000 127.0.0.1 |
         awk '/usec\/iter/ { print $(NF - 1) }')
    wait
    "$bench" --transport verbs --sizes 32 --depths 1,8 --duration 2 --no-peers \
        --json /tmp/verbs.json > /tmp/verbs.txt 2>/dev/null || { cat /tmp/verbs.txt; exit 1; }
    grep -v '^\[' /tmp/verbs.txt
    p50=$(awk '/"depth": 1,/ { match($0, /"p50_us": [0-9.]+/); print substr($0, RSTART + 10, RLENGTH - 10) }' /tmp/verbs.json)
    rps=$(awk '/"depth": 1,/ { match($0, /"rpc_per_s": [0-9.]+/); print substr($0, RSTART + 13, RLENGTH - 13) }' /tmp/verbs.json)
    awk -v pp="$pp" -v p50="$p50" -v rps="$rps" 'BEGIN {
        mean = 1e6 / rps
        printf "ibv_ud_pingpong 32 B: %.2f us per round trip (mean of 20,000)\n", pp
        printf "udrpc verbs 32 B depth 1: median %.2f us, mean %.2f us\n", p50, mean
        printf "ratio: median %.2fx, mean %.2fx of ibv_ud_pingpong (target: median <= 1.3x)\n", p50 / pp, mean / pp }'
    exit 0
fi
build=$(readlink -f "${1:-build}")
here=$(dirname "$(readlink -f "$0")")
rxe_vm=""
for d in "$here/../../shared/tools/rxe-vm" "$here/../shared/tools/rxe-vm" "${UDRPC_RXE_VM_DIR:-/nonexistent}"; do
    [ -x "$d/rxe-vm" ] && rxe_vm="$d/rxe-vm" && break
done
[ -n "$rxe_vm" ] || { echo "verbs_bench: no rxe-vm (shared/tools/rxe-vm)"; exit 77; }
self=$(readlink -f "$0")
"$rxe_vm" --timeout 300 --smp 2 --bin "$build/bench/rpc_bench" --bin ibv_ud_pingpong \
    --file "$self" -- "$self --inside $build/bench/rpc_bench"
