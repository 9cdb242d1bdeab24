#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# statusd benchmark: wrk with C connections (default 64) against
# GET /jobs/ID, next to redis-benchmark HGETALL of the same job hash with the
# same connection count, against the same private redis-server (unix
# socket, as statusd uses it) in the same run.  Each side is run RUNS times;
# the table gives the median requests per second and p99 latency, and the
# ratio statusd / Redis: how much of Redis's own HGETALL rate statusd
# serves as typed JSON over HTTP.  Both share this machine's cores with
# Redis (and wrk with statusd), so the ratio, not the absolute rate, is the
# figure to compare between machines.
# Usage: bench/statusd.sh [SECONDS] [CONNECTIONS] [RUNS]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
SECS=${1:-5}
C=${2:-64}
RUNS=${3:-3}
BIN=${BIN:-$root/bin}
command -v wrk >/dev/null || { echo "bench/statusd.sh: wrk is needed (apt-get install wrk)" >&2; exit 1; }
tmp=$(mktemp -d /tmp/efbench.XXXXXX)
redis-server --port 0 --unixsocket "$tmp/r.sock" --save '' --appendonly no --dir "$tmp" \
  --logfile "$tmp/redis.log" &
rpid=$!
spid=""
trap 'kill $spid $rpid 2>/dev/null; wait $spid $rpid 2>/dev/null; rm -rf "$tmp"' EXIT
for _ in $(seq 1 100); do redis-cli -s "$tmp/r.sock" PING 2>/dev/null | grep -q PONG && break; sleep 0.05; done
export REDIS_URL="unix://$tmp/r.sock"

# a job in the middle of its run: every public field set
seq 1 1000 >"$tmp/ids"
"$BIN/enqueuer" --provider items --job-id BENCH1 "$tmp/ids" >/dev/null 2>&1
now=$(($(date +%s%N) / 1000000))
redis-cli -s "$tmp/r.sock" HSET 'farm:{default}:job:BENCH1' status running started_at $((now - 60000)) \
  processed 420 updated 400 conflicts 5 not_found 10 errors 5 chunks_done 8 updated_at "$now" >/dev/null

"$BIN/statusd" --listen 127.0.0.1:0 --port-file "$tmp/port" --log-level warn 2>"$tmp/statusd.log" &
spid=$!
for _ in $(seq 1 100); do [ -s "$tmp/port" ] && break; sleep 0.05; done
url="http://127.0.0.1:$(cat "$tmp/port")/jobs/BENCH1"
curl -sf "$url" >/dev/null || { echo "statusd does not answer" >&2; cat "$tmp/statusd.log" >&2; exit 1; }

# wrk prints latency as 1.23ms / 456.00us / 1.20s: to ms
to_ms() { awk '{ v=$1; if (v ~ /us$/) { sub(/us$/,"",v); v/=1000 } else if (v ~ /ms$/) { sub(/ms$/,"",v) } else if (v ~ /s$/) { sub(/s$/,"",v); v*=1000 } printf "%.3f\n", v }'; }
median() { sort -g | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; print m}'; }

wrk -t2 -c"$C" -d1s "$url" >/dev/null 2>&1 # warm up
sd_rps=(); sd_p99=(); rd_rps=(); rd_p99=(); errors=0
for _ in $(seq 1 "$RUNS"); do
  wrk -t2 -c"$C" -d"${SECS}s" --latency "$url" >"$tmp/wrk" 2>&1
  sd_rps+=("$(awk '/^Requests\/sec:/ {print $2}' "$tmp/wrk")")
  sd_p99+=("$(awk '$1 == "99%" {print $2}' "$tmp/wrk" | to_ms)")
  e=$(grep -Eo 'Non-2xx or 3xx responses: [0-9]+' "$tmp/wrk" | grep -Eo '[0-9]+$' || true)
  errors=$((errors + ${e:-0}))
  n=$(awk -v r="${sd_rps[-1]}" -v s="$SECS" 'BEGIN { n = int(r * s); print (n < 10000 ? 10000 : n) }')
  redis-benchmark -s "$tmp/r.sock" -c "$C" -n "$n" --csv HGETALL 'farm:{default}:job:BENCH1' \
    >"$tmp/rb" 2>/dev/null
  # "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
  rd_rps+=("$(tail -1 "$tmp/rb" | tr -d '"' | cut -d, -f2)")
  rd_p99+=("$(tail -1 "$tmp/rb" | tr -d '"' | cut -d, -f7)")
done
s_rps=$(printf '%s\n' "${sd_rps[@]}" | median)
s_p99=$(printf '%s\n' "${sd_p99[@]}" | median)
r_rps=$(printf '%s\n' "${rd_rps[@]}" | median)
r_p99=$(printf '%s\n' "${rd_p99[@]}" | median)
ratio=$(awk -v a="$s_rps" -v b="$r_rps" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')
bytes=$(curl -s "$url" | wc -c)
rss=$(awk '/VmHWM/ {printf "%.1f", $2/1024}' "/proc/$spid/status")
echo "| figure ($C connections, ${SECS} s x $RUNS runs, median) | requests/s | p99 latency (ms) |"
echo "|---|---|---|"
echo "| statusd GET /jobs/ID ($bytes bytes of JSON) | $s_rps | $s_p99 |"
echo "| redis-benchmark HGETALL of the same hash | $r_rps | $r_p99 |"
echo "| ratio statusd / Redis | $ratio | |"
echo
echo "statusd peak RSS: ${rss} MB; non-2xx answers during the runs: $errors"
