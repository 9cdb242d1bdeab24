#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Enqueue benchmark: 1M ids from a file through bin/enqueuer (seconds and
# peak RSS, median of RUNS runs with min and max), next to redis-benchmark's
# pipelined LPUSH rate against the same private redis-server in the same
# run.  Prints a Markdown table.  Usage: bench/enqueue.sh [N] [RUNS]
# With BENCH_KV=FILE it also appends the raw values, one "KEY VALUE" line per
# measurement (enq.secs, enq.rss_mb, enq.lpush), for bench/run.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
N=${1:-1000000}
RUNS=${2:-5}
BIN=${BIN:-$root/bin}
tmp=$(mktemp -d /tmp/efbench.XXXXXX)
redis-server --port 0 --unixsocket "$tmp/r.sock" --save '' --appendonly no --dir "$tmp" \
  --logfile "$tmp/redis.log" &
rpid=$!
trap 'kill $rpid 2>/dev/null; wait $rpid 2>/dev/null; rm -rf "$tmp"' EXIT
for _ in $(seq 1 100); do redis-cli -s "$tmp/r.sock" PING 2>/dev/null | grep -q PONG && break; sleep 0.05; done
seq 1 "$N" >"$tmp/ids"
median() { sort -n | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%s %s %s\n", m, a[1], a[NR]}'; }
secs=(); rss=()
for i in $(seq 1 "$RUNS"); do
  redis-cli -s "$tmp/r.sock" FLUSHALL >/dev/null
  /usr/bin/time -f "%e %M" -o "$tmp/time" "$BIN/enqueuer" --redis "unix://$tmp/r.sock" \
    --provider items -q "$tmp/ids" >/dev/null
  read -r s m <"$tmp/time"; secs+=("$s"); rss+=("$m")
  chunks=$(redis-cli -s "$tmp/r.sock" LLEN 'farm:{default}:pending')
  if [ "$chunks" != $(((N + 49) / 50)) ]; then
    echo "bench/enqueue.sh: run $i left $chunks chunk refs in pending, expected $(((N + 49) / 50))" >&2
    exit 1
  fi
  if [ -n "${BENCH_KV:-}" ]; then
    echo "enq.secs $s" >>"$BENCH_KV"
    echo "enq.rss_mb $(awk -v k="$m" 'BEGIN{printf "%.1f", k/1024}')" >>"$BENCH_KV"
  fi
done
read -r s_med s_min s_max < <(printf '%s\n' "${secs[@]}" | median)
read -r m_med m_min m_max < <(printf '%s\n' "${rss[@]}" | median)
redis-cli -s "$tmp/r.sock" FLUSHALL >/dev/null
lp=$(redis-benchmark -s "$tmp/r.sock" -t lpush -n "$N" -P 64 -q 2>/dev/null | tr '\r' '\n' |
  grep -Eo 'LPUSH: [0-9.]+' | tail -1 | awk '{print $2}')
[ -n "${BENCH_KV:-}" ] && [ -n "${lp:-}" ] && echo "enq.lpush $lp" >>"$BENCH_KV"
ids_per_s=$(awk -v n="$N" -v s="$s_med" 'BEGIN { printf "%.0f", (s > 0 ? n / s : 0) }')
ratio=$(awk -v a="$ids_per_s" -v b="${lp:-0}" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')
echo "| figure | median | min | max |"
echo "|---|---|---|---|"
echo "| enqueue $N ids: seconds | $s_med | $s_min | $s_max |"
echo "| enqueue $N ids: peak RSS (MB) | $(awk -v k="$m_med" 'BEGIN{printf "%.1f", k/1024}') | $(awk -v k="$m_min" 'BEGIN{printf "%.1f", k/1024}') | $(awk -v k="$m_max" 'BEGIN{printf "%.1f", k/1024}') |"
echo "| enqueue: ids/s | $ids_per_s | | |"
echo "| redis-benchmark LPUSH -P 64: ops/s | ${lp:-n/a} | | |"
echo "| ratio ids/s / LPUSH ops/s | $ratio | | |"
