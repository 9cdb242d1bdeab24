# SPDX-License-Identifier: MIT
# Scenario 4, enqueue: ENQ_N ids from a file through bin/enqueuer, seconds
# and peak RSS, next to redis-benchmark LPUSH -P 64 on the same server: runs
# bench/enqueue.sh (its own private redis-server) and keeps its raw values.
# Sourced by bench/run.

scn_enqueue() {
  local kv="$B_TMP/enqueue.kv" k v
  : >"$kv"
  BIN=$BIN BENCH_KV=$kv bash "$B_ROOT/bench/enqueue.sh" "$ENQ_N" "$ENQ_RUNS" >"$B_TMP/enqueue.md" 2>>"$B_TMP/enqueue.log" ||
    { b_log "bench/enqueue.sh failed (see $B_TMP/enqueue.log)"; }
  while read -r k v; do b_put "$k" "$v"; done <"$kv"
  local s m lp
  s=$(b_med enq.secs); m=$(b_med enq.rss_mb); lp=$(b_med enq.lpush)
  [ "$s" != n/a ] && b_put enq.ids_per_s "$(awk -v n="$ENQ_N" -v s="$s" 'BEGIN { printf "%.0f", n / s }')"
  local met=""
  [ "$s" != n/a ] && met=$(awk -v s="$s" -v m="$m" 'BEGIN { print (s < 3 && m < 20) ? 1 : 0 }')
  b_target "Enqueue $ENQ_N ids from a file" "$(b_fmt "$s") s, $(b_fmt "$m") MB peak RSS" "< 3 s and < 20 MB" \
    "$met" "-"
  {
    echo "## 4. Enqueue"
    echo
    echo "\`bench/enqueue.sh $ENQ_N $ENQ_RUNS\`: $ENQ_N ids (one per line) through \`bin/enqueuer\`"
    echo "into its own private redis-server (unix socket), \`/usr/bin/time\` for seconds and peak"
    echo "RSS, then \`redis-benchmark -t lpush -n $ENQ_N -P 64\` on the same server: the rate"
    echo "Redis takes bare pipelined list pushes, a bound for any enqueue that writes each id."
    echo "The enqueuer writes chunks of 50 ids (one hash field each, NDJSON), so it sends far"
    echo "fewer, larger commands."
    echo
    echo "| figure | median | min | max | runs |"
    echo "|---|---|---|---|---|"
    b_row "enqueue $ENQ_N ids: seconds" enq.secs
    b_row "enqueue $ENQ_N ids: peak RSS (MB)" enq.rss_mb
    b_row "enqueue: ids/s (from the median)" enq.ids_per_s
    b_row "redis-benchmark LPUSH -P 64: ops/s" enq.lpush
    echo
    [ "$lp" != n/a ] && [ "$s" != n/a ] &&
      echo "Ratio enqueuer ids/s / LPUSH ops/s: $(b_fmt "$(b_div "$(b_med enq.ids_per_s)" "$lp")")." && echo
  } >"$B_RES/md/40-enqueue.md"
  return 0
}
