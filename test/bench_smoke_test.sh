#!/usr/bin/env bash
# bench_smoke_test.sh RPC_BENCH TRANSPORT [ARGS...] — rpc_bench's outputs,
# briefly: a 2 x 2 sweep with --verify, --json, --csv and --plot must exit
# 0, report no differing response, write 4 JSON objects with every field,
# a CSV of a header and 4 rows, and the plot data and script (the SVGs
# too, where gnuplot is installed).
set -eu
bench=$1
tp=$2
shift 2
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
"$bench" --transport "$tp" --sizes 32,3000 --depths 1,8 --duration 0.2 --verify \
    --json "$out/b.json" --csv "$out/b.csv" --plot "$out/plots" "$@" | tee "$out/stdout"
grep -q "verify: 0 responses differed" "$out/stdout"
[ "$(grep -c '"transport"' "$out/b.json")" = 4 ]
for field in rpc_per_s goodput_gbps p50_us p90_us p99_us p999_us max_us retransmits \
             cpu_client_s cpu_server_s rpc_per_s_per_core commit host sessions \
             raw_udp_rpc_per_s gso_udp_rpc_per_s gso_udp_p50_us udp_gso_pkts_per_send; do
    [ "$(grep -c "\"$field\"" "$out/b.json")" = 4 ] || { echo "no $field in JSON"; exit 1; }
done
# shm's peers (--peers): the ring floor of every point; at a large size,
# sent in 64 KiB records (the last shorter) and more than its 4 MiB ring
# holds in flight, with its goodput against memcpy
if [ "$tp" = shm ]; then
    for field in shm_floor_rpc_per_s shm_floor_p50_us rps_vs_floor_min; do
        [ "$(grep -c "\"$field\"" "$out/b.json")" = 4 ] || { echo "no $field in JSON"; exit 1; }
    done
    if printf '%s\n' "$@" | grep -qx -- --peers; then
        "$bench" --transport shm --sizes 1000000 --depths 8 --duration 0.2 --peers \
            --json "$out/big.json" > "$out/big.stdout"
        grep -q '"shm_floor_goodput_vs_memcpy": [0-9.]*[1-9]' "$out/big.json" ||
            { cat "$out/big.stdout"; echo "no floor goodput at 1,000,000 B"; exit 1; }
        grep -q '"shm_floor_rpc_per_s": [1-9]' "$out/big.json" ||
            { cat "$out/big.stdout"; echo "the floor moved nothing at 1,000,000 B"; exit 1; }
    fi
fi
[ "$(wc -l < "$out/b.csv")" = 5 ]
# every point measured something
awk -F, 'NR > 1 && $5 + 0 <= 0 { exit 1 }' "$out/b.csv"
test -s "$out/plots/bench.dat" && test -s "$out/plots/plots.gp"
if command -v gnuplot >/dev/null; then
    test -s "$out/plots/throughput_vs_depth.svg" && test -s "$out/plots/latency_vs_size.svg"
fi
echo "bench smoke ($tp $*): ok"
