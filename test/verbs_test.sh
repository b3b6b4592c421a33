#!/usr/bin/env bash
# verbs_test.sh BIN [ARGS...] — runs one test program over the verbs
# transport on real Soft-RoCE: inside a QEMU guest with rdma_rxe (rxe0),
# booted by shared/tools/rxe-vm (found next to the project checkout, or in
# UDRPC_RXE_VM_DIR). The program gets UDRPC_TRANSPORT=verbs and
# UDRPC_DEVICE=rxe0. Extra binaries the test needs in the guest:
# VERBS_TEST_BINS (space-separated). Exit 77 (skipped) where no guest can
# be started; never a pass without running.
set -u
bin=$(readlink -f "$1")
shift
here=$(dirname "$(readlink -f "$0")")
rxe_vm=""
for d in "$here/../../shared/tools/rxe-vm" "$here/../shared/tools/rxe-vm" \
         "${UDRPC_RXE_VM_DIR:-/nonexistent}"; do
    [ -x "$d/rxe-vm" ] && rxe_vm="$d/rxe-vm" && break
done
if [ -z "$rxe_vm" ]; then
    echo "skipped: no RDMA device here and no rxe-vm to boot a guest with one"
    exit 77
fi
bins=(--bin "$bin")
for b in ${VERBS_TEST_BINS:-}; do
    bins+=(--bin "$(readlink -f "$b")")
done
"$rxe_vm" --timeout "${VERBS_TEST_TIMEOUT:-500}" --smp 2 --mem 1024 "${bins[@]}" \
    --env UDRPC_TRANSPORT=verbs --env UDRPC_DEVICE=rxe0 -- "$bin $*"
rc=$?
case $rc in
    125) echo "skipped: the guest could not be started (rxe-vm exit 125)"; exit 77 ;;
    *) exit $rc ;;
esac
