#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Chaos and faults, with real processes: real redis-server, real workers,
# statusd and bin/mockprov.  Proves at-least-once delivery with exactly-once
# effects under the faults that really happen:
#   crash      a random worker SIGKILLed every 2 s (and restarted) through a job
#   stall      a worker SIGSTOPped past its visibility timeout, then SIGCONTed
#   partition  a worker silently cut off from Redis (packets dropped, no RST)
#   redis      Redis killed mid-job (AOF always / everysec / ~1 s of writes
#              lost), Redis unavailable for a while (workers, statusd, enqueuer)
#   provider   429 storms, 5xx, hangs, resets, malformed and 100 MB bodies,
#              trickles, redirect loops, HTML pages; worker RSS sampled
#   memory     a big job with worker and statusd RSS sampled
# Every job is checked against the mock's own truth (`mockprov --expect`),
# entity by entity.  This is the quick form (part of `make test`, under
# 3 minutes); `make soak` runs the long form of the same scenarios
# (tests/soak/run.sh sets EF_CHAOS_PROFILE=soak).  EF_CHAOS_ONLY="crash
# memory" runs a subset.  In `make test` the memory scenario, which
# measures no time, runs in the parallel group as test_chaos_memory.sh:
# the quick form here leaves it out unless EF_CHAOS_ONLY names it.
# EF_CHAOS_CUT=neigh forces the partition fallback
# (a neighbour-table blackhole, used where iptables is missing).  Lines
# "figure: NAME = VALUE" are the numbers docs/reliability.md quotes.
source "$(dirname "$0")/lib.sh"

PROFILE=${EF_CHAOS_PROFILE:-quick}
ONLY=${EF_CHAOS_ONLY:-}
if [ "$PROFILE" = soak ]; then
  CRASH_N=100000; CRASH_MAX_S=600
  STALL_N=4000; STALL_ROUNDS=5
  PART_N=3000; PART_CUT_S=30
  REDIS_N=40000; REDIS_CRASHES=3; DOWN_S=30
  FAULT_N=100; MIXED_N=5000
  MEM_N=1000000; MEM_LAT=1
else
  CRASH_N=20000; CRASH_MAX_S=120
  STALL_N=3000; STALL_ROUNDS=1
  PART_N=1500; PART_CUT_S=8
  REDIS_N=4000; REDIS_CRASHES=1; DOWN_S=10
  FAULT_N=20; MIXED_N=300
  MEM_N=100000; MEM_LAT=4
fi
CAT=$((MEM_N > CRASH_N ? MEM_N + 10 : CRASH_N + 10)) # catalogue: every id of every job
RSS_LIMIT_KB=30720

ef_setup
# EF_CHAOS_LOGS=DIR keeps every log of the run there (the soak runner sets it)
if [ -n "${EF_CHAOS_LOGS:-}" ]; then
  trap 'mkdir -p "$EF_CHAOS_LOGS" && cp "$EF_TMP"/*.log "$EF_TMP"/*.rss "$EF_CHAOS_LOGS"/ 2>/dev/null; ef_cleanup' EXIT
fi
ENQ="$BIN/enqueuer"
Q='farm:{default}'
D=$EF_TMP
T_ALL=$SECONDS
echo "info: profile $PROFILE"

[ -z "$ONLY" ] && [ "$PROFILE" != soak ] && ONLY="crash stall partition redis provider"
want() { [ -z "$ONLY" ] || case " $ONLY " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
figure() { echo "figure: $1 = $2"; }
now_ms() { date +%s%3N; }
rss_kb() { awk '/^VmRSS:/ {print $2; f=1} END {if (!f) print 0}' "/proc/$1/status" 2>/dev/null || echo 0; }
counts() { echo "$(job_field "$1" updated) $(job_field "$1" not_found) $(job_field "$1" conflicts) $(job_field "$1" errors)"; }
truth() { # IDS_FILE -> "updated not_found"
  "$BIN/mockprov" --expect items --catalog "$CAT" <"$1" | awk '{c[$2]++} END {printf "%d %d\n", c["updated"], c["not_found"]}'
}
# census ID -> "u n c e dots chars": the outcome characters of every chunk
census() {
  rcli HVALS "$Q:job:$1:outcomes" | python3 -c '
import sys, collections
s = sys.stdin.read().replace("\n", "")
c = collections.Counter(s)
print(c["u"], c["n"], c["c"], c["e"], c["."], len(s))'
}
# verify ID IDS_FILE -> "entities=.. mismatched=.. bad_results=.. errors=..
# missing=.. duplicated=..": every exported entity against the mock's truth
# (an error is not a mismatch: the caller decides whether errors are allowed)
cat >"$D/verify.py" <<'PY'
import json, sys
truth = dict(line.split() for line in open(sys.argv[1]))
seen, dup, bad, badres, errs = {}, 0, 0, 0, 0
for line in open(sys.argv[2]):
    r = json.loads(line)
    i, o = r["entity"]["id"], r["outcome"]
    dup += i in seen
    seen[i] = o
    if o == "errors":
        errs += 1
    elif o != truth.get(i):
        bad += 1
    elif o == "updated" and (r.get("result") or {}).get("title") != "Item %d" % int(i):
        badres += 1
missing = len(set(truth) - set(seen))
print("entities=%d mismatched=%d bad_results=%d errors=%d missing=%d duplicated=%d"
      % (len(seen), bad, badres, errs, missing, dup))
PY
verify() {
  "$BIN/mockprov" --expect items --catalog "$CAT" <"$2" >"$D/verify.truth"
  "$ENQ" results "$1" >"$D/verify.ndjson" 2>"$D/verify.err" || { echo "export failed: $(cat "$D/verify.err")"; return; }
  python3 "$D/verify.py" "$D/verify.truth" "$D/verify.ndjson"
}
# exact_checks LABEL ID IDS_FILE: the whole exactly-once contract for a job
exact_checks() {
  local l=$1 id=$2 ids=$3 n t_upd t_nf
  n=$(wc -l <"$ids")
  read -r t_upd t_nf < <(truth "$ids")
  eq "$l: counts equal the truth" "$t_upd $t_nf 0 0" "$(counts "$id")"
  eq "$l: processed == total == sum of the four counts" "$n $n $n" \
    "$(job_field "$id" processed) $(job_field "$id" total) $(($(counts "$id" | tr ' ' '+')))"
  eq "$l: one outcome per entity, none left '.'" "$t_upd $t_nf 0 0 0 $n" "$(census "$id")"
  eq "$l: every entity's outcome and result equal the truth" \
    "entities=$n mismatched=0 bad_results=0 errors=0 missing=0 duplicated=0" "$(verify "$id" "$ids")"
  eq "$l: chunks_done == chunks_total" "$(job_field "$id" chunks_total)" "$(job_field "$id" chunks_done)"
  eq "$l: nothing in processing, no lease, no owner" "0 0 0" \
    "$(rcli LLEN "$Q:processing") $(rcli ZCARD "$Q:leases") $(rcli HLEN "$Q:owners")"
  eq "$l: dead list empty" 0 "$(rcli LLEN "$Q:dead")"
}
# snapshot ID: everything an outcome changes (job counters, outcome strings,
# error log, results, queue-wide outcome counters)
snapshot() {
  { rcli HMGET "$Q:job:$1" status updated not_found conflicts errors processed chunks_done completed_at
    rcli HGETALL "$Q:job:$1:outcomes" | paste - - | sort
    rcli LLEN "$Q:job:$1:errors"; rcli HLEN "$Q:job:$1:results"
    rcli HMGET "$Q:stats" updated not_found conflicts errors
  } | md5sum | cut -c1-16
}
max_attempts() { rcli HVALS "$Q:job:$1:attempts" | sort -n | tail -1; }
owned_by() { rcli HGETALL "$Q:owners" | paste - - | awk -v w="$1" '$2 == w {print $1}'; }
# rss_check NAME CMD...: a memory bound; not judged under ASan (SAN=1), whose
# shadow memory and quarantine are not the program's
rss_check() { if [ "${SAN:-0}" = 1 ]; then skip "$1" "RSS is not judged under ASan"; else check "$@"; fi; }
kill_wait() { local p; for p in "$@"; do kill -9 "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; }

ef_mock_start mock --catalog "$CAT"
MP=$MOCK_PORT
mctl() { curl -s "http://127.0.0.1:$MP/control?$1" >/dev/null; }
mreset() { curl -s "http://127.0.0.1:$MP/stats/reset" >/dev/null; }
RECIPE_TIMEOUT_MS=5000 RECIPE_RETRIES=3 ef_items_recipe "$MP" "$D/items.json"

# ---- 1. worker crashes: SIGKILL a random worker every 2 s ----
chaos_crash() {
  local t0 id kills=0 held=0 s victim end slot gen=0 wid
  ef_flush; mreset; mctl "latency_ms=30"
  seq 1 "$CRASH_N" >"$D/crash.ids"
  local wp=() wn=()
  for slot in 0 1 2 3; do
    ef_worker_start "$D/crash-$slot-0.log" --providers "$D/items.json" --concurrency 8 \
      --visibility-timeout 2 --id "crash-$slot-0"
    wp[$slot]=$EF_LAST_PID; wn[$slot]="crash-$slot-0"
  done
  t0=$(now_ms)
  id=$("$ENQ" --provider items --chunk-size 50 "$D/crash.ids" 2>/dev/null)
  end=$((SECONDS + CRASH_MAX_S))
  while [ $SECONDS -lt $end ] && [ "$kills" -lt $((CRASH_MAX_S / 2)) ]; do
    sleep 2
    [ "$(job_field "$id" status)" = completed ] && break
    s=$((RANDOM % 4)); victim=${wp[$s]}; gen=$((gen + 1))
    held=$((held + $(owned_by "${wn[$s]}" | wc -l)))
    kill -9 "$victim"; wait "$victim" 2>/dev/null
    kills=$((kills + 1))
    wid="crash-$s-$gen"
    ef_worker_start "$D/crash-$s-$gen.log" --providers "$D/items.json" --concurrency 8 \
      --visibility-timeout 2 --id "$wid"
    wp[$s]=$EF_LAST_PID; wn[$s]=$wid
  done
  if ef_wait_job "$id" completed 60; then ok "crash: job of $CRASH_N completed through $kills SIGKILLs"
  else fail "crash: job completed" "status $(job_field "$id" status) $(counts "$id")"; fi
  local ms=$(($(job_field "$id" completed_at) - t0)) reqs
  reqs=$(mock_stat "$MP" requests)
  exact_checks crash "$id" "$D/crash.ids"
  check "crash: at least one kill per 2 s of the run ($kills kills in $ms ms)" test "$kills" -ge $((ms / 2000 - 2))
  check "crash: every worker alive at the end" kill -0 "${wp[@]}"
  echo "info: crash: $kills kills, $held chunks held by the killed workers, max attempts $(max_attempts "$id"), $reqs provider requests for $CRASH_N entities ($((reqs - CRASH_N)) redone)"
  figure crash_entities "$CRASH_N"; figure crash_kills "$kills"; figure crash_chunks_orphaned "$held"
  figure crash_entities_redone $((reqs - CRASH_N)); figure crash_max_attempts "$(max_attempts "$id")"
  figure crash_duration_ms "$ms"
  kill_wait "${wp[@]}"
}

# ---- 2. stalls: SIGSTOP past the visibility timeout, then SIGCONT ----
chaos_stall() {
  local round id s held ref n a1 a2 lost0 redone=0 pids i
  for round in $(seq 1 "$STALL_ROUNDS"); do
    ef_flush; mreset; mctl "latency_ms=30"
    seq 1 "$STALL_N" >"$D/stall.ids"
    id=$("$ENQ" --provider items --chunk-size 50 "$D/stall.ids" 2>/dev/null)
    ef_worker_start "$D/stall-s$round.log" --providers "$D/items.json" --concurrency 8 \
      --visibility-timeout 2 --id "stalled-$round"
    s=$EF_LAST_PID
    ef_wait_for 20 'test -n "$(owned_by stalled-'"$round"')" && test "$(job_field "$id" processed)" -ge 100'
    pids=()
    for i in 1 2; do
      ef_worker_start "$D/stall-o$round-$i.log" --providers "$D/items.json" --concurrency 8 --visibility-timeout 2
      pids+=("$EF_LAST_PID")
    done
    held=$(owned_by "stalled-$round")
    kill -STOP "$s"
    if ef_wait_job "$id" completed 60; then ok "stall $round: job completed while a worker was stopped"
    else fail "stall $round: job completed" "$(counts "$id") status $(job_field "$id" status)"; fi
    n=0
    for ref in $held; do
      a1=$(rcli HGET "$Q:job:$id:attempts" "${ref##*:}")
      [ "${a1:-0}" -ge 2 ] && n=$((n + 1))
    done
    eq "stall $round: the stopped worker's chunks were delivered again ($(echo $held))" "$(echo "$held" | wc -w)" "$n"
    redone=$((redone + n))
    a1=$(snapshot "$id")
    lost0=$(grep -c "lost the lease" "$D/stall-s$round.log")
    kill -CONT "$s"
    ef_wait_for 10 'test "$(grep -c "lost the lease" "$D/stall-s'"$round"'.log")" -gt '"$lost0"
    sleep 2.5 # a tick, a partial ack, a lease extension: the late writes
    a2=$(snapshot "$id")
    eq "stall $round: late results of the resumed worker changed nothing" "$a1" "$a2"
    contains "stall $round: the resumed worker noticed it lost the lease" "lost the lease" "$(cat "$D/stall-s$round.log")"
    check "stall $round: the resumed worker lives on" kill -0 "$s"
    exact_checks "stall $round" "$id" "$D/stall.ids"
    kill_wait "$s" "${pids[@]}"
  done
  figure stall_rounds "$STALL_ROUNDS"; figure stall_chunks_redone "$redone"
}

# ---- 3. partitions: a worker silently cut off from Redis ----
chaos_partition() {
  local enq nr nw va vb how rport purl mp t_cut t_notice t_heal id x a held ref n s1 s2 out rc t1 lines
  if ! command -v iptables >/dev/null 2>&1; then
    echo "info: iptables missing; installing it (the partition falls back to a neighbour-table blackhole otherwise)"
    DEBIAN_FRONTEND=noninteractive timeout 120 apt-get install -y -qq iptables >/dev/null 2>&1 || true
  fi
  if ! ef_netns_pair R W 10.231.9.1 10.231.9.2; then
    skip "partition" "network namespaces are not allowed here"
    ef_netns_cleanup; return
  fi
  nr=$(ef_ns R); nw=$(ef_ns W); va="v$$a"; vb="v$$b"
  if [ "${EF_CHAOS_CUT:-}" != neigh ] && ip netns exec "$nw" iptables -L -n >/dev/null 2>&1; then how=iptables; else how=neigh; fi
  # Redis in namespace R: TCP on the namespace address only, plus the
  # usual unix socket for the test's own redis-cli and enqueuer.
  ef_redis_stop
  rport=$((20000 + $$ % 20000))
  ip netns exec "$nr" redis-server --bind 10.231.9.1 --port "$rport" --protected-mode no \
    --unixsocket "$EF_TMP/redis.sock" --unixsocketperm 700 --save '' --appendonly no \
    --dir "$EF_TMP" --logfile "$EF_TMP/redis-part.log" &
  EF_REDIS_PID=$!
  ef_wait_for 10 'rcli PING | grep -q PONG'
  purl="redis://10.231.9.1:$rport/0"
  rm -f "$D/pmock.port"
  ef_spawn "$D/pmock.log" ip netns exec "$nr" "$BIN/mockprov" --listen 10.231.9.1:0 --port-file "$D/pmock.port" \
    --catalog "$CAT" --latency-ms 30
  mp=$EF_LAST_PID
  ef_wait_for 10 test -s "$D/pmock.port"
  # retries outlast the cut even where the cut also hides the provider (neigh)
  cat >"$D/part.json" <<JSON
{"providers": {"items": {
   "steps": [{"method": "GET", "url": "http://10.231.9.1:$(cat "$D/pmock.port")/item/{id}"}],
   "extract": {"title": "/title"}, "timeout_ms": 3000, "retries": 10}}}
JSON
  seq 1 "$PART_N" >"$D/part.ids"
  ef_spawn "$D/part-x.log" ip netns exec "$nw" "$BIN/worker" --redis "$purl" --providers "$D/part.json" \
    --concurrency 8 --visibility-timeout 3 --id part-x --log-level debug
  x=$EF_LAST_PID
  ef_spawn "$D/part-a.log" ip netns exec "$nr" "$BIN/worker" --redis "$purl" --providers "$D/part.json" \
    --concurrency 8 --visibility-timeout 3 --id part-a
  a=$EF_LAST_PID
  ef_wait_for 10 'test "$(rcli ZCARD farm:workers)" = 2'
  id=$("$ENQ" --provider items --chunk-size 50 "$D/part.ids" 2>/dev/null)
  ef_wait_for 20 'test -n "$(owned_by part-x)" && test "$(job_field "$id" processed)" -ge 200'
  # the cut: every packet between the worker and Redis dropped, silently
  if [ $how = iptables ]; then
    ip netns exec "$nw" iptables -A OUTPUT -p tcp -d 10.231.9.1 --dport "$rport" -j DROP
    ip netns exec "$nw" iptables -A INPUT -p tcp -s 10.231.9.1 --sport "$rport" -j DROP
  else
    ip -n "$nw" neigh replace 10.231.9.1 lladdr 02:00:00:00:de:ad dev "$vb" nud permanent
    ip -n "$nr" neigh replace 10.231.9.2 lladdr 02:00:00:00:de:ad dev "$va" nud permanent
  fi
  t_cut=$(now_ms)
  # what the worker holds once cut off (read before the cut, a chunk it
  # acked while the rules went in would count as held; its leases run for
  # 3 s, so nothing is taken back yet)
  held=$(owned_by part-x)
  echo "info: partition: cut with $how at $t_cut; part-x held: $(echo $held)"
  if ef_wait_for 20 'grep -q "redis cmd: connection lost" "$D/part-x.log"'; then
    t_notice=$(now_ms)
    ok "partition: the cut-off worker noticed ($((t_notice - t_cut)) ms): $(grep -m1 'redis cmd: connection lost' "$D/part-x.log" | sed 's/.*connection lost/connection lost/')"
    check "partition: noticed within the 5 s command deadline plus one PING interval ($((t_notice - t_cut)) ms)" \
      test $((t_notice - t_cut)) -le 7000
  else
    fail "partition: the cut-off worker noticed" "no 'connection lost' in its log"; t_notice=$(now_ms)
  fi
  # meanwhile an enqueuer on the cut-off side must fail, clearly (its
  # connect timeout is 30 s: only where the cut lasts that long)
  enq=""
  if [ "$PART_CUT_S" -ge 30 ]; then
    ef_spawn "$D/part-enq.log" timeout 90 ip netns exec "$nw" "$ENQ" --redis "$purl" --provider items "$D/part.ids"
    enq=$EF_LAST_PID; t1=$(now_ms)
  fi
  # the other side takes over; hold the cut at least PART_CUT_S
  if ef_wait_job "$id" completed $((PART_CUT_S + 60)); then ok "partition: the job completed on the other side during the cut"
  else fail "partition: job completed during the cut" "$(counts "$id") $(job_field "$id" status)"; fi
  while [ $(($(now_ms) - t_cut)) -lt $((PART_CUT_S * 1000)) ]; do sleep 0.2; done
  n=0
  for ref in $held; do
    [ "$(rcli HGET "$Q:job:$id:attempts" "${ref##*:}")" -ge 2 ] && n=$((n + 1))
  done
  eq "partition: the cut-off worker's chunks were redone by the other worker" "$(echo "$held" | wc -w)" "$n"
  eq "partition: the cut-off worker owns nothing in Redis" "" "$(owned_by part-x)"
  s1=$(rcli HGET farm:worker:part-x last_seen)
  check "partition: no heartbeat from the cut-off worker since the cut (last_seen ${s1:-expired})" \
    test "${s1:-0}" -le $((t_cut + 1000))
  if [ -n "$enq" ]; then
    ef_wait_for 90 '! kill -0 "$enq"'
    wait "$enq"; rc=$?
    eq "partition: the enqueuer on the cut-off side exits 1" 1 "$rc"
    contains "partition: ... saying why ($(($(now_ms) - t1)) ms)" "cannot connect to redis" "$(cat "$D/part-enq.log")"
    echo "info: enqueuer said: $(tail -1 "$D/part-enq.log")"
  fi
  s1=$(snapshot "$id")
  lines=$(wc -l <"$D/part-x.log")
  # heal
  if [ $how = iptables ]; then
    ip netns exec "$nw" iptables -D OUTPUT -p tcp -d 10.231.9.1 --dport "$rport" -j DROP
    ip netns exec "$nw" iptables -D INPUT -p tcp -s 10.231.9.1 --sport "$rport" -j DROP
  else
    ip -n "$nw" neigh del 10.231.9.1 dev "$vb"; ip -n "$nr" neigh del 10.231.9.2 dev "$va"
  fi
  t_heal=$(now_ms)
  if ef_wait_for 20 'tail -n +'"$((lines + 1))"' "$D/part-x.log" | grep -q "redis cmd: reconnected"'; then
    ok "partition: the worker reconnected after the heal ($(($(now_ms) - t_heal)) ms)"
  else fail "partition: reconnected" "$(tail -3 "$D/part-x.log")"; fi
  # what it did during the cut is acked now (recorded nothing) or its
  # lease comes back lost; either way it lets the chunk go
  ef_wait_for 15 '[ "$(rcli HMGET farm:worker:part-x chunks in_flight | tr "\n" " ")" = "0 0 " ]'
  sleep 2
  s2=$(snapshot "$id")
  eq "partition: the healed worker's late writes changed nothing" "$s1" "$s2"
  eq "partition: the healed worker let its stale chunk go (chunks, in_flight)" "0 0" \
    "$(rcli HMGET farm:worker:part-x chunks in_flight | tr '\n' ' ' | sed 's/ $//')"
  eq "partition: no chunk claimed while cut off" "" \
    "$(awk -v a="$(date -u -d @$((t_cut / 1000)) +%FT%T)" -v b="$(date -u -d @$((t_heal / 1000)) +%FT%T)" \
      '/ claimed / && substr($1, 1, 19) > a && substr($1, 1, 19) < b' "$D/part-x.log")"
  echo "info: partition: after the heal the worker logged: $(tail -n +$((lines + 1)) "$D/part-x.log" | grep -v ' debug ' | sed 's/^[^ ]* //' | tr '\n' '|')"
  check "partition: the healed worker lives on" kill -0 "$x"
  exact_checks partition "$id" "$D/part.ids"
  figure partition_method "$how"; figure partition_cut_ms $((t_heal - t_cut))
  figure partition_notice_ms $((t_notice - t_cut)); figure partition_chunks_redone "$n"
  kill_wait "$x" "$a" "$mp"
  ef_redis_stop
  ef_netns_cleanup
  ef_redis_start
}

# ---- 4. Redis: killed mid-job with AOF; unavailable for a while ----
redis_aof_start() { ef_redis_start --appendonly yes --appendfsync "$1" --auto-aof-rewrite-percentage 0; }
redis_kill9() { kill -9 "$EF_REDIS_PID"; wait "$EF_REDIS_PID" 2>/dev/null; EF_REDIS_PID=""; }
# chaos_redis_crash MODE: always | everysec | rollback (everysec, and the
# last ~1 s of the AOF lost as if the machine had crashed)
chaos_redis_crash() {
  local mode=$1 fsync=everysec id w1 w2 c before after lost=0 total_lost=0 t_dn reqs
  [ "$mode" = always ] && fsync=always
  ef_redis_stop; rm -rf "$EF_TMP/appendonlydir"
  redis_aof_start "$fsync"
  mreset; mctl "latency_ms=20"
  seq 1 "$REDIS_N" >"$D/redis.ids"
  ef_worker_start "$D/rc-$mode-1.log" --providers "$D/items.json" --concurrency 8 --visibility-timeout 3; w1=$EF_LAST_PID
  ef_worker_start "$D/rc-$mode-2.log" --providers "$D/items.json" --concurrency 8 --visibility-timeout 3; w2=$EF_LAST_PID
  id=$("$ENQ" --provider items --chunk-size 50 "$D/redis.ids" 2>/dev/null)
  for c in $(seq 1 "$REDIS_CRASHES"); do
    ef_wait_for 60 'test "$(job_field "$id" processed)" -ge $((REDIS_N * c / (REDIS_CRASHES + 2)))'
    if [ "$mode" = rollback ]; then
      rm -rf "$EF_TMP/aof.snap"; cp -a "$EF_TMP/appendonlydir" "$EF_TMP/aof.snap"
      sleep 1
    fi
    before=$(job_field "$id" processed)
    redis_kill9
    if [ "$mode" = rollback ]; then rm -rf "$EF_TMP/appendonlydir"; mv "$EF_TMP/aof.snap" "$EF_TMP/appendonlydir"; fi
    t_dn=$(now_ms)
    redis_aof_start "$fsync" || { fail "redis $mode: restart" "$(tail -5 "$EF_TMP/redis.log")"; return; }
    after=$(job_field "$id" processed)
    lost=$((before - after)); [ "$lost" -lt 0 ] && lost=0
    total_lost=$((total_lost + lost))
    echo "info: redis $mode crash $c: processed $before before the kill, $after after the restart ($(($(now_ms) - t_dn)) ms down)"
    if [ "$mode" = always ]; then
      check "redis always, crash $c: nothing acknowledged was lost ($before -> $after)" test "$after" -ge "$before"
    fi
  done
  if ef_wait_job "$id" completed 90; then ok "redis $mode: the job completed after $REDIS_CRASHES crash(es)"
  else fail "redis $mode: job completed" "$(counts "$id") $(job_field "$id" status)"; fi
  reqs=$(mock_stat "$MP" requests)
  exact_checks "redis $mode" "$id" "$D/redis.ids"
  contains "redis $mode: the workers saw the connection go" "connection lost" "$(cat "$D/rc-$mode-1.log")"
  check "redis $mode: the workers live on" kill -0 "$w1" "$w2"
  echo "info: redis $mode: $total_lost recorded outcome(s) lost with the crash(es), $((reqs - REDIS_N)) entities requested again"
  figure "redis_${mode}_crashes" "$REDIS_CRASHES"; figure "redis_${mode}_outcomes_lost" "$total_lost"
  figure "redis_${mode}_entities_redone" $((reqs - REDIS_N))
  kill_wait "$w1" "$w2"
}

chaos_redis_down() {
  local sd sp id w1 w2 t_dn t_up out rc t1 p0 n=$((REDIS_N / 2)) t_health t_resume
  ef_redis_stop; rm -rf "$EF_TMP/appendonlydir"
  redis_aof_start everysec
  rm -f "$D/sd.port"
  ef_spawn "$D/statusd.log" "$BIN/statusd" --listen 127.0.0.1:0 --port-file "$D/sd.port"; sd=$EF_LAST_PID
  ef_wait_for 10 test -s "$D/sd.port"; sp=$(cat "$D/sd.port")
  health() { curl -s -o /dev/null -w '%{http_code}' --max-time 3 "http://127.0.0.1:$sp/health"; }
  ef_wait_for 10 '[ "$(health)" = 200 ]'
  eq "redis down: statusd healthy before" 200 "$(health)"
  mreset; mctl "latency_ms=20"
  seq 1 "$n" >"$D/down.ids"
  ef_worker_start "$D/down-1.log" --providers "$D/items.json" --concurrency 8 --visibility-timeout 3; w1=$EF_LAST_PID
  ef_worker_start "$D/down-2.log" --providers "$D/items.json" --concurrency 8 --visibility-timeout 3; w2=$EF_LAST_PID
  id=$("$ENQ" --provider items --chunk-size 50 "$D/down.ids" 2>/dev/null)
  ef_wait_for 30 'test "$(job_field "$id" processed)" -ge $((n / 5))'
  ef_redis_stop; t_dn=$(now_ms)
  if ef_wait_for 5 '[ "$(health)" = 503 ]'; then ok "redis down: statusd /health says 503 ($(($(now_ms) - t_dn)) ms)"
  else fail "redis down: statusd 503" "got $(health)"; fi
  contains "redis down: /health says why" '"redis":"down"' "$(curl -s "http://127.0.0.1:$sp/health" | tr -d ' ')"
  eq "redis down: statusd /jobs/ID answers 503" 503 "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$sp/jobs/$id")"
  t1=$(now_ms)
  out=$(timeout 60 "$ENQ" --provider items "$D/down.ids" 2>&1); rc=$?
  eq "redis down: the enqueuer exits 1" 1 "$rc"
  contains "redis down: the enqueuer says why ($(($(now_ms) - t1)) ms)" "redis" "$out"
  echo "info: enqueuer said: $(echo "$out" | tail -1)"
  out=$(timeout 60 "$ENQ" status "$id" 2>&1); rc=$?
  eq "redis down: enqueuer status exits 1" 1 "$rc"
  while [ $(($(now_ms) - t_dn)) -lt $((DOWN_S * 1000)) ]; do sleep 0.2; done
  check "redis down: workers alive through the outage" kill -0 "$w1" "$w2"
  check "redis down: statusd alive through the outage" kill -0 "$sd"
  redis_aof_start everysec; t_up=$(now_ms)
  # shellcheck disable=SC2034 # p0 is read by the eval in ef_wait_for
  p0=$(job_field "$id" processed)
  if ef_wait_for 10 '[ "$(health)" = 200 ]'; then t_health=$(now_ms); ok "redis down: statusd healthy again ($((t_health - t_up)) ms)"
  else t_health=$(now_ms); fail "redis down: statusd recovers" "got $(health)"; fi
  ef_wait_for 30 'test "$(job_field "$id" processed)" -gt "$p0"'; t_resume=$(now_ms)
  if ef_wait_job "$id" completed 60; then ok "redis down: the job completed after $DOWN_S s without Redis"
  else fail "redis down: job completed" "$(counts "$id") $(job_field "$id" status)"; fi
  exact_checks "redis down" "$id" "$D/down.ids"
  contains "redis down: the workers logged the reconnection" "reconnected after" "$(cat "$D/down-1.log" "$D/down-2.log")"
  echo "info: redis down ${DOWN_S} s: statusd healthy $((t_health - t_up)) ms and workers progressing $((t_resume - t_up)) ms after Redis came back"
  figure redis_down_s "$DOWN_S"; figure redis_down_statusd_recovery_ms $((t_health - t_up))
  figure redis_down_worker_recovery_ms $((t_resume - t_up))
  kill_wait "$w1" "$w2" "$sd"
  ef_redis_stop; rm -rf "$EF_TMP/appendonlydir"; ef_redis_start
}

# ---- 5. provider faults ----
chaos_provider() {
  local pw sampler lp maxrss injected=0
  ef_flush
  # a tiny HTTP server for what the mock does not do: redirect loops and
  # HTML pages with a 200
  ef_pyhttp_start odd "$(cat <<'PY'
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    count = 0
    def do_GET(self):
        if self.path == "/count":
            body = str(H.count).encode()
            self.send_response(200)
        else:
            H.count += 1
            if self.path.startswith("/loop/"):
                self.send_response(302)
                self.send_header("Location", self.path)
                body = b""
            elif self.path.startswith("/html/"):
                body = b"<html><body><h1>Service temporarily moved</h1></body></html>"
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
            else:  # the mock's truth, as JSON labelled text/plain
                i = self.path.rsplit("/", 1)[1]
                if int(i) % 10:
                    body = b'{"title": "Item %s"}' % i.encode()
                    self.send_response(200)
                else:
                    body = b'{"error": "not found"}'
                    self.send_response(404)
                self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
PY
)"; local op=$EF_LAST_PID hp hpid; lp=$PYHTTP_PORT
  ef_mock_start hang --catalog "$CAT" --p-hang 1; hp=$MOCK_PORT; hpid=$MOCK_PID
  cat >"$D/faults.json" <<JSON
{"providers": {
  "items": {"steps": [{"method": "GET", "url": "http://127.0.0.1:$MP/item/{id}"}],
            "extract": {"title": "/title"}, "timeout_ms": 1000, "retries": 2},
  "limited": {"steps": [{"method": "GET", "url": "http://127.0.0.1:$MP/item/{id}"}],
            "extract": {"title": "/title"}, "timeout_ms": 2000, "retries": 10,
            "rate": {"requests": 200, "per_seconds": 1, "burst": 10}},
  "hang": {"steps": [{"method": "GET", "url": "http://127.0.0.1:$hp/item/{id}"}],
            "extract": {"title": "/title"}, "timeout_ms": 1000, "retries": 2},
  "loop": {"steps": [{"method": "GET", "url": "http://127.0.0.1:$lp/loop/{id}"}],
            "extract": {"title": "/title"}, "timeout_ms": 1000, "retries": 2},
  "html": {"steps": [{"method": "GET", "url": "http://127.0.0.1:$lp/html/{id}"}],
            "extract": {"title": "/title"}, "timeout_ms": 1000, "retries": 2},
  "plain": {"steps": [{"method": "GET", "url": "http://127.0.0.1:$lp/plain/{id}"}],
            "extract": {"title": "/title"}, "timeout_ms": 1000, "retries": 2}}}
JSON
  ef_worker_start "$D/prov.log" --providers "$D/faults.json" --concurrency 16 --visibility-timeout 10; pw=$EF_LAST_PID
  ef_wait_for 10 '[ "$(rcli HEXISTS farm:providers plain)" = 1 ]'
  # RSS of the worker every 200 ms for the whole section (bounded: 10 min)
  sample_rss() { local i; for i in $(seq 1 3000); do echo "$(rss_kb "$1")"; sleep 0.2; done; }
  ef_spawn "$D/prov.rss" sample_rss "$pw"; sampler=$EF_LAST_PID
  local base=1 odd_base=0
  # fcase NAME PROVIDER CONTROL N MODE ERROR_TEXT REQUESTS_CHECK
  #   MODE exact: every outcome equals the truth; errors: every entity an
  #   error; mixed: no wrong outcome (errors allowed)
  #   REQUESTS_CHECK "eq K" / "le K" / "range LO HI": provider requests for
  #   the job (curl itself resends a request once when a reused keep-alive
  #   connection turns out dead: hence ranges where connections are reset)
  fcase() {
    local name=$1 prov=$2 ctl=$3 n=$4 mode=$5 etext=$6 rq=$7 id t0 ms reqs v f st port=$MP
    [ "$prov" = hang ] && port=$hp
    mctl "p_500=0&p_reset=0&p_hang=0&p_malformed=0&p_huge=0&p_slow=0&fail_first=0&rate=0&latency_ms=0"
    [ -n "$ctl" ] && mctl "$ctl"
    curl -s "http://127.0.0.1:$port/stats/reset" >/dev/null
    seq "$base" $((base + n - 1)) >"$D/f.ids"; base=$((base + n))
    t0=$(now_ms)
    id=$("$ENQ" --provider "$prov" --chunk-size 10 "$D/f.ids" 2>/dev/null)
    if ef_wait_job "$id" completed 120; then ok "provider $name: job completed ($(($(now_ms) - t0)) ms)"
    else fail "provider $name: job completed" "$(counts "$id") status $(job_field "$id" status)"; fi
    v=$(verify "$id" "$D/f.ids")
    case $mode in
      exact) eq "provider $name: every outcome equals the truth" "entities=$n mismatched=0 bad_results=0 errors=0 missing=0 duplicated=0" "$v" ;;
      errors) eq "provider $name: every entity an error" "0 0 0 $n" "$(counts "$id")" ;;
      mixed) contains "provider $name: no wrong outcome, every entity once ($v)" "mismatched=0 bad_results=0" "$v"
             contains "provider $name: nothing missing or duplicated" "missing=0 duplicated=0" "$v" ;;
    esac
    [ -n "$etext" ] && contains "provider $name: error log says '$etext'" "$etext" "$(rcli LRANGE "$Q:job:$id:errors" 0 0)"
    if [ "$prov" = loop ] || [ "$prov" = html ] || [ "$prov" = plain ]; then
      reqs=$(curl -s "http://127.0.0.1:$lp/count")
      reqs=$((reqs - odd_base)); odd_base=$((odd_base + reqs))
    else
      reqs=$(mock_stat "$port" requests)
    fi
    # shellcheck disable=SC2086
    set -- $rq
    if [ "$1" = eq ]; then eq "provider $name: bounded retries: $reqs requests for $n entities" "$2" "$reqs"
    elif [ "$1" = range ]; then
      check "provider $name: bounded retries: $reqs requests for $n entities (in $2..$3)" test "$reqs" -ge "$2" -a "$reqs" -le "$3"
    else check "provider $name: bounded retries: $reqs requests for $n entities (<= $2)" test "$reqs" -le "$2"; fi
    check "provider $name: the worker lives on" kill -0 "$pw"
    eq "provider $name: no attempt failed before it reached the provider" "" \
      "$(rcli LRANGE "$Q:job:$id:errors" 0 -1 | grep -m1 -o 'Failed to resolve host[^(]*')"
    if [ "$prov" != loop ] && [ "$prov" != html ] && [ "$prov" != plain ]; then
      st=$(curl -s "http://127.0.0.1:$port/stats")
      f=$(echo "$st" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["responses_429"]+d["resets"]+d["hangs"]+d["malformed"]+d["huge"]+d["slow"]+sum(v for k,v in d["by_status"].items() if k.startswith("5")))')
    else
      f=$([ "$prov" = plain ] && echo 0 || echo "$reqs")
    fi
    injected=$((injected + f))
    echo "info: provider $name: $v, $reqs requests, $f faults injected, $(counts "$id") (u n c e), max attempts $(max_attempts "$id")"
  }
  local N=$FAULT_N
  fcase "429 storm (provider at 20/s, farm bucket at 200/s)" limited "rate=20&per=1&burst=5" $((N * 3)) exact "" "le $((N * 3 * 11))"
  check "provider 429 storm: the referee did answer 429" test "$(mock_stat "$MP" responses_429)" -ge 1
  contains "provider 429 storm: the farm backed off" "answered 429" "$(cat "$D/prov.log")"
  fcase "5xx burst (first 2 answers of each target 503)" items "fail_first=2" "$N" exact "" "eq $((N * 3))"
  fcase "5xx storm (every answer 5xx)" items "p_500=1" "$N" errors "gave up after 2 retries" "eq $((N * 3))"
  fcase "5xx at 30%" items "p_500=0.3" $((N * 5)) mixed "" "le $((N * 5 * 3))"
  # hangs from a host the worker has not talked to yet (a second mock):
  # every attempt must reach it, none may wait behind a hung one
  fcase "responses that never finish" hang "" "$N" errors "gave up after 2 retries" "eq $((N * 3))"
  local conns; conns=$(mock_stat "$hp" connections)
  check "provider hangs: the worker closed its hung connections ($conns open)" test "$conns" -le 16
  fcase "connection resets" items "p_reset=1" "$N" errors "gave up after 2 retries" "range $((N * 3)) $((N * 6))"
  fcase "malformed and truncated JSON, HTML" items "p_malformed=1" "$N" errors "" "eq $N"
  fcase "100 MB bodies (max_body 1 MiB)" items "p_huge=1&huge_bytes=100000000" "$N" errors "response over 1048576 bytes" "eq $N"
  fcase "slow trickles within the timeout" items "p_slow=1&slow_ms=300" "$N" exact "" "eq $N"
  fcase "slow trickles past the timeout" items "p_slow=1&slow_ms=3000" "$N" errors "gave up after 2 retries" "eq $((N * 3))"
  fcase "everything at once" items "p_reset=0.05&p_hang=0.03&p_500=0.1&p_malformed=0.05&p_huge=0.02&huge_bytes=100000000&p_slow=0.1&slow_ms=300" \
    "$MIXED_N" mixed "" "le $((MIXED_N * 6))"
  fcase "redirect loop (302 to itself; redirects are not followed)" loop "" "$N" errors "HTTP 302" "le $((N * 3))"
  fcase "HTML page with a 200" html "" "$N" errors "" "le $N"
  fcase "JSON under a wrong Content-Type" plain "" "$N" mixed "" "le $((N * 3))"
  mctl "p_500=0&p_reset=0&p_hang=0&p_malformed=0&p_huge=0&p_slow=0&fail_first=0&rate=0&latency_ms=0"
  kill_wait "$sampler"
  maxrss=$(sort -n "$D/prov.rss" | tail -1)
  rss_check "provider: worker RSS stayed under $((RSS_LIMIT_KB / 1024)) MB through every fault (max ${maxrss} kB)" test "${maxrss:-0}" -lt "$RSS_LIMIT_KB"
  check "provider: worker RSS sampled ($(wc -l <"$D/prov.rss") samples)" test "$(wc -l <"$D/prov.rss")" -ge 10
  echo "info: provider faults: $injected faults injected, worker RSS max $maxrss kB"
  figure provider_faults_injected "$injected"; figure provider_worker_rss_max_kb "$maxrss"
  kill_wait "$pw" "$op" "$hpid"
}

# ---- 6. memory: RSS of workers and statusd through a big job ----
chaos_memory() {
  local sd sp id w1 w2 sse p t0 r10="" r90="" s10="" s90="" wmax=0 smax=0 i rw1 rw2 rs mx end
  ef_flush; mreset; mctl "latency_ms=$MEM_LAT"
  rm -f "$D/msd.port"
  ef_spawn "$D/mem-statusd.log" "$BIN/statusd" --listen 127.0.0.1:0 --port-file "$D/msd.port"; sd=$EF_LAST_PID
  ef_wait_for 10 test -s "$D/msd.port"; sp=$(cat "$D/msd.port")
  ef_worker_start "$D/mem-1.log" --providers "$D/items.json" --concurrency 16; w1=$EF_LAST_PID
  ef_worker_start "$D/mem-2.log" --providers "$D/items.json" --concurrency 16; w2=$EF_LAST_PID
  seq 1 "$MEM_N" >"$D/mem.ids"
  t0=$(now_ms)
  id=$("$ENQ" --provider items --chunk-size 50 "$D/mem.ids" 2>/dev/null)
  # a live SSE follower keeps statusd busy the whole time
  ef_spawn "$D/mem.sse" curl -sN "http://127.0.0.1:$sp/jobs/$id/events"; sse=$EF_LAST_PID
  echo "# ms processed worker1_kb worker2_kb statusd_kb" >"$D/mem.rss"
  end=$((SECONDS + 900))
  for i in $(seq 1 900); do
    [ $SECONDS -lt $end ] || break
    p=$(job_field "$id" processed)
    curl -s "http://127.0.0.1:$sp/jobs/$id" >/dev/null
    curl -s "http://127.0.0.1:$sp/metrics" >/dev/null
    curl -s "http://127.0.0.1:$sp/workers" >/dev/null
    rw1=$(rss_kb "$w1"); rw2=$(rss_kb "$w2"); rs=$(rss_kb "$sd")
    echo "$(($(now_ms) - t0)) $p $rw1 $rw2 $rs" >>"$D/mem.rss"
    mx=$((rw1 > rw2 ? rw1 : rw2))
    [ "$mx" -gt "$wmax" ] && wmax=$mx
    [ "$rs" -gt "$smax" ] && smax=$rs
    if [ -z "$r10" ] && [ "${p:-0}" -ge $((MEM_N / 10)) ]; then r10=$mx; s10=$rs; fi
    if [ -z "$r90" ] && [ "${p:-0}" -ge $((MEM_N * 9 / 10)) ]; then r90=$mx; s90=$rs; fi
    [ "$(job_field "$id" status)" = completed ] && break
    sleep 1
  done
  if ef_wait_job "$id" completed 60; then ok "memory: job of $MEM_N completed ($(($(job_field "$id" completed_at) - t0)) ms)"
  else fail "memory: job completed" "$(counts "$id")"; fi
  eq "memory: exact counts" "$(truth "$D/mem.ids") 0 0" "$(counts "$id")"
  check "memory: sampled every second ($(($(wc -l <"$D/mem.rss") - 1)) samples)" test "$(wc -l <"$D/mem.rss")" -ge 4
  check "memory: RSS at 10% and 90% of the job sampled" test -n "$r10" -a -n "$r90"
  rss_check "memory: worker RSS flat, 10% -> 90%: $r10 -> $r90 kB" test "${r90:-0}" -le $((${r10:-0} + 2048))
  rss_check "memory: statusd RSS flat, 10% -> 90%: $s10 -> $s90 kB" test "${s90:-0}" -le $((${s10:-0} + 2048))
  rss_check "memory: worker RSS max $wmax kB < $((RSS_LIMIT_KB / 1024)) MB" test "$wmax" -lt "$RSS_LIMIT_KB"
  rss_check "memory: statusd RSS max $smax kB < $((RSS_LIMIT_KB / 1024)) MB" test "$smax" -lt "$RSS_LIMIT_KB"
  contains "memory: the SSE follower saw the end" "event: end" "$(cat "$D/mem.sse")"
  echo "info: memory: $MEM_N entities; worker RSS $r10 kB at 10%, $r90 kB at 90%, max $wmax kB; statusd $s10 -> $s90 kB, max $smax kB"
  figure memory_entities "$MEM_N"; figure memory_duration_ms $(($(job_field "$id" completed_at) - t0))
  figure memory_worker_rss_10_90_max_kb "$r10 $r90 $wmax"; figure memory_statusd_rss_10_90_max_kb "$s10 $s90 $smax"
  kill_wait "$w1" "$w2" "$sd" "$sse"
}

run() { # run NAME FUNCTION [ARGS]: timed
  local t=$SECONDS
  want "$1" || return 0
  echo "# ---- $1 ${*:3}"
  "${@:2}"
  echo "info: $1 ${*:3} took $((SECONDS - t)) s"
  figure "duration_${2#chaos_}${3:+_$3}_s" $((SECONDS - t))
}
run crash chaos_crash
run stall chaos_stall
run partition chaos_partition
run redis chaos_redis_crash always
run redis chaos_redis_crash everysec
run redis chaos_redis_crash rollback
run redis chaos_redis_down
run provider chaos_provider
run memory chaos_memory
eq "no sanitizer or runtime error report in any log" "" \
  "$(grep -l -E 'ERROR: AddressSanitizer|runtime error:|ERROR: LeakSanitizer' "$D"/*.log 2>/dev/null | xargs -r -n1 basename)"
figure duration_total_s $((SECONDS - T_ALL))
ef_finish
