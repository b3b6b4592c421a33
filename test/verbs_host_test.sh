#!/usr/bin/env bash
# verbs_host_test.sh BIN — shows verbs_test.sh's first path (a Soft-RoCE
# device made on the machine for the run, as root with rdma_rxe) working:
# inside an rxe-vm guest, whose kernel has rdma_rxe, with the guest's own
# rxe0 deleted first, so that nothing was made beforehand. BIN (e2e_rpc)
# runs 3,000 checked RPCs over verbs on the device the script makes; then
# the device and its netdev must be gone. Exit 77 without rxe-vm. Its
# connect may take 10 s: the guest is emulated (no KVM), and on a loaded
# host the default second was not always enough for a device just made.
set -u
bin=$(readlink -f "$1")
here=$(dirname "$(readlink -f "$0")")
rxe_vm=""
for d in "$here/../../shared/tools/rxe-vm" "$here/../shared/tools/rxe-vm" \
         "${UDRPC_RXE_VM_DIR:-/nonexistent}"; do
    [ -x "$d/rxe-vm" ] && rxe_vm="$d/rxe-vm" && break
done
[ -n "$rxe_vm" ] || { echo "skipped: no rxe-vm to boot a guest with rdma_rxe"; exit 77; }
"$rxe_vm" --timeout 400 --smp 2 --mem 1024 --bin "$bin" --file "$here/verbs_test.sh" -- "
    rdma link delete rxe0 || exit 1
    [ -z \"\$(ls /sys/class/infiniband)\" ] || { echo 'a device is left'; exit 1; }
    UDRPC_VERBS_NO_GUEST=1 bash $here/verbs_test.sh $bin --transport verbs --mode single \
        --count 3000 --min-size 0 --max-size 65536 --size-dist log --rto-min-us 20000 \
        --connect-timeout-ms 10000 --timeout-s 300 || exit \$?
    [ -z \"\$(ls /sys/class/infiniband)\" ] || { echo 'the device was not removed'; exit 1; }
    ls /sys/class/net | grep -q udrxe && { echo 'the netdev was not removed'; exit 1; }
    echo 'host path: device made, 3000 RPCs checked, device and netdev removed'"
rc=$?
[ $rc = 125 ] && { echo "skipped: the guest could not be started"; exit 77; }
exit $rc
