#!/usr/bin/env bash
# gate_slowdown_test.sh SOURCE_DIR BUILD_DIR — the regression gate must fail
# a build whose hot path does more work: configure SOURCE_DIR again with
# -DUDRPC_BENCH_SLOWDOWN=20 (about 60 more instructions per packet), build
# the gate's workload, and run bench/gate on it against the committed
# baseline. Passes only if the gate says FAIL on instruction counts.
set -u
src=$1
out=$2/gate-slowdown
command -v valgrind >/dev/null || { echo "skipped: no valgrind"; exit 77; }
gen=()
command -v ninja >/dev/null && gen=(-G Ninja)
cmake -S "$src" -B "$out" "${gen[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DUDRPC_BENCH_SLOWDOWN=20 -DUDRPC_BUILD_TESTS=OFF >/dev/null || exit 1
cmake --build "$out" --target gate_workload cg_split -j 2 >/dev/null || exit 1
"$src/bench/gate" --build "$out" --no-wall > "$out/gate.txt" 2>&1
rc=$?
cat "$out/gate.txt"
if [ $rc = 1 ] && grep -q "instr_per_rpc.*FAIL" "$out/gate.txt"; then
    echo "gate_slowdown_test: the gate caught the slowed build"
    exit 0
fi
echo "gate_slowdown_test: the gate did NOT fail the slowed build (exit $rc)"
exit 1
