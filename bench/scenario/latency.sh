# SPDX-License-Identifier: MIT
# Scenario 3, latency of an idle farm: one worker waiting in BLMOVE, LAT_N
# single-entity jobs submitted one after another (the next one once the
# previous has completed, seen by polling every 20 ms).  For each job: enqueue to the
# provider's first request = mockprov's first_request_ms (its /stats,
# reset before every job) - the job's created_at; enqueue to completed =
# completed_at - created_at (both Redis's clock, ms; same machine, same
# clock); and, as the user sees it, completed_at - the wall clock just
# before the enqueuer process was started.  Sourced by bench/run.

scn_latency() {
  local i id t0 out created completed first ok=0
  local f_first="$B_TMP/lat.first" f_done="$B_TMP/lat.done" f_user="$B_TMP/lat.user"
  : >"$f_first"; : >"$f_done"; : >"$f_user"
  b_recipe "$B_TMP/r.mock.json" "http://127.0.0.1:$MOCK_PORT"
  b_flush
  b_workers_start 1 "$B_TMP/r.mock.json" "$CONC" || return 1
  sleep 1 # idle
  for i in $(seq 1 "$LAT_N"); do
    curl -s "http://127.0.0.1:$MOCK_PORT/stats/reset" >/dev/null
    t0=$(date +%s%3N)
    if ! kill -0 "${B_WPIDS[0]}" 2>/dev/null; then
      note "latency: the worker died (or was killed from outside) at job $i; restarted"
      b_workers_start 1 "$B_TMP/r.mock.json" "$CONC" || return 1
      sleep 1
    fi
    id=$(echo $((41 + i % 9)) | "$BIN/enqueuer" --provider items -q - 2>>"$B_TMP/enqueuer.log") || continue
    b_job_wait "$id" 30 || continue
    read -r created completed < <(rc HMGET "farm:{default}:job:$id" created_at completed_at | tr '\n' ' ')
    first=$(curl -s "http://127.0.0.1:$MOCK_PORT/stats" | grep -o '"first_request_ms":[0-9]*' | cut -d: -f2)
    [ -n "$first" ] && [ "$first" != 0 ] && echo $((first - created)) >>"$f_first"
    echo $((completed - created)) >>"$f_done"
    echo $((completed - t0)) >>"$f_user"
    ok=$((ok + 1))
  done
  b_workers_stop
  pct() { sort -n "$1" | awk -v p="$2" '{a[NR]=$1} END { if (NR == 0) { print "n/a"; exit } i = int(p * NR + 0.999999); if (i < 1) i = 1; print a[i] }'; }
  local p50f p99f p50d p99d p50u p99u
  p50f=$(pct "$f_first" 0.50); p99f=$(pct "$f_first" 0.99)
  p50d=$(pct "$f_done" 0.50); p99d=$(pct "$f_done" 0.99)
  p50u=$(pct "$f_user" 0.50); p99u=$(pct "$f_user" 0.99)
  b_put lat.first.p50 "$p50f"
  b_target "Idle farm: enqueue to first provider request, p50" "$p50f ms (p99 $p99f ms)" "< 5 ms" \
    "$(b_cmp "$p50f" lt 5)" "-"
  {
    echo "## 3. Latency of an idle farm"
    echo
    echo "One worker idle in \`BLMOVE\`; $LAT_N single-entity jobs one after another"
    echo "(the next once the previous completed, seen by polling the job every 20 ms; $ok"
    echo "completed). Times in ms"
    echo "with ms resolution (Redis's \`TIME\` in the scripts, mockprov's wall clock, same"
    echo "machine): *created* is the job's \`created_at\` (the job hash is written by the"
    echo "enqueuer's first script call), *first request* is mockprov's \`first_request_ms\`"
    echo "(its \`/stats\`, reset before each job), *user* starts from the wall clock just before"
    echo "the enqueuer process is spawned (process start, connect and \`SCRIPT LOAD\` included)."
    echo "Two clocks truncated to the ms: a difference can be off by 1 ms either way (so a min of -1 is possible)."
    echo
    echo "| figure (ms) | p50 | p99 | min | max |"
    echo "|---|---|---|---|---|"
    for k in first done user; do
      local f="$B_TMP/lat.$k" label
      case $k in
      first) label="created → first provider request" ;;
      done) label="created → completed_at" ;;
      user) label="enqueuer spawned → completed_at" ;;
      esac
      echo "| $label | $(pct "$f" 0.50) | $(pct "$f" 0.99) | $(pct "$f" 0) | $(pct "$f" 1) |"
    done
    echo
  } >"$B_RES/md/30-latency.md"
  return 0
}
