#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The farm on a real Redis Cluster: six redis-server nodes (3 primaries, 3
# replicas, made by `redis-cli --cluster create`, cluster-node-timeout
# 1000 ms) on private 127.0.0.1 ports; three queues whose hash tags live on
# three different primaries; workers given a redis+cluster:// URL serving
# all three, the enqueuer and statusd too.
#   rate:      a job on each queue, one provider limit shared by the three
#              queues: exact counts, 0 x 429 at mockprov's referee, the rate
#              within 2 % of the limit at the provider (one token bucket)
#   clients:   scripts/enqueue.sh (redis-cli -c); statusd's /queues, /jobs,
#              /workers, /metrics, POST /jobs and SSE across the nodes; the
#              enqueuer's pipeline of appends across a slot move (MOVED)
#   migrate:   a queue's slot moved to another primary mid-job (SETSLOT
#              IMPORTING/MIGRATING, MIGRATE of its keys, SETSLOT NODE): the
#              workers follow ASK then MOVED (their log lines count them) and
#              the counts are exact
#   failover:  the primary of a queue SIGKILLed mid-job: its replica takes
#              over, the workers follow, the counts are exact, and a new job
#              on that queue is taken within seconds
# EF_KEEP_LOGS=DIR keeps the logs.  About 45 s (60 s with SAN=1).
source "$(dirname "$0")/lib.sh"

N=${CLUSTER_N:-1000} # entities per job (25 s at L for the three)
L=${CLUSTER_RATE:-120} # per second: well under what two workers reach on a loaded machine, also under SAN=1
ef_setup
trap '[ -n "${EF_KEEP_LOGS:-}" ] && mkdir -p "$EF_KEEP_LOGS" && cp "$D"/*.log "$D"/*.err "$EF_KEEP_LOGS"/ 2>/dev/null; for p in "${EF_PIDS[@]}"; do kill -9 "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; ef_cleanup' EXIT
D=$EF_TMP
ENQ="$BIN/enqueuer"
command -v redis-cli >/dev/null || { skip cluster "no redis-cli"; ef_finish; }

# data ports 15000..15999, bus ports (+10000) 25000..25999: below the
# ephemeral range, apart from test_cluster_slots.sh and test_sentinel.sh
declare -A NODE_PID
start_nodes() {
  local base=$1 p
  for i in 0 1 2 3 4 5; do
    p=$((base + i))
    mkdir -p "$D/n$p"
    redis-server --bind 127.0.0.1 --port "$p" --cluster-enabled yes \
      --cluster-config-file "$D/n$p/nodes.conf" --cluster-node-timeout 1000 \
      --save '' --appendonly no --dir "$D/n$p" --logfile "$D/n$p.log" &
    NODE_PID[$p]=$!
    EF_PIDS+=("$!")
  done
  for i in 0 1 2 3 4 5; do
    ef_wait_for 10 "redis-cli -h 127.0.0.1 -p $((base + i)) PING | grep -q PONG" || return 1
  done
}
started=0
for _ in 1 2 3; do
  BASE=$((15000 + (RANDOM % 99) * 10))
  if start_nodes "$BASE"; then started=1; break; fi
  for p in "${NODE_PID[@]}"; do kill -9 "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  grep -q "already in use" "$D"/n*.log 2>/dev/null || break
done
if [ "$started" = 0 ]; then
  skip cluster "redis-server does not start in cluster mode here: $(tail -1 "$D"/n*.log 2>/dev/null | tail -1)"
  ef_finish
fi
PORTS=(); for i in 0 1 2 3 4 5; do PORTS+=($((BASE + i))); done
addrs=(); for p in "${PORTS[@]}"; do addrs+=("127.0.0.1:$p"); done
if ! redis-cli --cluster create "${addrs[@]}" --cluster-replicas 1 --cluster-yes >"$D/create.log" 2>&1; then
  skip cluster "redis-cli --cluster create failed: $(tail -2 "$D/create.log" | tr '\n' ' ')"
  ef_finish
fi
pcli() { redis-cli -h 127.0.0.1 -p "$1" "${@:2}"; }
all_ok() { for p in "${PORTS[@]}"; do pcli "$p" CLUSTER INFO | grep -q cluster_state:ok || return 1; done; }
if ef_wait_for 30 all_ok; then ok "cluster: 3 primaries and 3 replicas, state ok"; else
  fail "cluster: state ok" "$(pcli "$BASE" CLUSTER INFO | head -2 | tr '\r\n' '  ')"; ef_finish; fi
export REDIS_URL="redis+cluster://127.0.0.1:${PORTS[0]},127.0.0.1:${PORTS[1]}"
# any live node answers with -c (commands follow MOVED)
live_port() { for p in "${PORTS[@]}"; do pcli "$p" PING 2>/dev/null | grep -q PONG && { echo "$p"; return; }; done; }
ccli() { redis-cli -c -h 127.0.0.1 -p "$(live_port)" "$@"; }
# the primary serving a slot, from CLUSTER NODES: its port
owner_of() {
  pcli "$(live_port)" CLUSTER NODES | awk -v s="$1" '$3 ~ /master/ && $3 !~ /fail/ {
    for (i = 9; i <= NF; i++) { n = split($i, r, "-"); lo = r[1]; hi = n > 1 ? r[2] : r[1];
      if (s + 0 >= lo + 0 && s + 0 <= hi + 0) { split($2, a, "[:@]"); print a[2]; exit } } }'
}
# three queues on three different primaries
declare -A QOWNER
QS=()
for c in $(seq 1 60); do
  q="q$c"; s=$(pcli "$BASE" CLUSTER KEYSLOT "{$q}"); o=$(owner_of "$s")
  seen=0; for x in "${QS[@]}"; do [ "${QOWNER[$x]}" = "$o" ] && seen=1; done
  [ "$seen" = 0 ] && { QS+=("$q"); QOWNER[$q]=$o; }
  [ ${#QS[@]} -eq 3 ] && break
done
eq "queues: three queues on three primaries (${QS[*]})" 3 "${#QS[@]}"
QA=${QS[0]}; QB=${QS[1]}; QC=${QS[2]}
jf() { ccli HGET "farm:{$3}:job:$1" "$2"; }
wait_status() { # ID STATUS SECONDS QUEUE
  local end=$((SECONDS + $3))
  while [ $SECONDS -le $end ]; do [ "$(jf "$1" status "$4")" = "$2" ] && return 0; sleep 0.1; done
  return 1
}
# processed, answered (updated + not_found: mockprov's catalog lacks some ids), errors, status
counts() {
  local p u n e st
  p=$(jf "$1" processed "$2"); u=$(jf "$1" updated "$2"); n=$(jf "$1" not_found "$2")
  e=$(jf "$1" errors "$2"); st=$(jf "$1" status "$2")
  echo "$p $((${u:-0} + ${n:-0})) $e $st"
}

# the referee allows L/s with a burst of 40, the recipe takes L/s with a
# burst of 5: the same long-run rate (checked within 2 %), with 35 requests
# (0.3 s at 120/s) of slack for a worker descheduled between the grant of
# its tokens and its sends on a loaded machine
ef_mock_start mp --catalog $((N * 3 + 100)) --rate "$L" --per 1 --burst 40 --log
cat >"$D/p.json" <<JSON
{"providers": {"items": {
   "steps": [{"method": "GET", "url": "http://127.0.0.1:$MOCK_PORT/item/{id}"}],
   "extract": {"title": "/title"},
   "rate": {"requests": $L, "per_seconds": 1, "burst": 5},
   "timeout_ms": 5000, "retries": 3}}}
JSON
WPIDS=()
for i in 1 2; do
  ef_worker_start "$D/w$i.log" --providers "$D/p.json" --queue "$QA,$QB,$QC" --concurrency 32
  WPIDS+=("$EF_LAST_PID")
done
ef_wait_for 15 "ccli HEXISTS farm:providers items | grep -q 1" || fail "workers: registered" "$(tail -3 "$D/w1.log")"

echo "info: cluster up at ${SECONDS} s"
# ---- rate: one bucket for the three queues ----
seq 1 "$N" >"$D/ids"
declare -A JOB
for q in "$QA" "$QB" "$QC"; do
  JOB[$q]=$("$ENQ" --queue "$q" --provider items --chunk-size 20 "$D/ids" 2>"$D/enq-$q.err")
done
check "enqueuer: three jobs made through redis+cluster:// (${JOB[$QA]} ${JOB[$QB]} ${JOB[$QC]})" \
  test -n "${JOB[$QA]}" -a -n "${JOB[$QB]}" -a -n "${JOB[$QC]}"
[ -n "${JOB[$QA]}" ] || echo "enqueuer said: $(cat "$D/enq-$QA.err")"
for q in "$QA" "$QB" "$QC"; do
  wait_status "${JOB[$q]}" completed $((N * 3 / L + 30)) "$q"
  eq "rate: job on $q: exact counts" "$N $N 0 completed" "$(counts "${JOB[$q]}" "$q")"
done
t0=$(for q in "$QA" "$QB" "$QC"; do jf "${JOB[$q]}" started_at "$q"; done | sort -n | head -1)
t1=$(for q in "$QA" "$QB" "$QC"; do jf "${JOB[$q]}" completed_at "$q"; done | sort -n | tail -1)
jrate=$(awk -v n=$((N * 3)) -v ms=$((t1 - t0)) 'BEGIN { printf "%.2f", n * 1000 / ms }')
# the rate the provider saw: its request log, first to last request
rate=$(awk '/ \/item\// { split($2, t, ":"); s = t[1] * 3600 + t[2] * 60 + t[3]; if (!n++) a = s; b = s }
  END { if (b > a) printf "%.2f", (n - 1) / (b - a); else print 0 }' "$D/mp.log")
n429=$(mock_stat "$MOCK_PORT" responses_429)
echo "info: 3 queues x $N entities at one limit of $L/s over a 3-primary cluster: $rate/s at the provider ($jrate/s from the jobs' start to end), 429s=$n429"
eq "rate: zero 429s from the referee" 0 "$n429"
check "rate: $rate/s at the provider within 2% of $L/s" awk -v r="$rate" -v l="$L" 'BEGIN { exit !(r >= l * 0.98 && r <= l * 1.02) }'
eq "rate: one bucket, farm:ratelimit:{items}, for the cluster" "$L" "$(ccli HGET 'farm:ratelimit:{items}' requests)"
check "statusd-style registry: the three queues in farm:queues" \
  test "$(ccli SMEMBERS farm:queues | grep -c -E "^($QA|$QB|$QC)\$")" = 3

echo "info: rate phase done at ${SECONDS} s"

# ---- the enqueuer: one connection per node, kept across its moves ----
# job_create and the appends go to the queue's node, farm:providers and
# farm:queues may live on others: the enqueuer moves back and forth, and a
# connection it had to a node is taken again (a new one costs a connect
# and AUTH).  Counted from the nodes' INFO, whose own connections (one per
# node per reading) are taken off.
# the sum over every node of one INFO field (SECTION, the text before the value)
nodes_sum() {
  local t=0 n p
  for p in "${PORTS[@]}"; do
    n=$(pcli "$p" INFO "$1" | tr -d '\r' | sed -n "s/^$2//p")
    t=$((t + ${n:-0}))
  done
  echo "$t"
}
conns() { nodes_sum stats total_connections_received:; }
# a queue on neither the first seed's node nor farm:queues' node: the
# enqueuer goes from the seed to farm:providers' node and the queue's (and
# for a queue's first job to farm:queues' node and back)
fqo=$(owner_of "$(pcli "$BASE" CLUSTER KEYSLOT farm:queues)")
QX=$QB
for q in "$QA" "$QB" "$QC"; do
  [ "${QOWNER[$q]}" != "$fqo" ] && [ "${QOWNER[$q]}" != "${PORTS[0]}" ] && QX=$q
done
# redirections answered by every node, and SADDs run on farm:queues' node
moved() { nodes_sum errorstats errorstat_MOVED:count=; }
sadds() { pcli "$fqo" INFO commandstats | tr -d '\r' | sed -n 's/^cmdstat_sadd:calls=\([0-9]*\).*/\1/p'; }
seq 1 200 >"$D/ids200"
m0=$(moved); s0=$(sadds)
c0=$(conns); c1=$(conns)
jc=$("$ENQ" --queue "$QX" --provider items --chunk-size 20 "$D/ids200" 2>"$D/enqc.err")
c2=$(conns)
m1=$(moved); s1=$(sadds)
nconn=$(( (c2 - c1) - (c1 - c0) ))
echo "info: an enqueue over the cluster opened $nconn connection(s) to the nodes"
check "enqueuer: a job made over the cluster ($jc)" test -n "$jc"
check "enqueuer: at most one connection per primary in one run ($nconn)" test "$nconn" -le 3
# its slot map sends each command to its slot's primary from the start
eq "enqueuer: no command answered MOVED (the slot map from its seed)" 0 "$((m1 - m0))"
# the queue is registered (its settings say so): no SADD farm:queues
eq "enqueuer: a queue's second job adds nothing to farm:queues" "${s0:-0}" "${s1:-0}"
wait_status "$jc" completed 30 "$QX"
# a registration lost (an enqueuer killed between job_create and its SADD
# leaves the mark unset): the queue's next job registers it again
ccli SREM farm:queues "$QX" >/dev/null
ccli HDEL "farm:{$QX}:settings" registered >/dev/null
jr=$("$ENQ" --queue "$QX" --provider items --chunk-size 20 "$D/ids200" 2>"$D/enqr.err")
eq "enqueuer: a queue missing from farm:queues is registered by its next job" "1 1" \
  "$(ccli SISMEMBER farm:queues "$QX") $(ccli HGET "farm:{$QX}:settings" registered)"
wait_status "$jr" completed 30 "$QX"

# ---- drain: SIGTERM wakes the BLMOVE on each queue's own primary ----
# An idle worker waits in BLMOVE (5 s at a time) on the three primaries;
# CLIENT ID and CLIENT UNBLOCK go to the node of each queue, so it exits at
# once instead of when the BLMOVEs on the other nodes time out.
ef_worker_start "$D/wd.log" --providers "$D/p.json" --queue "$QA,$QB,$QC" --concurrency 4
wd=$EF_LAST_PID
ef_wait_for 15 "[ \$(ccli ZCARD farm:workers) -ge 3 ]"
sleep 1
td=$(date +%s%N)
kill -TERM "$wd"; wait "$wd"; rc=$?
dms=$(( ($(date +%s%N) - td) / 1000000 ))
echo "info: an idle worker on three primaries exited $dms ms after SIGTERM"
eq "drain: an idle worker on three primaries exits 0 on SIGTERM" 0 "$rc"
check "drain: ... within 2 s ($dms ms), its BLMOVEs unblocked on every primary" test "$dms" -lt 2000

# ---- scripts/enqueue.sh (redis-cli -c) and statusd across the nodes ----
U=""
ef_spawn "$D/sd.log" "$BIN/statusd" --listen 127.0.0.1:0 --port-file "$D/sd.port"
if ef_wait_for 10 test -s "$D/sd.port" && ef_wait_for 10 "curl -sf http://127.0.0.1:\$(cat $D/sd.port)/health"; then
  U="http://127.0.0.1:$(cat "$D/sd.port")"
  # progress events are published on QB's primary, statusd listens on one node
  timeout 15 curl -sN "$U/events?queue=$QB" >"$D/sse.q" 2>/dev/null & sse=$!
  sleep 0.5
fi
seq 1 30 >"$D/ids30"
j=$(bash "$EF_ROOT/scripts/enqueue.sh" --queue "$QB" --provider items --chunk-size 10 "$D/ids30" 2>"$D/sh.err")
if [ -n "$j" ] && wait_status "$j" completed 20 "$QB"; then
  eq "enqueue.sh: a job through redis+cluster:// done, exact counts" "30 30 0 completed" "$(counts "$j" "$QB")"
else
  fail "enqueue.sh: a job through redis+cluster://" "$(cat "$D/sh.err") $(counts "$j" "$QB")"
fi
if [ -n "$U" ]; then
  # the last event follows the job's completion (statusd fetches the job
  # after the message): waited for, not raced by the kill
  ef_wait_for 5 'grep -q "\"processed\":30" "$D/sse.q"'
  kill "$sse" 2>/dev/null; wait "$sse" 2>/dev/null
  contains "statusd: SSE of $QB carries the job's progress published on its primary" "\"processed\":30" "$(cat "$D/sse.q")"
fi
out=$(bash "$EF_ROOT/scripts/enqueue.sh" --queue "$QB" --provider nosuch "$D/ids30" 2>&1)
contains "enqueue.sh: an unknown provider refused in a cluster too" "unknown provider 'nosuch'" "$out"
if [ -n "${U:-}" ]; then
  qs=$(curl -s "$U/queues")
  for q in "$QA" "$QB" "$QC"; do contains "statusd: /queues lists $q (on its own primary)" "\"$q\"" "$qs"; done
  contains "statusd: /jobs?queue=$QC from its node" "${JOB[$QC]}" "$(curl -s "$U/jobs?queue=$QC")"
  contains "statusd: /workers sees both workers" "2" "$(curl -s "$U/workers" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(len(d.get("workers", d) if isinstance(d, dict) else d))')"
  m=$(curl -s "$U/metrics")
  line=$(printf '%s\n' "$m" | grep '^enrichfarm_entities_total{' | grep "queue=\"$QC\"" | grep 'outcome="updated"')
  check "statusd: /metrics counts $QC's entities from its node ($line)" \
    awk -v v="${line##* }" -v n=$((N * 9 / 10)) 'BEGIN { exit !(v + 0 == n) }'
  r=$(curl -s -o /dev/null -w '%{http_code}' -X POST "$U/jobs" -H 'Content-Type: application/json' \
    -d '{"provider":"items","queue":"'"$QA"'","entities":[{"id":"1"},{"id":"2"}],"chunk_size":1,"job_id":"SD1"}')
  eq "statusd: POST /jobs in a cluster (job_create on the queue's slot, the queue registered apart)" 201 "$r"
  wait_status SD1 completed 20 "$QA"
  eq "statusd: that job done" "2 2 0 completed" "$(counts SD1 "$QA")"
  # a queue that never had a job: statusd registers it and sets the mark
  r=$(curl -s -o /dev/null -w '%{http_code}' -X POST "$U/jobs" -H 'Content-Type: application/json' \
    -d '{"provider":"items","queue":"sdnew","entities":[{"id":"1"}],"job_id":"SD2"}')
  eq "statusd: POST /jobs on a new queue registers it (farm:queues, the settings' mark)" "201 1 1" \
    "$r $(ccli SISMEMBER farm:queues sdnew) $(ccli HGET 'farm:{sdnew}:settings' registered)"
else
  fail "statusd: starts on redis+cluster://" "$(tail -5 "$D/sd.log")"
fi
# ---- migrate: the slot of QA moves to another primary mid-job ----
slot=$(pcli "$BASE" CLUSTER KEYSLOT "{$QA}")
src=$(owner_of "$slot"); dst=${QOWNER[$QB]}
src_id=$(pcli "$src" CLUSTER MYID); dst_id=$(pcli "$dst" CLUSTER MYID)
M=$((N * 3 / 2)) # long enough to be running still when the slot changes hands
seq 1 "$M" >"$D/idsm"
j=$("$ENQ" --queue "$QA" --provider items --chunk-size 20 "$D/idsm" 2>/dev/null)
ef_wait_for 20 "[ \$(jf $j processed $QA) -gt $((N / 10)) ]"
pcli "$dst" CLUSTER SETSLOT "$slot" IMPORTING "$src_id" >/dev/null
pcli "$src" CLUSTER SETSLOT "$slot" MIGRATING "$dst_id" >/dev/null
moved_keys=0
for _ in $(seq 1 400); do
  keys=$(pcli "$src" CLUSTER GETKEYSINSLOT "$slot" 200)
  [ -z "$keys" ] && break
  # shellcheck disable=SC2086
  pcli "$src" MIGRATE 127.0.0.1 "$dst" "" 0 5000 REPLACE KEYS $keys >/dev/null
  moved_keys=$((moved_keys + $(echo "$keys" | wc -l)))
done
sleep 0.5 # every key on dst, the slot still MIGRATING: commands sent to src are ASKed
[ -n "${U:-}" ] && m_ask=$(curl -s "$U/metrics" | grep '^enrichfarm_statusd_redis_redirects_total{kind="ask"}')
sleep 0.5
# the new owner first, then the old one (the order of the Cluster specification)
for p in "$dst" "$src" "${QOWNER[$QC]}"; do pcli "$p" CLUSTER SETSLOT "$slot" NODE "$dst_id" >/dev/null; done
at=$(jf "$j" processed "$QA")
echo "info: slot $slot of $QA moved from :$src to :$dst with $moved_keys keys, $at of $M entities done"
check "migrate: statusd followed ASK too, counted in /metrics (${m_ask:-none})" \
  awk -v v="${m_ask##* }" 'BEGIN { exit !(v + 0 >= 1) }'
wait_status "$j" completed 60 "$QA"
eq "migrate: job on $QA: exact counts after its slot moved" "$M $M 0 completed" "$(counts "$j" "$QA")"
check "migrate: the workers followed ASK (a log line)" grep -q "ASK slot $slot" "$D/w1.log" "$D/w2.log"
check "migrate: the workers followed MOVED (a log line)" grep -q "MOVED slot $slot" "$D/w1.log" "$D/w2.log"
eq "migrate: the queue now lives on :$dst" "$dst" "$(owner_of "$slot")"

# ---- the enqueuer's pipeline when its queue's slot moves ----
# a queue no worker serves; the enqueuer reads a slow stdin: it makes the
# job and appends the first chunks, then the slot moves to another primary
# (keys migrated, SETSLOT NODE), then the rest comes: its pipelined appends
# reach the old owner, are answered MOVED, and must be followed
QM=""
for c in $(seq 1 60); do
  s=$(pcli "$BASE" CLUSTER KEYSLOT "{m$c}")
  [ "$s" != "$(pcli "$BASE" CLUSTER KEYSLOT "{$QA}")" ] && { QM="m$c"; break; }
done
mslot=$(pcli "$BASE" CLUSTER KEYSLOT "{$QM}")
msrc=$(owner_of "$mslot"); mdst=""
for p in "${QOWNER[@]}"; do [ "$p" != "$msrc" ] && mdst=$p; done
( seq 1 700; sleep 3; seq 701 2000 ) |
  "$ENQ" --queue "$QM" --provider items --chunk-size 10 --job-id JM - >"$D/enqm.out" 2>"$D/enqm.err" &
enqm=$!
ef_wait_for 10 "[ \$(ccli HGET 'farm:{$QM}:job:JM' status) = enqueuing ]"
sleep 0.5
pcli "$mdst" CLUSTER SETSLOT "$mslot" IMPORTING "$(pcli "$msrc" CLUSTER MYID)" >/dev/null
pcli "$msrc" CLUSTER SETSLOT "$mslot" MIGRATING "$(pcli "$mdst" CLUSTER MYID)" >/dev/null
keys=$(pcli "$msrc" CLUSTER GETKEYSINSLOT "$mslot" 100)
# shellcheck disable=SC2086
[ -n "$keys" ] && pcli "$msrc" MIGRATE 127.0.0.1 "$mdst" "" 0 5000 REPLACE KEYS $keys >/dev/null
for p in "$mdst" "$msrc" "${QOWNER[@]}"; do pcli "$p" CLUSTER SETSLOT "$mslot" NODE "$(pcli "$mdst" CLUSTER MYID)" >/dev/null 2>&1; done
wait "$enqm"; rc=$?
eq "enqueuer: exit 0 though its queue's slot moved mid-enqueue (MOVED followed in the pipeline)" 0 "$rc"
[ "$rc" = 0 ] || echo "enqueuer said: $(cat "$D/enqm.err")"
eq "enqueuer: the job is whole on the new owner" "queued 2000 200" \
  "$(pcli "$mdst" HMGET "farm:{$QM}:job:JM" status total chunks_total | tr '\n' ' ' | sed 's/ $//')"
echo "info: migrate phase done at ${SECONDS} s"
# ---- failover: the primary of QC is SIGKILLed mid-job ----
slot=$(pcli "$BASE" CLUSTER KEYSLOT "{$QC}")
victim=$(owner_of "$slot")
seq 1 "$N" >"$D/ids2"
j=$("$ENQ" --queue "$QC" --provider items --chunk-size 20 "$D/ids2" 2>/dev/null)
ef_wait_for 20 "[ \$(jf $j processed $QC) -gt $((N / 5)) ]"
kill -9 "${NODE_PID[$victim]}"; wait "${NODE_PID[$victim]}" 2>/dev/null
t_kill=$SECONDS
newp=""
promoted() { newp=$(owner_of "$slot"); [ -n "$newp" ] && [ "$newp" != "$victim" ]; }
if ef_wait_for 30 promoted; then
  ok "failover: a replica took slot $slot over (:$newp, $((SECONDS - t_kill)) s)"
else
  fail "failover: a replica took over" "$(pcli "$BASE" CLUSTER NODES | tr '\n' ';')"
fi
wait_status "$j" completed 90 "$QC"
eq "failover: job on $QC: exact counts after its primary died" "$N $N 0 completed" "$(counts "$j" "$QC")"
seq 1 40 >"$D/ids3"
t_new=$SECONDS
j=$("$ENQ" --queue "$QC" --provider items --chunk-size 10 "$D/ids3" 2>/dev/null)
if wait_status "$j" completed 15 "$QC"; then
  ok "failover: a new job on $QC taken and done in $((SECONDS - t_new)) s"
else
  fail "failover: a new job on $QC within 15 s" "$(counts "$j" "$QC")"
fi
check "failover: the workers are still alive" kill -0 "${WPIDS[0]}" "${WPIDS[1]}"
for p in "${WPIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
for p in "${WPIDS[@]}"; do wait "$p" 2>/dev/null; done
bad=$(grep -l -E "AddressSanitizer|runtime error:|LeakSanitizer" "$D"/w*.log "$D"/sd.log "$D"/*.err 2>/dev/null)
eq "no sanitizer report in the logs of the workers, statusd and the enqueuers" "" "$bad"
ef_finish
