#!/usr/bin/env bash
# mlx5-smoke.sh — the mlx5 fast path's first run on a real ConnectX NIC.
#
# The fast path (transport/mlx5/) has been verified against the software
# NIC model (test/nicmodel/) only: no machine of this project has a
# ConnectX. This script is for a user who has one (ConnectX-4 or newer,
# RoCE or InfiniBand, a port ACTIVE, rdma-core installed):
#
#   ./build.sh build && test/hw/mlx5-smoke.sh [BUILD_DIR] [DEVICE]
#
# DEVICE (e.g. mlx5_0) is optional: the first mlx5 device with an active
# port otherwise. Both endpoints run on this host, so packets loop back
# through the NIC between two QPs of one port (RoCE loopback must not be
# disabled on the port). Steps, each must pass:
#   1. connect and 1,000 RPCs (catches set-up problems early);
#   2. 1,000,000 RPCs of 0 B .. one packet, client and server in two
#      threads, every response byte checked, each continuation and each
#      handler exactly once;
#   3. the same across two processes;
#   4. 2,000 multi-packet RPCs up to 1 MiB (zero-copy gathers);
#   5. the benchmark sweep (sizes 32, 4096, 65536 x depths 1, 8, 64) on
#      mlx5, then on verbs for comparison, JSON into BUILD_DIR/mlx5-smoke/.
# Exit 0: all passed; 77: no mlx5 device here; else the failing step's.
# Please report the output (and any "mlx5:" error lines) with the NIC
# model and firmware (ibv_devinfo -v).
set -u
build=${1:-build}
export UDRPC_DEVICE=${2:-${UDRPC_DEVICE:-}}
e2e=$build/test/e2e_rpc
bench=$build/bench/rpc_bench
for b in "$e2e" "$bench"; do
    [ -x "$b" ] || { echo "mlx5-smoke: $b not built (./build.sh build first)"; exit 1; }
done
out=$build/mlx5-smoke
mkdir -p "$out"

step() { # name, command...
    local name=$1
    shift
    echo "== $name: $*"
    "$@" 2>&1 | tee "$out/$name.log"
    local rc=${PIPESTATUS[0]}
    if [ "$rc" = 77 ]; then
        echo "mlx5-smoke: skipped: no mlx5 device with an active port here"
        exit 77
    fi
    if [ "$rc" != 0 ]; then
        echo "mlx5-smoke: FAILED at $name (exit $rc)"
        exit "$rc"
    fi
}

pkt="--min-size 0 --max-size pkt"
step connect "$e2e" --transport mlx5 --mode single --count 1000 $pkt --timeout-s 60
step threads_1m "$e2e" --transport mlx5 --mode threads --count 1000000 $pkt --timeout-s 600
step procs_1m "$e2e" --transport mlx5 --mode procs --count 1000000 $pkt --timeout-s 600
step multipkt "$e2e" --transport mlx5 --mode threads --count 2000 --min-size 0 \
    --max-size 1048576 --size-dist log --timeout-s 600
step bench_mlx5 "$bench" --transport mlx5 --threads --sizes 32,4096,65536 --depths 1,8,64 \
    --sessions 8 --duration 2 --json "$out/bench_mlx5.json"
step bench_verbs "$bench" --transport verbs --threads --sizes 32,4096,65536 --depths 1,8,64 \
    --sessions 8 --duration 2 --json "$out/bench_verbs.json"
echo "mlx5-smoke: all steps passed; logs and JSON in $out"
