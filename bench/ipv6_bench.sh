#!/usr/bin/env bash
# ipv6_bench.sh RPC_BENCH [ROUNDS] [RPC_BENCH ARGS...] — udp over IPv6
# ([::1]) beside IPv4 (127.0.0.1), in one run: rpc_bench --host 127.0.0.1
# and --host ::1 alternately, ROUNDS times (default 3), each with its raw
# UDP echo peer on the same address. Prints each run's udrpc rows and, per
# point, the medians and the ratio IPv6 / IPv4 of RPC/s and p50 latency,
# and of udrpc / raw echo within each family. Extra arguments go to every
# run (default: --transport udp --sizes 32,4096 --depths 1,8,64
# --duration 1 --peers).
set -u
bench=$(readlink -f "$1")
rounds=${2:-3}
shift $(( $# >= 2 ? 2 : 1 ))
args=("$@")
[ ${#args[@]} -gt 0 ] || args=(--transport udp --sizes 32,4096 --depths 1,8,64 --duration 1 --peers)
rows=$(mktemp)
trap 'rm -f "$rows"' EXIT
for r in $(seq "$rounds"); do
    for host in 127.0.0.1 ::1; do
        fam=v4; [ "$host" = ::1 ] && fam=v6
        out=$("$bench" --host "$host" "${args[@]}" 2>/dev/null) || { echo "rpc_bench --host $host failed"; exit 1; }
        echo "$out" | head -1
        # "size depth sess udrpc RPC/s Gbit/s p50 ...", "size depth sess raw UDP echo RPC/s ..."
        echo "$out" | awk -v f=$fam '$4 == "udrpc" { print f, "udrpc", $1, $2, $5, $7 }
                                     $4 == "raw" && $6 == "echo" { print f, "raw", $1, $2, $7, $9 }' |
            tee -a "$rows"
    done
done
echo
echo "medians of $rounds runs each (IPv4: 127.0.0.1, IPv6: ::1)"
printf "%8s %5s %12s %12s %8s %10s %10s %8s %10s %10s\n" size depth "v4 RPC/s" "v6 RPC/s" "v6/v4" \
    "v4 p50 us" "v6 p50 us" "v6/v4" "v4/raw4" "v6/raw6"
med() { sort -g | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
for pt in $(awk '{ print $3 ":" $4 }' "$rows" | sort -u -t: -k1,1n -k2,2n); do
    s=${pt%:*} d=${pt#*:}
    get() { awk -v f="$1" -v w="$2" -v s="$s" -v d="$d" -v c="$3" '$1 == f && $2 == w && $3 == s && $4 == d { print $c }' "$rows" | med; }
    r4=$(get v4 udrpc 5) r6=$(get v6 udrpc 5) l4=$(get v4 udrpc 6) l6=$(get v6 udrpc 6)
    w4=$(get v4 raw 5) w6=$(get v6 raw 5)
    awk -v s="$s" -v d="$d" -v r4="$r4" -v r6="$r6" -v l4="$l4" -v l6="$l6" -v w4="$w4" -v w6="$w6" 'BEGIN {
        printf "%8s %5s %12.0f %12.0f %7.2fx %10.2f %10.2f %7.2fx %9s %9s\n", s, d, r4, r6, r6 / r4,
               l4, l6, l6 / l4, w4 ? sprintf("%.2fx", r4 / w4) : "-", w6 ? sprintf("%.2fx", r6 / w6) : "-" }'
done
