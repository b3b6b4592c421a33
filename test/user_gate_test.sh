#!/usr/bin/env bash
# user_gate_test.sh SOURCE_DIR BUILD_DIR — bench/udrpc_gate on a user's
# handlers (apps/kv's plugin): a baseline written with --update, a run that
# passes against it (instructions on loop, and a short wall-clock sweep
# over udp repeated twice), then the same gate on libkv_plugin_slow.so, whose
# GET handler has a planted slowdown of about a fifth: it must fail on
# get_handler_instr_per_rpc, and on nothing that is udrpc's or PUT's, and
# say so in the Markdown table too.
set -u
src=$1 build=$2
command -v valgrind >/dev/null || { echo "skipped: no valgrind"; exit 77; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
gate() { # plugin extra-args...
    local lib=$1
    shift
    "$src/bench/udrpc_gate" --build "$build" --handler-lib "$build/apps/kv/$lib" \
        --plugin-arg keys=1000,value=64 --count 5000 \
        --instr get "--transport loop --depth 8 --req-type 10" \
        --instr put "--transport loop --depth 8 --req-type 11" \
        --baseline "$out/base.json" "$@"
}
gate libkv_plugin.so --update > "$out/update.txt" 2>&1 || { cat "$out/update.txt"; fail "--update"; }
cat "$out/update.txt"
for m in get_client get_server get_continuation get_handler put_client put_server put_handler; do
    grep -q "\"${m}_instr_per_rpc\": [0-9]" "$out/base.json" || fail "no $m in the baseline"
done
gate libkv_plugin.so --wall kv "--transport udp --req-types 10 --depths 1 --duration 0.2" \
    --repeat 2 --wall-drop 0.95 > "$out/pass.txt" 2>&1
rc=$?
cat "$out/pass.txt"
[ $rc = 0 ] || fail "the unchanged plugin: exit $rc"
grep -q "kv_GET_d1_rps_vs_raw .* new (no baseline)" "$out/pass.txt" || fail "no wall metric"
grep -q "udrpc gate: passed" "$out/pass.txt" || fail "no pass line"

gate libkv_plugin_slow.so --markdown "$out/gate.md" > "$out/slow.txt" 2>&1
rc=$?
cat "$out/slow.txt"
[ $rc = 1 ] || fail "the slowed plugin: exit $rc, not 1"
grep -q "^get_handler_instr_per_rpc .* FAIL" "$out/slow.txt" || fail "the handler's rise not caught"
[ "$(grep -c 'FAIL$' "$out/slow.txt")" = 1 ] || fail "more than the handler failed"
rise=$(awk '/^get_handler_instr_per_rpc/ { sub("%", "", $4); print $4 + 0 }' "$out/slow.txt")
awk -v r="$rise" 'BEGIN { exit !(r >= 10 && r <= 40) }' || fail "a rise of $rise%, not about 20%"
grep -q '| get_handler_instr_per_rpc | .* | \*\*FAIL\*\* |' "$out/gate.md" || fail "Markdown"
grep -q "^### udrpc gate: FAILED" "$out/gate.md" || fail "Markdown verdict"
echo "user gate: caught the planted slowdown (+$rise% in GET's handler)"
