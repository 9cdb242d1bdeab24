#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# ef-test: parallel
# Secrets and Redis access control.
#
# Secrets: a recipe sends `Authorization: Bearer ${SECRET_TOKEN}` and
# `?api_key=${SECRET_KEY}`; jobs run through the mock provider (answers,
# 503s, 404s and a provider that refuses connections, with the response
# cache on), then the secret values are looked for - and must be absent -
# in every Redis key and value (typed reads, and an uncompressed RDB), in
# every command Redis received (MONITOR), in the worker's (debug, text and
# JSON), enqueuer's and statusd's logs, in the output of every statusd GET
# route and of the enqueuer's admin verbs, and in a core dump of the worker.
# The mock provider's own request log must hold the key: it was sent.
#
# Redis AUTH/ACL: a redis-server with requirepass and a user "farm" allowed
# only ~farm:* keys, &farm:* channels and the commands the farm sends
# (listed below; docs/reliability.md explains it).  Enqueuer, worker and
# statusd run as that user over TCP (redis://user:pass@127.0.0.1:PORT/0)
# and over the unix socket (unix:///path?user=..&password=..): jobs
# complete.  Wrong or missing passwords give clear errors; the user cannot
# touch anything outside farm:*; no password appears in any log line.
source "$(dirname "$0")/lib.sh"
ef_setup
ENQ="$BIN/enqueuer"
SD="$BIN/statusd"
WK="$BIN/worker"
D=$EF_TMP
Q='farm:{default}'
export SECRET_TOKEN='s3cr3t-XYZ-123'
export SECRET_KEY='k3y-ABC-789'

# leaks NAME FILE...: passes when no file holds either secret value
leaks() {
  local name=$1 hits
  shift
  hits=$(grep -a -l -F -e "$SECRET_TOKEN" -e "$SECRET_KEY" "$@" 2>/dev/null)
  if [ -z "$hits" ]; then ok "$name: no secret"; else fail "$name: no secret" "found in: $hits"; fi
}

# ---- secrets ----

ef_mock_start mock --log --fail-first 1
cat >"$D/providers.json" <<JSON
{"providers": {
 "items": {
   "steps": [{"method": "GET", "url": "http://127.0.0.1:$MOCK_PORT/item/{id}?api_key=\${SECRET_KEY}",
              "headers": ["Authorization: Bearer \${SECRET_TOKEN}", "X-Api-Key: \${SECRET_KEY}"]}],
   "extract": {"title": "/title"},
   "cache_ttl_s": 300, "timeout_ms": 3000, "retries": 3},
 "down": {
   "steps": [{"url": "http://127.0.0.1:1/item/{id}?api_key=\${SECRET_KEY}",
              "headers": {"Authorization": "Bearer \${SECRET_TOKEN}"}}],
   "extract": {"title": "/title"}, "timeout_ms": 500, "retries": 1}}}
JSON

redis-cli -s "$D/redis.sock" MONITOR >"$D/monitor.log" 2>&1 &
MONPID=$!
EF_PIDS+=("$MONPID")
ef_wait_for 5 'grep -q OK "$D/monitor.log"'

ef_worker_start "$D/worker-text.log" --providers "$D/providers.json" --log-level debug --concurrency 4
W1=$EF_LAST_PID
ef_worker_start "$D/worker-json.log" --providers "$D/providers.json" --log-level debug \
  --log-format json --concurrency 4
W2=$EF_LAST_PID
rm -f "$D/sd.port"
ef_spawn "$D/statusd.log" "$SD" --listen 127.0.0.1:0 --port-file "$D/sd.port" --log-level debug
ef_wait_for 5 test -s "$D/sd.port" || fail "statusd starts" "$(cat "$D/statusd.log")"
PORT=$(cat "$D/sd.port")
ef_wait_for 10 '[ "$(rcli HLEN farm:providers)" = 2 ]' || fail "workers registered" "$(cat "$D/worker-text.log")"

{ seq 1 40; echo 999999999; } >"$D/ids.txt"
J1=$("$ENQ" --provider items --log-level debug "$D/ids.txt" 2>"$D/enq1.log")
ef_wait_job "$J1" completed 30 || fail "items job completes" "$(rcli HGETALL "$Q:job:$J1" | tr '\n' ' ')"
truth=$("$BIN/mockprov" --expect items <"$D/ids.txt" | awk '{n[$2]++} END {print n["updated"]+0, n["not_found"]+0}')
eq "items job: outcomes as the mock's truth (updated, not_found)" "$truth" \
  "$(job_field "$J1" updated) $(job_field "$J1" not_found)"
# the same ids again: answered from the response cache (keyed by a digest of the URL)
J2=$("$ENQ" --provider items --log-level debug "$D/ids.txt" 2>"$D/enq2.log")
ef_wait_job "$J2" completed 30 || fail "cached job completes" ""
check "second run answered from the cache" test "$(job_field "$J2" cached)" -gt 0
J3=$(seq 1 5 | "$ENQ" --provider down --log-level debug - 2>"$D/enq3.log")
ef_wait_job "$J3" completed 30 || fail "refused-connection job completes" ""
eq "refused connections end as errors (error log filled)" "5 5" \
  "$(job_field "$J3" errors) $(rcli LLEN "$Q:job:$J3:errors")"
kill -HUP "$W1" # re-reads the recipes: more log lines
sleep 0.3

# statusd: every GET route, and the enqueuer's read verbs
routes=(/ /dashboard.js /dashboard.css /health /jobs /queues /workers /metrics)
for j in "$J1" "$J2" "$J3"; do
  routes+=("/jobs/$j" "/jobs/$j/errors" "/jobs/$j/results" "/jobs/$j/events")
done
n=0
for r in "${routes[@]}"; do
  curl -s -m 5 -D - "http://127.0.0.1:$PORT$r" >"$D/route.$n" 2>&1
  n=$((n + 1))
done
curl -s -m 1 "http://127.0.0.1:$PORT/events?queue=default" >"$D/route.events" 2>&1
check "statusd routes answered" grep -q '"status":"completed"' "$D/route.8"
leaks "statusd output of ${#routes[@]} GET routes + /events" "$D"/route.*
for j in "$J1" "$J3"; do
  "$ENQ" status "$j" >>"$D/admin.out" 2>&1
  "$ENQ" results "$j" >>"$D/admin.out" 2>&1
done
"$ENQ" list >>"$D/admin.out" 2>&1
"$ENQ" rate-limit items >>"$D/admin.out" 2>&1
check "enqueuer admin verbs answered" grep -q "$J1" "$D/admin.out"
leaks "enqueuer admin verbs output" "$D/admin.out"

# Redis: every key name and value, read by type
rcli --scan >"$D/keys"
: >"$D/values"
while read -r k; do
  echo "$k" >>"$D/values"
  case $(rcli TYPE "$k") in
  string) rcli GET "$k" ;;
  hash) rcli HGETALL "$k" ;;
  list) rcli LRANGE "$k" 0 -1 ;;
  set) rcli SMEMBERS "$k" ;;
  zset) rcli ZRANGE "$k" 0 -1 WITHSCORES ;;
  esac >>"$D/values"
done <"$D/keys"
check "Redis holds the results and the cache" grep -q -e '^farm:cache:' -e 'Item 1' "$D/values"
leaks "Redis: $(wc -l <"$D/keys") keys, names and values" "$D/values"
rcli CONFIG SET rdbcompression no >/dev/null
rcli SAVE >/dev/null
leaks "Redis: uncompressed RDB snapshot" "$D/dump.rdb"

kill "$MONPID" 2>/dev/null
wait "$MONPID" 2>/dev/null
check "MONITOR recorded the run" test "$(wc -l <"$D/monitor.log")" -gt 50
leaks "every command Redis received (MONITOR, $(wc -l <"$D/monitor.log") lines)" "$D/monitor.log"

check "the mock provider was sent the key (its own log)" grep -q -F "$SECRET_KEY" "$D/mock.log"

# worker shutdown logs too
kill -TERM "$W1" "$W2"
wait "$W1" "$W2" 2>/dev/null
leaks "worker logs (text and JSON, debug)" "$D/worker-text.log" "$D/worker-json.log"
check "worker debug log is not empty" test "$(wc -l <"$D/worker-text.log")" -gt 5
leaks "enqueuer logs (debug)" "$D"/enq*.log
leaks "statusd log (debug)" "$D/statusd.log"

# A core dump of a worker that has used the secrets.  Where the kernel
# writes cores to a file (core_pattern without a pipe) and we may raise
# RLIMIT_CORE, a control process (sleep) must dump; the worker must either
# leave no core (it made itself non-dumpable) or a core without the secrets.
pattern=$(cat /proc/sys/kernel/core_pattern 2>/dev/null)
if [ "${SAN:-0}" = 1 ]; then
  skip "worker core dump" "sanitizer build (ASan disables core dumps)"
elif [ -z "$pattern" ] || [ "${pattern#|}" != "$pattern" ] || [ "${pattern#/}" != "$pattern" ]; then
  skip "worker core dump" "core_pattern '$pattern' does not write into the working directory"
elif ! (ulimit -c unlimited) 2>/dev/null; then
  skip "worker core dump" "RLIMIT_CORE cannot be raised"
else
  mkdir -p "$D/core/ctl" "$D/core/wk"
  (cd "$D/core/ctl" && ulimit -c unlimited && exec sleep 30) &
  cpid=$!
  ef_wait_for 3 'grep -qx sleep /proc/$cpid/comm'
  kill -ABRT "$cpid"
  wait "$cpid" 2>/dev/null
  if [ -z "$(ls "$D/core/ctl")" ]; then
    skip "worker core dump" "even a control process leaves no core here"
  else
    (cd "$D/core/wk" && ulimit -c unlimited &&
      exec "$WK" --providers "$D/providers.json" --log-level debug --concurrency 2) >"$D/worker-core.log" 2>&1 &
    wpid=$!
    J4=$(seq 101 110 | "$ENQ" --provider items - 2>/dev/null)
    ef_wait_job "$J4" completed 20 || fail "job before the core dump completes" ""
    kill -ABRT "$wpid"
    wait "$wpid" 2>/dev/null
    core=$(ls "$D"/core/wk/core* 2>/dev/null | head -1)
    if [ -z "$core" ]; then
      ok "worker core dump: none written (the worker is not dumpable)"
    else
      leaks "worker core dump ($(du -k "$core" | cut -f1) KB)" "$core"
    fi
    rm -rf "$D/core"
  fi
fi

# ---- Redis AUTH and ACL ----

ADMIN_PW='adm1n-S3cret-pw'
FARM_PW='f@rm:Pa55/word-42'          # '@', ':' and '/' must be percent-encoded in URLs
FARM_PW_URL='f%40rm%3APa55%2Fword-42'
WRONG_PW='wr0ng-Pa55-99'
APORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
ASOCK="$D/auth.sock"
# Every command the three programs send, directly or from their Lua
# scripts (scripts run with the caller's permissions), and nothing else.
FARM_CMDS='+ping +select +auth +hello +client|id +client|unblock +script|load +eval +evalsha
  +blmove +lmove +get +set +del +unlink +exists +expire +hget +hgetall +hset +hdel +hexists
  +hincrby +hkeys +hlen +hmget +llen +lrange +lpush +rpush +lrem +ltrim +sadd +smembers +zadd +zcard
  +zrem +zscore +zrangebyscore +zrevrange +zrevrangebyscore +zremrangebyscore +publish
  +subscribe +time'
cat >"$D/auth.conf" <<CONF
bind 127.0.0.1
port $APORT
unixsocket $ASOCK
unixsocketperm 700
save ""
appendonly no
dir $D
requirepass $ADMIN_PW
user farm on >$FARM_PW resetkeys ~farm:* resetchannels &farm:* -@all $(echo $FARM_CMDS)
CONF
redis-server "$D/auth.conf" --logfile "$D/auth-redis.log" &
APID=$!
EF_PIDS+=("$APID")
admin() { redis-cli -h 127.0.0.1 -p "$APORT" --user default --pass "$ADMIN_PW" --no-auth-warning "$@"; }
as_farm() { redis-cli -h 127.0.0.1 -p "$APORT" --user farm --pass "$FARM_PW" --no-auth-warning "$@"; }
ef_wait_for 5 'admin PING | grep -q PONG' || { fail "password-protected redis starts" "$(cat "$D/auth-redis.log")"; ef_finish; }

TCP_URL="redis://farm:$FARM_PW_URL@127.0.0.1:$APORT/0"
UNIX_URL="unix://$ASOCK?user=farm&password=$FARM_PW_URL"
ef_items_recipe "$MOCK_PORT" "$D/items.json"

ef_worker_start "$D/acl-worker-tcp.log" --redis "$TCP_URL" --providers "$D/items.json" --log-level debug
AW1=$EF_LAST_PID
REDIS_URL=$UNIX_URL ef_worker_start "$D/acl-worker-unix.log" --providers "$D/items.json" --log-level debug
AW2=$EF_LAST_PID
rm -f "$D/asd.port"
ef_spawn "$D/acl-statusd.log" "$SD" --redis "$UNIX_URL" --listen 127.0.0.1:0 --port-file "$D/asd.port" \
  --log-level debug
ef_wait_for 5 test -s "$D/asd.port" || fail "statusd (ACL user) starts" "$(cat "$D/acl-statusd.log")"
APORT_SD=$(cat "$D/asd.port")

seq 1 60 >"$D/acl-ids.txt"
if J5=$(timeout 30 "$ENQ" --redis "$TCP_URL" --provider items --wait -q --log-level debug "$D/acl-ids.txt" \
  2>"$D/acl-enq-tcp.log"); then
  ok "ACL user over TCP: enqueue --wait, job completed"
else
  fail "ACL user over TCP: job completes" "$(cat "$D/acl-enq-tcp.log") $(tail -5 "$D/acl-worker-tcp.log")"
fi
eq "ACL user over TCP: outcomes as the mock's truth" \
  "$("$BIN/mockprov" --expect items <"$D/acl-ids.txt" | awk '{n[$2]++} END {print n["updated"]+0, n["not_found"]+0}')" \
  "$(admin HGET "$Q:job:$J5" updated) $(admin HGET "$Q:job:$J5" not_found)"
# An ACL that refuses EVAL (EVALSHA of loaded scripts only), on a node that
# holds no script: the enqueuer's first call of each script, refused as
# EVAL, loads it (SCRIPT LOAD), then runs it with EVALSHA
admin ACL SETUSER farmold on ">$FARM_PW" resetkeys '~farm:*' resetchannels '&farm:*' -@all \
  $(echo $FARM_CMDS | sed 's/+eval //') >/dev/null
admin SCRIPT FLUSH >/dev/null
seq 1 20 >"$D/acl-old-ids.txt"
if J6=$(timeout 30 "$ENQ" --redis "redis://farmold:$FARM_PW_URL@127.0.0.1:$APORT/0" --provider items \
  --wait -q "$D/acl-old-ids.txt" 2>"$D/acl-enq-old.log"); then
  ok "ACL without EVAL: the enqueuer loads the scripts and the job completes"
else
  fail "ACL without EVAL: job completes" "$(cat "$D/acl-enq-old.log")"
fi
eq "ACL without EVAL: all 20 entities done" 20 "$(admin HGET "$Q:job:$J6" processed)"
if J6=$(timeout 30 "$ENQ" --redis "$UNIX_URL" --provider items --wait -q --log-level debug "$D/acl-ids.txt" \
  2>"$D/acl-enq-unix.log"); then
  ok "ACL user over the unix socket (?user=&password=): job completed"
else
  fail "ACL user over the unix socket: job completes" "$(cat "$D/acl-enq-unix.log")"
fi
health=$(curl -s "http://127.0.0.1:$APORT_SD/health")
contains "statusd as the ACL user: redis up" '"redis":"up"' "$health"
for r in "/jobs/$J5" /jobs /queues /workers /metrics "/jobs/$J6/results" "/jobs/$J6/errors"; do
  eq "statusd as the ACL user: GET $r" 200 "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$APORT_SD$r")"
done
contains "statusd as the ACL user: SSE (SUBSCRIBE)" "event: end" \
  "$(curl -s -m 5 "http://127.0.0.1:$APORT_SD/jobs/$J5/events")"
body=$(curl -s -X POST -d '{"provider":"items","ids":["7","8","9"]}' "http://127.0.0.1:$APORT_SD/jobs")
J7=$(echo "$body" | python3 -c 'import json,sys; print(json.load(sys.stdin).get("id",""))' 2>/dev/null)
check "statusd as the ACL user: POST /jobs" test -n "$J7"
ef_wait_for 20 '[ "$(admin HGET "$Q:job:$J7" status)" = completed ]' || fail "the POSTed job completes" "$body"
for v in "status $J5" list "results $J6" pause resume "rate-limit items"; do
  # shellcheck disable=SC2086
  check "enqueuer $v as the ACL user" "$ENQ" --redis "$TCP_URL" $v
done

# wrong and missing passwords
WRONG_URL="redis://farm:$WRONG_PW@127.0.0.1:$APORT/0"
"$ENQ" --redis "$WRONG_URL" --provider items "$D/acl-ids.txt" >"$D/out" 2>"$D/wrong-enq.log"
rc=$?
check "enqueuer, wrong password: exit non-zero" test "$rc" -ne 0
contains "enqueuer, wrong password: clear error" "WRONGPASS" "$(cat "$D/wrong-enq.log")"
"$ENQ" --redis "redis://127.0.0.1:$APORT/0" --provider items "$D/acl-ids.txt" >"$D/out" 2>"$D/nopw-enq.log"
rc=$?
check "enqueuer, no password: exit non-zero" test "$rc" -ne 0
contains "enqueuer, no password: clear error" "NOAUTH" "$(cat "$D/nopw-enq.log")"
"$ENQ" --redis "unix://$ASOCK?user=farm&password=$WRONG_PW" status "$J5" >"$D/out" 2>"$D/wrong-enq2.log"
check "enqueuer status, wrong password (unix): exit non-zero" test $? -ne 0

timeout 6 "$WK" --redis "$WRONG_URL" --providers "$D/items.json" >"$D/wrong-worker.log" 2>&1
rc=$?
contains "worker, wrong password: clear error" "WRONGPASS" "$(cat "$D/wrong-worker.log")"
if [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ]; then
  ok "worker, wrong password: exits non-zero ($rc)"
else
  fail "worker, wrong password: exits non-zero" "still running after 6 s (rc $rc): a supervisor sees a healthy worker that never works"
fi
rm -f "$D/wsd.port"
ef_spawn "$D/wrong-statusd.log" "$SD" --redis "$WRONG_URL" --listen 127.0.0.1:0 --port-file "$D/wsd.port"
ef_wait_for 5 test -s "$D/wsd.port"
wcode=$(curl -s -o "$D/wrong-health" -w '%{http_code}' "http://127.0.0.1:$(cat "$D/wsd.port")/health")
eq "statusd, wrong password: /health 503, redis down" "503 down" \
  "$wcode $(python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("redis"))' "$D/wrong-health" 2>/dev/null)"
contains "statusd, wrong password: clear error" "WRONGPASS" "$(cat "$D/wrong-statusd.log")"

# the restricted user cannot reach anything outside farm:*
admin SET outside:key secret >/dev/null
denied() {
  local name=$1 out
  shift
  out=$(timeout 3 redis-cli -h 127.0.0.1 -p "$APORT" --user farm --pass "$FARM_PW" --no-auth-warning "$@" 2>&1)
  case $out in
  *NOPERM* | *"can't access"*) ok "ACL user denied: $name" ;;
  *) fail "ACL user denied: $name" "$out" ;;
  esac
}
denied "GET outside:key" GET outside:key
denied "SET outside:key" SET outside:key x
denied "DEL outside:key" DEL outside:key
denied "RENAME farm key out" RENAME "$Q:jobs" stolen
denied "KEYS *" KEYS '*'
denied "FLUSHALL" FLUSHALL
denied "CONFIG GET" CONFIG GET requirepass
denied "SCAN" SCAN 0
denied "EVAL touching outside:key" EVAL "return redis.call('get','outside:key')" 0
denied "EVAL with KEYS outside" EVAL "return redis.call('get',KEYS[1])" 1 outside:key
denied "PUBLISH outside channel" PUBLISH outside x
denied "SUBSCRIBE outside channel" SUBSCRIBE outside
denied "ACL LIST" ACL LIST
denied "CLIENT LIST" CLIENT LIST
denied "FLUSHDB" FLUSHDB
eq "ACL user allowed: SET farm:acl-probe" OK "$(as_farm SET farm:acl-probe 1)"
as_farm DEL farm:acl-probe >/dev/null
eq "outside:key untouched" secret "$(admin GET outside:key)"
admin DEL outside:key >/dev/null
eq "every key in the ACL-protected redis is under farm:" "" "$(admin --scan | grep -v '^farm:')"

kill -TERM "$AW1" "$AW2"
wait "$AW1" "$AW2" 2>/dev/null
logs=("$D"/acl-*.log "$D"/wrong-*.log "$D"/nopw-*.log)
hits=$(grep -a -l -F -e "$FARM_PW" -e "$FARM_PW_URL" -e "$WRONG_PW" -e "$ADMIN_PW" -e 'Pa55' "${logs[@]}")
if [ -z "$hits" ]; then
  ok "no password in any log line (${#logs[@]} logs)"
else
  fail "no password in any log line" "found in: $hits"
fi
check "logs do show the redacted URL" grep -q -F 'farm:***@127.0.0.1' "$D/acl-worker-tcp.log"
ef_finish
