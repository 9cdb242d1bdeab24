#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# ef-test: parallel
# Redis Sentinel, with real servers: a primary, a replica and three
# sentinels on private 127.0.0.1 ports (short down-after-milliseconds and
# failover-timeout), mockprov, two workers, statusd and `enqueuer --wait`,
# all on one redis+sentinel:// URL (the data nodes and the sentinels with
# different passwords, percent-encoded in the URL).  The primary is SIGKILLed mid-job: the
# sentinels promote the replica and every program follows it without a
# restart; the job completes with exact counts and a new job completes
# afterwards.  Also: a sentinel that names a replica is refused (ROLE says
# slave) by the worker and by the enqueuer.  Skips where the sentinel mode
# of redis-server cannot run.
source "$(dirname "$0")/lib.sh"

N=${EF_SENTINEL_N:-3000}
ef_setup
# stop our servers by PID and reap them quietly, then the usual cleanup
trap 'for p in "${EF_PIDS[@]}"; do kill -9 "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; ef_cleanup' EXIT
D=$EF_TMP
ENQ="$BIN/enqueuer"
now_ms() { date +%s%3N; }

if ! redis-server --help 2>&1 | grep -q -- '--sentinel'; then
  skip sentinel "this redis-server has no --sentinel mode"
  ef_finish
fi

# ports: a random base per run in 26000..29999 (below the ephemeral range,
# apart from test_cluster_slots.sh's ports and bus ports), checked free
base=$((26000 + (RANDOM % 400) * 10))
for p in $(seq "$base" $((base + 5))); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then base=$((base + 10)); break; fi
done
PP=$base; RP=$((base + 1)); S1=$((base + 2)); S2=$((base + 3)); S3=$((base + 4)); S4=$((base + 5))
# the data nodes and the sentinels have different passwords (the URL says which is which)
DATA_PW='d@ta:pw'; SENT_PW='s&nt'
pcli() {
  local pw=$DATA_PW
  case " $S1 $S2 $S3 $S4 " in *" $1 "*) pw=$SENT_PW ;; esac
  redis-cli --no-auth-warning -a "$pw" -h 127.0.0.1 -p "$1" "${@:2}"
}

# node NAME PORT [args]: a data node; pid in NODE_PID
node() {
  local name=$1 port=$2; shift 2
  mkdir -p "$D/$name"
  redis-server --bind 127.0.0.1 --port "$port" --save '' --appendonly no --dir "$D/$name" \
    --logfile "$D/$name.log" --requirepass "$DATA_PW" --masterauth "$DATA_PW" "$@" &
  NODE_PID=$!
  EF_PIDS+=("$NODE_PID")
  ef_wait_for 10 'pcli '"$port"' PING | grep -q PONG'
}
# sentinel NAME PORT MASTER MASTER_PORT QUORUM DOWN_MS
sentinel() {
  mkdir -p "$D/$1"
  cat >"$D/$1.conf" <<CONF
bind 127.0.0.1
port $2
dir $D/$1
logfile $D/$1.log
sentinel monitor $3 127.0.0.1 $4 $5
sentinel down-after-milliseconds $3 $6
sentinel failover-timeout $3 4000
sentinel parallel-syncs $3 1
sentinel auth-pass $3 $DATA_PW
requirepass "$SENT_PW"
sentinel sentinel-pass "$SENT_PW"
CONF
  redis-server "$D/$1.conf" --sentinel &
  EF_PIDS+=("$!")
  ef_wait_for 10 'pcli '"$2"' PING | grep -q PONG'
}

node primary "$PP" || { fail "sentinel: primary starts" "$(tail -3 "$D/primary.log")"; ef_finish; }
PRIMARY_PID=$NODE_PID
node replica "$RP" --replicaof 127.0.0.1 "$PP" || { fail "sentinel: replica starts" ""; ef_finish; }
if ! sentinel s1 "$S1" m "$PP" 2 1000; then
  skip sentinel "redis-server --sentinel did not start here: $(tail -2 "$D/s1.log" 2>/dev/null)"
  ef_finish
fi
sentinel s2 "$S2" m "$PP" 2 1000 && sentinel s3 "$S3" m "$PP" 2 1000 ||
  { fail "sentinel: three sentinels start" ""; ef_finish; }
# a fourth sentinel watching the replica as if it were a master, never failing over
sentinel s4 "$S4" rep "$RP" 1 600000 || { fail "sentinel: the odd sentinel starts" ""; ef_finish; }
T0=$SECONDS
if ef_wait_for 20 '[ "$(pcli '"$S1"' SENTINEL replicas m | grep -c "^127.0.0.1$")" -ge 1 ] &&
                   [ "$(pcli '"$S1"' SENTINEL sentinels m | grep -c "^127.0.0.1$")" -ge 2 ] &&
                   pcli '"$RP"' INFO replication | grep -q "master_link_status:up"'; then
  ok "sentinel: the set is formed: 1 replica, 3 sentinels ($((SECONDS - T0)) s)"
else
  fail "sentinel: set formed" "$(pcli "$S1" SENTINEL master m | tr '\n' ' ' | head -c 400)"
  ef_finish
fi

Q='?sentinel_password=s%26nt'
URL="redis+sentinel://:d%40ta%3Apw@127.0.0.1:$S1,127.0.0.1:$S2,127.0.0.1:$S3/m$Q"
BADURL="redis+sentinel://:d%40ta%3Apw@127.0.0.1:$S4/rep$Q"
ef_mock_start mock --catalog $((N + 10)) --latency-ms 15 || { fail "sentinel: mockprov" ""; ef_finish; }
ef_items_recipe "$MOCK_PORT" "$D/items.json"

# ---- a sentinel that names a replica: refused, never served ----
ef_worker_start "$D/wbad.log" --redis "$BADURL" --providers "$D/items.json" --id wbad
WBAD=$EF_LAST_PID
if ef_wait_for 10 'grep -q "refused as master rep" "$D/wbad.log"'; then
  ok "replica answer: the worker refuses it: $(grep -m1 'refused as master' "$D/wbad.log" | sed 's/.*refused/refused/')"
else
  fail "replica answer: worker refuses" "$(tail -5 "$D/wbad.log")"
fi
check "replica answer: the worker never says it is connected" sh -c "! grep -q 'connected to master' '$D/wbad.log'"
check "replica answer: the worker keeps asking (alive)" kill -0 "$WBAD"
kill "$WBAD" 2>/dev/null
out=$("$ENQ" --redis "$BADURL" list 2>&1); rc=$?
eq "replica answer: the enqueuer exits 1" 1 "$rc"
contains "replica answer: the enqueuer says why" "not the master" "$out"
seq 1 3 >"$D/bad.ids"
out=$(bash "$EF_ROOT/scripts/enqueue.sh" --redis "$BADURL" --provider items "$D/bad.ids" 2>&1); rc=$?
eq "replica answer: enqueue.sh refuses it (exit 1)" 1 "$rc"
contains "replica answer: enqueue.sh says why" "says it is 'slave', not the master" "$out"
out=$("$ENQ" --redis "redis+sentinel://127.0.0.1:$S1/nosuch$Q" list 2>&1); rc=$?
eq "unknown master: the enqueuer exits 1" 1 "$rc"
contains "unknown master: the enqueuer says why" "does not know that master" "$out"

# ---- the farm on the Sentinel set ----
ef_worker_start "$D/w1.log" --redis "$URL" --providers "$D/items.json" --concurrency 8 \
  --visibility-timeout 3 --id w1
W1=$EF_LAST_PID
ef_worker_start "$D/w2.log" --redis "$URL" --providers "$D/items.json" --concurrency 8 \
  --visibility-timeout 3 --id w2
W2=$EF_LAST_PID
ef_spawn "$D/statusd.log" "$BIN/statusd" --redis "$URL" --listen 127.0.0.1:0 --port-file "$D/sd.port"
SD=$EF_LAST_PID
ef_wait_for 10 'test -s "$D/sd.port"' || fail "statusd starts" "$(tail -3 "$D/statusd.log")"
SDP=$(cat "$D/sd.port" 2>/dev/null)
ef_wait_for 10 'grep -q "connected to master m" "$D/w1.log" && grep -q "connected to master m" "$D/w2.log"' &&
  ok "workers: connected to the master through the sentinels" ||
  fail "workers connect" "$(tail -3 "$D/w1.log")"
contains "workers: the log names the master's address" "127.0.0.1:$PP" "$(grep -m1 'connected to master' "$D/w1.log")"

seq 1 "$N" >"$D/job1.ids"
"$BIN/mockprov" --expect items --catalog $((N + 10)) <"$D/job1.ids" |
  awk '{c[$2]++} END {printf "%d %d\n", c["updated"], c["not_found"]}' >"$D/truth1"
ef_spawn "$D/enq.log" "$ENQ" --redis "$URL" --provider items --chunk-size 20 --wait "$D/job1.ids"
ENQ_PID=$EF_LAST_PID
ef_wait_for 10 'grep -qE "^[A-Za-z0-9_-]+$" "$D/enq.log"' || fail "enqueuer --wait prints the job id" "$(head -3 "$D/enq.log")"
ID=$(grep -m1 -E '^[A-Za-z0-9_-]+$' "$D/enq.log")
rf() { pcli "$1" HGET "farm:{default}:job:$ID" "$2"; }

# kill the primary a quarter of the way in (read on the replica)
if ef_wait_for 30 '[ "$(rf '"$RP"' processed)" -ge $((N / 4)) ]'; then
  before=$(rf "$RP" processed)
  kill -9 "$PRIMARY_PID"; t_kill=$(now_ms); wait "$PRIMARY_PID" 2>/dev/null
  ok "failover: primary SIGKILLed mid-job at processed=$before of $N"
else
  fail "failover: job under way before the kill" "processed=$(rf "$RP" processed)"
fi
if ef_wait_for 25 '[ "$(pcli '"$S1"' SENTINEL get-master-addr-by-name m | sed -n 2p)" = "'"$RP"'" ]'; then
  ok "failover: the sentinels promote the replica ($(($(now_ms) - t_kill)) ms)"
else
  fail "failover: promotion" "$(pcli "$S1" SENTINEL get-master-addr-by-name m | tr '\n' ' ')"
fi
if ef_wait_for 30 '[ "$(rf '"$RP"' status)" = completed ]'; then
  ok "failover: the job completes on the new master ($(($(now_ms) - t_kill)) ms after the kill)"
else
  fail "failover: job completes" "status=$(rf "$RP" status) processed=$(rf "$RP" processed)"
fi
total=$(rf "$RP" total); processed=$(rf "$RP" processed)
u=$(rf "$RP" updated); c=$(rf "$RP" conflicts); nf=$(rf "$RP" not_found); e=$(rf "$RP" errors)
eq "failover: processed == total" "$N $N" "$total $processed"
eq "failover: the counters sum to processed" "$processed" "$((u + c + nf + e))"
eq "failover: updated and not_found equal the truth, no errors" "$(cat "$D/truth1") 0 0" "$u $nf $c $e"
for w in 1 2; do
  contains "failover: worker $w followed the new master" "names 127.0.0.1:$RP as master m" "$(cat "$D/w$w.log")"
done
check "failover: both workers alive, not restarted" kill -0 "$W1" "$W2"

# enqueuer --wait followed through the failover
rc=""
for _ in $(seq 1 100); do kill -0 "$ENQ_PID" 2>/dev/null || break; sleep 0.1; done
if ! kill -0 "$ENQ_PID" 2>/dev/null; then wait "$ENQ_PID"; rc=$?; fi
eq "failover: enqueuer --wait exits 0 when the job completes" 0 "$rc"
contains "failover: enqueuer --wait reconnected" "reconnected to redis" "$(cat "$D/enq.log")"

# statusd followed: it serves the job from the new master
sj=$(curl -s "http://127.0.0.1:$SDP/jobs/$ID")
contains "failover: statusd serves the completed job" '"status":"completed"' "$(printf '%s' "$sj" | tr -d ' ')"
contains "failover: statusd's processed count" "\"processed\":$N" "$(printf '%s' "$sj" | tr -d ' ')"
contains "failover: statusd followed the new master" "names 127.0.0.1:$RP as master m" "$(cat "$D/statusd.log")"

# a new job afterwards, enqueued and done on the new master
seq $((N + 1)) $((N + 200)) | sed 's/^/x/' >"$D/job2.ids"
ID2=$("$ENQ" --redis "$URL" --provider items "$D/job2.ids" 2>"$D/enq2.log")
if [ -n "$ID2" ] && ef_wait_for 15 '[ "$(pcli '"$RP"' HGET "farm:{default}:job:'"$ID2"'" status)" = completed ]'; then
  ok "after failover: a new job completes ($(pcli "$RP" HGET "farm:{default}:job:$ID2" processed) entities)"
else
  fail "after failover: new job" "id=$ID2 $(cat "$D/enq2.log") status=$(pcli "$RP" HGET "farm:{default}:job:$ID2" status)"
fi
# scripts/enqueue.sh on the same URL: resolves the (new) master, checks ROLE
seq 1 100 | sed 's/^/sh/' >"$D/job3.ids"
ID3=$(bash "$EF_ROOT/scripts/enqueue.sh" --redis "$URL" --provider items "$D/job3.ids" 2>"$D/enq3.log")
if [ -n "$ID3" ] && ef_wait_for 15 '[ "$(pcli '"$RP"' HGET "farm:{default}:job:'"$ID3"'" status)" = completed ]'; then
  ok "enqueue.sh: a job through the sentinels completes on the new master"
else
  fail "enqueue.sh on the sentinel URL" "id=$ID3 $(cat "$D/enq3.log")"
fi
# ---- a planned switch: SENTINEL FAILOVER back to the old primary ----
# It comes back as a replica of the new master; a manual failover then
# promotes it while every node stays up, so nothing drops the programs'
# connections: they move on the sentinels' +switch-master announcement.
node primary "$PP" --replicaof 127.0.0.1 "$RP" || fail "switch: the old primary restarts as a replica" ""
if ef_wait_for 15 'pcli '"$PP"' INFO replication | grep -q "master_link_status:up"'; then
  # only what the programs log from here on counts
  for f in w1 w2 statusd; do eval "mark_$f=$(wc -l <"$D/$f.log")"; done
  since() { local m="mark_$1"; tail -n +"$((${!m} + 1))" "$D/$1.log"; }
  t_fo=$(now_ms); fo=""
  for _ in $(seq 1 60); do
    fo=$(pcli "$S1" SENTINEL FAILOVER m 2>&1)
    [ "$fo" = OK ] && break
    sleep 0.25 # NOGOODSLAVE until the sentinels have fresh INFO from it
  done
  eq "switch: SENTINEL FAILOVER accepted" OK "$fo"
  if ef_wait_for 20 '[ "$(pcli '"$S1"' SENTINEL get-master-addr-by-name m | sed -n 2p)" = "'"$PP"'" ]' &&
     ef_wait_for 10 'since w1 | grep -q "names 127.0.0.1:'"$PP"' as master m" &&
                     since w2 | grep -q "names 127.0.0.1:'"$PP"' as master m" &&
                     since statusd | grep -q "names 127.0.0.1:'"$PP"' as master m"'; then
    ok "switch: workers and statusd moved to the promoted node ($(($(now_ms) - t_fo)) ms)"
  else
    fail "switch: programs follow" "$(grep -h 'sentinel\|lost' "$D/w1.log" "$D/statusd.log" | tail -6)"
  fi
  for f in w1 w2 statusd; do
    contains "switch: $f heard the +switch-master announcement" "announced +switch-master of m to 127.0.0.1:$PP" "$(since $f)"
  done
  seq 1 150 | sed 's/^/sw/' >"$D/job4.ids"
  ID4=$("$ENQ" --redis "$URL" --provider items "$D/job4.ids" 2>"$D/enq4.log")
  if [ -n "$ID4" ] && ef_wait_for 15 '[ "$(pcli '"$PP"' HGET "farm:{default}:job:'"$ID4"'" status)" = completed ]'; then
    ok "switch: a job on the promoted node completes ($(pcli "$PP" HGET "farm:{default}:job:$ID4" processed) entities)"
  else
    fail "switch: job after the planned switch" "id=$ID4 $(cat "$D/enq4.log")"
  fi
else
  fail "switch: the old primary syncs as a replica" "$(tail -3 "$D/primary.log")"
fi
check "no sanitizer report in any program's log" sh -c "! grep -l 'AddressSanitizer\|runtime error:' '$D'/w*.log '$D'/statusd.log '$D'/enq*.log"
echo "info: sentinel test $((SECONDS - T0)) s after the set formed"
ef_finish
