#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Control that acts at once: after `enqueuer pause JOB`, `cancel JOB` and
# `pause` (the queue) return, no new provider request for that work starts
# more than about 100 ms later (requests in flight may finish), and every
# chunk held is parked, dropped or handed back in one step.  The referee is
# the mock provider's request count and the time of its last request.
# Also: a control message missed while a worker's subscription was down
# (the job paused behind its back) still stops it once it reconnects; a
# worker started while a job is paused does not work it; resume completes
# with exact counts.
source "$(dirname "$0")/lib.sh"
ef_setup
ENQ="$BIN/enqueuer"
Q='farm:{default}'
D=$EF_TMP
# requests that may still start after the command returned: ~100 ms of two
# workers at 16 x 10/s, plus slack for a slow machine (before the fix: 100s)
MAX_LATE=40
LATE_MS=400 # the last request may arrive this long after the command

counts() { echo "$(job_field "$1" updated) $(job_field "$1" not_found) $(job_field "$1" conflicts) $(job_field "$1" errors)"; }
now_ms() { date +%s%3N; }
stats() { curl -s "http://127.0.0.1:$P/stats" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["requests"], d["last_request_ms"])'; }
# wait_ms MS 'CONDITION': polls every 20 ms, bounded
wait_ms() {
  local end=$(($(now_ms) + $1))
  while [ "$(now_ms)" -le "$end" ]; do eval "$2" >/dev/null 2>&1 && return 0; sleep 0.02; done
  return 1
}
sleep_until() { local d=$(($1 - $(now_ms))); [ "$d" -gt 0 ] && sleep "$(awk "BEGIN {print $d / 1000}")"; }
refs_of() { rcli LRANGE "$Q:$2" 0 -1 | grep -c "^$1:"; }
kill_workers() { local p; for p in "$@"; do kill -9 "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; }

# after NAME T1 R1: checks what the provider saw after the command returned
# at T1 (ms) with R1 requests counted then, 1.5 s later
after() {
  local name=$1 t1=$2 r1=$3 r2 last
  sleep_until $((t1 + 1500))
  read -r r2 last < <(stats)
  echo "info: $name: $((r2 - r1)) requests after the command, the last $((last - t1)) ms after"
  if [ $((r2 - r1)) -le $MAX_LATE ]; then ok "$name: at most $MAX_LATE requests after the command"
  else fail "$name: at most $MAX_LATE requests after the command" "$((r2 - r1)) requests"; fi
  if [ $((last - t1)) -le $LATE_MS ]; then ok "$name: no request started ${LATE_MS} ms after the command"
  else fail "$name: no request started ${LATE_MS} ms after the command" "last request $((last - t1)) ms after"; fi
}

ef_mock_start mock --catalog 20000 --latency-ms 100
P=$MOCK_PORT
ef_items_recipe "$P" "$D/items.json"
seq 1 2000 >"$D/ids"
ws=()
for i in 1 2; do ef_worker_start "$D/w$i.log" --providers "$D/items.json" --concurrency 16; ws+=("$EF_LAST_PID"); done

# ---- job pause: stops at once, chunks parked in one step; resume exact ----
id=$("$ENQ" --provider items --chunk-size 50 "$D/ids" 2>/dev/null)
ef_wait_for 30 'test "$(job_field "$id" processed)" -gt 200'
check "pause: chunks are held before the pause" test "$(rcli LLEN "$Q:processing")" -ge 1
"$ENQ" pause "$id" >/dev/null
t1=$(now_ms); read -r r1 _ < <(stats)
if wait_ms 600 'test "$(rcli LLEN "$Q:processing")" = 0'; then ok "pause: held chunks back within 0.6 s"
else fail "pause: held chunks back within 0.6 s" "$(rcli LLEN "$Q:processing") still in processing"; fi
after "pause" "$t1" "$r1"
check "pause: chunks parked" test "$(rcli LLEN "$Q:job:$id:parked")" -ge 1
eq "pause: no lease left" 0 "$(rcli ZCARD "$Q:leases")"
p1=$(job_field "$id" processed)
# a worker killed and another started while the job is paused: no work
kill_workers "${ws[1]}"
ef_worker_start "$D/w3.log" --providers "$D/items.json" --concurrency 16; ws[1]=$EF_LAST_PID
read -r r1 _ < <(stats)
sleep 1.5
read -r r2 _ < <(stats)
eq "pause: a worker started while paused sends nothing" "$r1" "$r2"
eq "pause: progress stopped" "$p1" "$(job_field "$id" processed)"
eq "pause: status paused" paused "$(job_field "$id" status)"
"$ENQ" resume "$id" >/dev/null
if ef_wait_job "$id" completed 40; then ok "resume: job completes"; else fail "resume: job completes" "$(counts "$id")"; fi
eq "resume: exact counts" "1800 200 0 0" "$(counts "$id")"
eq "resume: processed = total" 2000 "$(job_field "$id" processed)"

# ---- queue pause: held chunks go back to pending; resume restarts ----
id=$("$ENQ" --provider items --chunk-size 50 "$D/ids" 2>/dev/null)
ef_wait_for 30 'test "$(job_field "$id" processed)" -gt 200'
"$ENQ" pause >/dev/null
t1=$(now_ms); read -r r1 _ < <(stats)
if wait_ms 600 'test "$(rcli LLEN "$Q:processing")" = 0'; then ok "queue pause: held chunks back within 0.6 s"
else fail "queue pause: held chunks back within 0.6 s" "$(rcli LLEN "$Q:processing") still in processing"; fi
after "queue pause" "$t1" "$r1"
check "queue pause: the chunks wait in pending" test "$(refs_of "$id" pending)" -ge 1
check "queue pause: job not finished" test "$(job_field "$id" processed)" -lt 2000
"$ENQ" resume >/dev/null
if ef_wait_job "$id" completed 40; then ok "queue resume: job completes"; else fail "queue resume: job completes" "$(counts "$id")"; fi
eq "queue resume: exact counts" "1800 200 0 0" "$(counts "$id")"

# ---- cancel: stops at once, held chunks dropped ----
id=$("$ENQ" --provider items --chunk-size 50 "$D/ids" 2>/dev/null)
ef_wait_for 30 'test "$(job_field "$id" processed)" -gt 200'
"$ENQ" cancel "$id" >/dev/null
t1=$(now_ms); read -r r1 _ < <(stats)
if wait_ms 600 'test "$(rcli LLEN "$Q:processing")" = 0'; then ok "cancel: held chunks dropped within 0.6 s"
else fail "cancel: held chunks dropped within 0.6 s" "$(rcli LLEN "$Q:processing") still in processing"; fi
after "cancel" "$t1" "$r1"
eq "cancel: no chunk of the job left in pending" 0 "$(refs_of "$id" pending)"
eq "cancel: status cancelled" cancelled "$(job_field "$id" status)"
check "cancel: remaining entities never requested" test "$(job_field "$id" processed)" -lt 2000

# ---- statusd's pause and resume run the same scripts: same bound ----
ef_spawn "$D/sd.log" "$BIN/statusd" --listen 127.0.0.1:0 --port-file "$D/sd.port"
ef_wait_for 5 test -s "$D/sd.port" || fail "statusd starts" "$(cat "$D/sd.log")"
U="http://127.0.0.1:$(cat "$D/sd.port")"
id=$("$ENQ" --provider items --chunk-size 50 "$D/ids" 2>/dev/null)
ef_wait_for 30 'test "$(job_field "$id" processed)" -gt 200'
contains "statusd pause answers" paused "$(curl -s -X POST "$U/jobs/$id/pause")"
t1=$(now_ms); read -r r1 _ < <(stats)
after "statusd pause" "$t1" "$r1"
eq "statusd pause: nothing held" 0 "$(rcli LLEN "$Q:processing")"
curl -s -X POST "$U/jobs/$id/resume" >/dev/null
if ef_wait_job "$id" completed 40; then ok "statusd resume: job completes"; else fail "statusd resume: job completes" "$(counts "$id")"; fi
eq "statusd resume: exact counts" "1800 200 0 0" "$(counts "$id")"

# ---- a missed message: the job paused while the subscription was down ----
# Slow answers (1.5 s, 32 in flight): before the fix the worker went on
# sending a request for each answer until an ack told it the job status.
curl -s "http://127.0.0.1:$P/control?latency_ms=1500" >/dev/null
id=$("$ENQ" --provider items --chunk-size 50 "$D/ids" 2>/dev/null)
ef_wait_for 30 'test "$(job_field "$id" processed)" -gt 40'
rcli CLIENT KILL TYPE pubsub >/dev/null
"$ENQ" pause "$id" >/dev/null # published while nobody listens
t1=$(now_ms)
sleep 0.7
read -r r1 _ < <(stats)
sleep 2.3
read -r r2 _ < <(stats)
eq "missed message: no request from 0.7 s to 3 s after the pause" "$r1" "$r2"
if wait_ms 2000 'test "$(rcli LLEN "$Q:processing")" = 0'; then ok "missed message: chunks parked"
else fail "missed message: chunks parked" "$(rcli LLEN "$Q:processing") still in processing"; fi
curl -s "http://127.0.0.1:$P/control?latency_ms=0" >/dev/null
"$ENQ" resume "$id" >/dev/null
if ef_wait_job "$id" completed 40; then ok "missed message: resume completes"; else fail "missed message: resume completes" "$(counts "$id")"; fi
eq "missed message: exact counts" "1800 200 0 0" "$(counts "$id")"
# a clean exit (under SAN=1 this also checks for leaks)
rcs=""
for p in "${ws[@]}"; do kill -TERM "$p"; done
for p in "${ws[@]}"; do wait "$p"; rcs="$rcs$?"; done
eq "workers drain and exit 0" 00 "$rcs"
ef_finish
