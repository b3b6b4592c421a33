#!/usr/bin/env bash
# verbs_test.sh BIN [ARGS...] — runs one test program over the verbs
# transport on real Soft-RoCE (rdma_rxe). The program gets
# UDRPC_TRANSPORT=verbs and UDRPC_DEVICE=<the device>. In order:
#
# 1. Here, when run as root on a kernel that has rdma_rxe (any stock Debian
#    or Ubuntu kernel): a Soft-RoCE device is made for the run on a dummy
#    netdev made for the run too (198.18.x.1/32, the benchmarking range),
#    and both are removed afterwards. A dummy netdev because it touches
#    none of the machine's own interfaces and nothing leaves the machine:
#    rxe hands packets between its own GIDs over internally, so one device
#    serves both ends of every session. (Its MTU, 1500, gives a RoCE MTU of
#    1024, as in the guest below.)
# 2. Else inside a QEMU guest with rdma_rxe (rxe0), booted by
#    shared/tools/rxe-vm (found next to the project checkout, or in
#    UDRPC_RXE_VM_DIR). Extra binaries the test needs in the guest:
#    VERBS_TEST_BINS (space-separated).
# 3. Else exit 77 (skipped): never a pass without running.
# UDRPC_VERBS_NO_HOST=1 skips step 1 (UDRPC_VERBS_NO_GUEST=1 skips step 2).
# VERBS_TEST_IPV6=1: RoCE v2 over IPv6. The netdev under the device gets
# fd00:79::1/64 (nodad), the run waits for its GID, and the program gets
# UDRPC_TEST_URI=[fd00:79::1]:0: its Nexus binds there, and the transport
# takes the GID equal to the Nexus's address.
set -u
bin=$(readlink -f "$1")
shift
here=$(dirname "$(readlink -f "$0")")
v6=${VERBS_TEST_IPV6:-0}
v6_addr=fd00:79::1
# Adds the address to netdev $1 and waits (5 s at most) for rxe's GID of it.
v6_setup='ip -6 addr add '$v6_addr'/64 dev "$1" nodad || exit 1
for i in $(seq 50); do
    cat /sys/class/infiniband/*/ports/1/gids/* 2>/dev/null | grep -q "^fd00:0079:0000:0000:0000:0000:0000:0001" && break
    sleep 0.1
done
echo "verbs_test: RoCE v2 GID of '$v6_addr' on $1"'
v6_env=()
[ "$v6" = 1 ] && v6_env=(UDRPC_TEST_URI="[$v6_addr]:0")

# ---- 1. a Soft-RoCE device on this machine ---------------------------------
host_run() {
    [ "${UDRPC_VERBS_NO_HOST:-0}" != 1 ] && [ "$(id -u)" = 0 ] || return 125
    command -v ip >/dev/null && command -v rdma >/dev/null || return 125
    modprobe rdma_rxe 2>/dev/null || return 125
    modprobe dummy 2>/dev/null
    nd=udrxe$$
    dev=udrpc_rxe$$
    ip link add "$nd" type dummy 2>/dev/null || return 125
    trap 'rdma link delete "$dev" 2>/dev/null; ip link delete "$nd" 2>/dev/null' EXIT
    ip addr add "198.18.$((RANDOM % 256)).1/32" dev "$nd" && ip link set "$nd" up || return 125
    rdma link add "$dev" type rxe netdev "$nd" 2>/dev/null || return 125
    local i
    for i in $(seq 50); do
        rdma link show "$dev/1" 2>/dev/null | grep -q ACTIVE && break
        sleep 0.1
    done
    rdma link show "$dev/1" 2>/dev/null | grep -q ACTIVE || return 125
    sleep 0.2 # the RoCEv2 GID of the address appears just after
    echo "verbs_test: Soft-RoCE device $dev on dummy netdev $nd, made for this run"
    if [ "$v6" = 1 ]; then
        sh -c "$v6_setup" sh "$nd" || return 1
    fi
    env "${v6_env[@]}" UDRPC_TRANSPORT=verbs UDRPC_DEVICE=$dev "$bin" "$@"
}
host_run "$@"
rc=$?
if [ $rc != 125 ]; then
    exit $rc
fi

# ---- 2. a guest with one -----------------------------------------------------
rxe_vm=""
if [ "${UDRPC_VERBS_NO_GUEST:-0}" != 1 ]; then
    for d in "$here/../../shared/tools/rxe-vm" "$here/../shared/tools/rxe-vm" \
             "${UDRPC_RXE_VM_DIR:-/nonexistent}"; do
        [ -x "$d/rxe-vm" ] && rxe_vm="$d/rxe-vm" && break
    done
fi
if [ -z "$rxe_vm" ]; then
    echo "skipped: no Soft-RoCE here (needs root and rdma_rxe), and no rxe-vm to boot a guest"
    exit 77
fi
bins=(--bin "$bin")
for b in ${VERBS_TEST_BINS:-}; do
    bins+=(--bin "$(readlink -f "$b")")
done
cmd="$bin $*"
extra=()
if [ "$v6" = 1 ]; then
    cmd="sh -c '$v6_setup' sh dummy0 && $cmd"
    extra=(--env "${v6_env[0]}")
fi
"$rxe_vm" --timeout "${VERBS_TEST_TIMEOUT:-500}" --smp 2 --mem 1024 "${bins[@]}" "${extra[@]}" \
    --env UDRPC_TRANSPORT=verbs --env UDRPC_DEVICE=rxe0 -- "$cmd"
rc=$?
case $rc in
    125) echo "skipped: the guest could not be started (rxe-vm exit 125)"; exit 77 ;;
    *) exit $rc ;;
esac
