# SPDX-License-Identifier: MIT
# Scenario 2, Redis cost per entity at chunk size 50.  (a) Round trips our
# programs send: a separate, smaller run (MONITOR slows Redis) with
# `redis-cli MONITOR` capturing every command; our programs talk over the
# unix socket, so lines from `unix:` are theirs, lines from `lua` ran inside
# a script (not a round trip; an EVALSHA counts once), and the benchmark's
# own polls come over TCP and are left out.  (b) all commands including
# those inside scripts and (c) redis-server CPU come from INFO deltas of the
# throughput runs (scenario 1), which run without MONITOR.
# Sourced by bench/run.

scn_roundtrips() {
  local ids="$B_TMP/ids.rt" mon="$B_TMP/monitor.txt" id ours lua n
  seq 1 "$RT_N" >"$ids"
  n=$RT_N
  b_recipe "$B_TMP/r.mock.json" "http://127.0.0.1:$MOCK_PORT"
  b_flush
  b_workers_start 1 "$B_TMP/r.mock.json" "$CONC" || return 1
  b_monitor_start "$mon" || { b_workers_stop; return 1; }
  id=$(b_enqueue "$ids")
  b_job_wait "$id" 300 || b_log "round-trip job did not complete"
  b_monitor_stop
  b_workers_stop
  read -r ours lua < <(b_monitor_count "$mon")
  b_put rt.per_entity "$(b_div "$ours" "$n")"
  b_put rt.lua_per_entity "$(b_div "$lua" "$n")"

  # which command (and which script, by its SHA1) the round trips were
  b_monitor_bycmd "$mon" "$n" >"$B_RES/rt.breakdown"

  local rt cmds cpu
  rt=$(b_med rt.per_entity)
  b_target "Round trips our programs send per entity (chunk size 50)" "$(b_fmt "$rt")" "≤ 0.25" \
    "$(b_cmp "$rt" le 0.25)" "-"
  {
    echo "## 2. Redis cost per entity (chunk size 50)"
    echo
    echo "(a) Round trips: a separate run of $n entities (1 worker, mockprov) with"
    echo "\`redis-cli MONITOR\` capturing every command from just before the enqueue to the"
    echo "job's completion. Our programs (enqueuer and worker) use the unix socket; lines whose"
    echo "source is \`lua\` ran inside a script and are not round trips (an EVALSHA counts once);"
    echo "the benchmark's own polls use TCP and are left out. MONITOR slows Redis, so this run"
    echo "is not one of the throughput runs. It includes the worker's 1 s housekeeping tick"
    echo "(heartbeat, reaper, lease extension) during the job."
    echo
    echo "(b) All commands including those run inside scripts: the sum of \`calls\` in"
    echo "\`INFO commandstats\`, after minus before, from just before the enqueue to the completion"
    echo "(enqueuer and workers together; the benchmark's own polls and INFO subtracted)."
    echo "(c) redis-server CPU: \`used_cpu_sys + used_cpu_user\` from \`INFO cpu\`, same interval."
    echo "(b) and (c) come from the throughput runs of scenario 1 (mockprov, no MONITOR)."
    echo
    echo "| figure | median | min | max | runs |"
    echo "|---|---|---|---|---|"
    b_row "(a) round trips per entity (ours, MONITOR)" rt.per_entity
    b_row "(a') commands run inside scripts per entity (MONITOR)" rt.lua_per_entity
    b_row "(b) Redis commands per entity, incl. inside scripts, 1 worker" tp.mock.w1.cmds
    b_row "(b) Redis commands per entity, incl. inside scripts, 2 workers" tp.mock.w2.cmds
    b_row "(c) redis-server CPU µs per entity, 1 worker" tp.mock.w1.cpu
    b_row "(c) redis-server CPU µs per entity, 2 workers" tp.mock.w2.cpu
    echo
    echo "Round trips of the MONITOR run by command ($n entities):"
    echo
    echo "| command | count | per entity |"
    echo "|---|---|---|"
    cat "$B_RES/rt.breakdown"
    echo
    if [ -s "$B_RES/cost.bycmd" ]; then
      echo "Where (b) and (c) go: \`INFO commandstats\` delta of the first 1-worker mockprov"
      echo "throughput run, per entity (\`usec\` is Redis's own time in the command; an EVALSHA's"
      echo "time includes the commands its script ran, which are listed again under their names):"
      echo
      echo "| command | calls per entity | µs per entity |"
      echo "|---|---|---|"
      cat "$B_RES/cost.bycmd"
      echo
    fi
  } >"$B_RES/md/20-redis-cost.md"
  return 0
}
