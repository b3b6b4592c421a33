#!/usr/bin/env bash
# mlx5_cost.sh — instructions per packet of the mlx5 fast path itself, on
# the NIC model: callgrind counts only inside the transport's post and
# poll functions (tx_burst, tx_flush, rx_burst), and not inside the
# model's doorbell and step functions that they call (--toggle-collect
# toggles again on the nested ones). Divided by the packets posted.
#   bench/mlx5_cost.sh [BUILD_DIR] [RPCS]
set -euo pipefail
build=${1:-build}
rpcs=${2:-200000}
bin=$build/bench/mlx5_model_bench
[ -x "$bin" ] || { echo "mlx5_cost: $bin not built (needs rdma-core's mlx5dv)"; exit 77; }
command -v valgrind >/dev/null || { echo "mlx5_cost: valgrind missing"; exit 77; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
# A toggle flips collection on entry and exit: list the transport's
# functions and only the model functions they call (the doorbell inside
# tx_burst, the step inside rx_burst), else a model function called
# elsewhere would flip collection on.
count() { # function names...
    local args=()
    for f in "$@"; do args+=(--toggle-collect="$f"); done
    valgrind --tool=callgrind --instr-atstart=no --collect-atstart=no "${args[@]}" \
        --callgrind-out-file="$out/cg" "$bin" count --count "$rpcs" >"$out/log" 2>&1
    awk '/^totals:/ {print $2}' "$out/cg"
}
post=$(count udrpc__mlx5_tx_burst udrpc__mlx5_tx_flush nm_doorbell)
poll=$(count udrpc__mlx5_rx_burst nm_step)
pkts=$(grep -o '[0-9]* packets posted' "$out/log" | head -1 | awk '{print $1}')
[ -n "$pkts" ] && [ "$pkts" -gt 0 ] || { cat "$out/log"; exit 1; }
awk -v post="$post" -v poll="$poll" -v n="$pkts" -v r="$rpcs" 'BEGIN {
    printf "mlx5 on the NIC model, %d RPCs of 32 B at depth 64: %d packets\n", r, n
    printf "  post (tx_burst + tx_flush): %.1f instructions per packet\n", post / n
    printf "  poll (rx_burst):            %.1f instructions per packet\n", poll / n
    printf "  together:                   %.1f (target: under 100)\n", (post + poll) / n
}'
