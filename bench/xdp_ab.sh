#!/usr/bin/env bash
# xdp_ab.sh WHAT RPC_BENCH — two settings of the xdp transport against each
# other, alternating, ROUNDS rounds (2), between two network namespaces
# joined by a veth at MTU 1500, server on core 1, client on core 0, one
# second per point: compare the rows of one round. WHAT:
#   in_place  UDRPC_XDP_IN_PLACE=0 against 1 (copying sends against
#             in-place sends): 4 KiB, 64 KiB and 1 MiB RPCs at depths 1
#             and 8, one session (AF_XDP in SKB mode, copy);
#   mode      UDRPC_XDP_MODE=skb against native: 32 B at depths 1, 8 and
#             64, 8 sessions (copy: veth has no zero-copy).
# Needs root and `ip netns`; else exit 77.
set -u
what=$1
bench=$(readlink -f "$2")
case $what in
in_place) var=UDRPC_XDP_IN_PLACE values="0 1"
          args=(--sizes 4096,65536,1048576 --depths 1,8 --sessions 1) ;;
mode)     var=UDRPC_XDP_MODE values="skb native"
          args=(--sizes 32 --depths 1,8,64 --sessions 8) ;;
*)        echo "usage: xdp_ab.sh in_place|mode RPC_BENCH"; exit 2 ;;
esac
. "$(dirname "$(readlink -f "$0")")/../test/veth_ns.sh"
veth_ns_up udrpc_xab 10.79.0
cores=()
[ "$(nproc)" -ge 2 ] && cores=(--server-core 1 --client-core 0)
for r in $(seq "${ROUNDS:-2}"); do
    for v in $values; do
        echo "== round $r: $var=$v"
        env "$var=$v" ip netns exec "$ns_b" "$bench" --transport xdp "${args[@]}" --repeat 1 \
            --duration 1 --host 10.79.0.2 --server-netns "$ns_a" --server-host 10.79.0.1 \
            "${cores[@]}" || exit 1
    done
done
