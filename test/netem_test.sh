#!/usr/bin/env bash
# netem_test.sh E2E_RPC [COUNT] — udrpc over real UDP between two network
# namespaces joined by a veth pair, both ends shaped by
#   tc qdisc ... netem loss 5% duplicate 1% reorder 10% delay 100us
# The server runs in one namespace, the client in the other: COUNT RPCs of
# 0 B to 1 MiB (log-uniform), every response byte checked, each
# continuation and each handler run exactly once (e2e_rpc's checks).
#
# Where: here, if this kernel has netem and we may create namespaces;
# otherwise inside a QEMU guest whose stock Debian kernel has both
# (shared/tools/rxe-vm, found next to the project checkout); otherwise
# exit 77 (skipped). The test creates and removes its namespaces.
set -u
if [ "${1:-}" != --inside ]; then
    bin=$(readlink -f "$1")
    count=${2:-20000}
    self=$(readlink -f "$0")
fi

inside() {
    local ns_a=udrpc_netem_a ns_b=udrpc_netem_b
    ip netns add $ns_a 2>/dev/null || return 77
    ip netns add $ns_b || { ip netns del $ns_a; return 77; }
    trap "ip netns del $ns_a 2>/dev/null; ip netns del $ns_b 2>/dev/null" RETURN
    ip link add va netns $ns_a type veth peer name vb netns $ns_b || return 77
    ip -n $ns_a addr add 10.77.0.1/24 dev va
    ip -n $ns_b addr add 10.77.0.2/24 dev vb
    for ns in $ns_a $ns_b; do ip -n $ns link set lo up; done
    ip -n $ns_a link set va up
    ip -n $ns_b link set vb up
    local shape="netem loss 5% duplicate 1% reorder 10% delay 100us"
    ip netns exec $ns_a tc qdisc add dev va root $shape 2>/dev/null || return 77
    ip netns exec $ns_b tc qdisc add dev vb root $shape || return 77
    echo "netem: $shape on both ends of va/vb"
    ip netns exec $ns_b ping -c 3 -W 1 10.77.0.1 >/dev/null 2>&1 # neighbours resolved
    # The guest is emulated (TCG): a process may stall for tens of ms, so
    # peer_timeout is 10 s here, not the default 2 s.
    ip netns exec $ns_a "$bin" --mode server --uri 10.77.0.1:31850 --timeout-s 280 \
        --rto-min-us 5000 --peer-timeout-ms 10000 &
    local server=$!
    sleep 0.5
    ip netns exec $ns_b "$bin" --mode client --server 10.77.0.1:31850 --uri 10.77.0.2:0 \
        --count "$count" --min-size 0 --max-size 1048576 --size-dist log \
        --rto-min-us 5000 --peer-timeout-ms 10000 --connect-timeout-ms 5000 --timeout-s 270
    local rc=$?
    kill $server 2>/dev/null
    wait $server 2>/dev/null
    ip netns exec $ns_a tc -s qdisc show dev va | head -3
    return $rc
}

if [ "${1:-}" = --inside ]; then
    bin=$2 # absolute already (busybox readlink has no -f)
    count=${3:-20000}
    inside
    exit $?
fi

# 1. Here, if this kernel can.
if [ "$(id -u)" = 0 ]; then
    inside
    rc=$?
    [ $rc != 77 ] && exit $rc
fi

# 2. In a guest with netem.
rxe_vm=""
for d in "$(dirname "$self")/../../shared/tools/rxe-vm" "$(dirname "$self")/../shared/tools/rxe-vm" \
         "${UDRPC_RXE_VM_DIR:-/nonexistent}"; do
    [ -x "$d/rxe-vm" ] && rxe_vm="$d/rxe-vm" && break
done
if [ -z "$rxe_vm" ]; then
    echo "skipped: no netem here and no rxe-vm to boot a guest with it"
    exit 77
fi
echo "no netem in this kernel: running in a QEMU guest ($rxe_vm)"
"$rxe_vm" --timeout 400 --smp 2 --mem 1024 --module veth --module sch_netem \
    --bin /usr/sbin/tc --bin "$bin" --file "$self" -- "$self --inside $bin $count"
rc=$?
case $rc in
    125) echo "skipped: the guest could not be started (rxe-vm exit 125)"; exit 77 ;;
    *) exit $rc ;;
esac
