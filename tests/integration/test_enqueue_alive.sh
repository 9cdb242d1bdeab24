#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# ef-test: parallel
# An enqueue is kept alive by time, whatever the input rate, and a dead one
# is found with no worker running.  The enqueue heartbeat TTL is shortened
# to 2 s with the test-only ENRICHFARM_TEST_ENQUEUE_TTL_MS (30 s otherwise),
# so each case lasts a few seconds:
# - a slow producer (a line every 0.4 s, and once a line cut in two by a
#   pause longer than the TTL) outlives several TTLs while statusd and a
#   worker look for abandoned enqueues, and its job completes; its progress
#   shows in the job's total before the input ends;
# - an enqueuer whose job is marked abandoned (or removed) meanwhile says so
#   at once and exits 1, though its producer is still writing;
# - a SIGKILLed enqueuer's job is marked failed (abandoned) with no worker
#   running: by statusd's timer (statusd's own clock 10 minutes slow), and
#   by the next enqueuer run on the queue.
source "$(dirname "$0")/lib.sh"
ef_setup
D=$EF_TMP
Q='farm:{default}'
ENQ="$BIN/enqueuer"
export ENRICHFARM_TEST_ENQUEUE_TTL_MS=2000
redis_eval() { rcli --eval "$EF_ROOT/scripts/$1.lua" "${@:2}"; }

start_statusd() {
  rm -f "$D/sd.port"
  # its wall clock 10 minutes slow: the check reads Redis's clock
  ef_spawn "$D/sd.log" env EF_STATUSD_TEST_CLOCK_SKEW_MS=-600000 "$BIN/statusd" \
    --listen 127.0.0.1:0 --port-file "$D/sd.port"
  SD_PID=$EF_LAST_PID
  ef_wait_for 5 test -s "$D/sd.port" || fail "statusd starts" "$(cat "$D/sd.log")"
}
# spawn_enq NAME JOBID: an enqueuer reading the fifo D/NAME.fifo, the test
# writing on fd 9; ENQ_PID
spawn_enq() {
  rm -f "$D/$1.fifo"; mkfifo "$D/$1.fifo"
  ef_spawn "$D/$1.out" "$ENQ" --provider items --chunk-size 2 --job-id "$2" "$D/$1.fifo"
  ENQ_PID=$EF_LAST_PID
  exec 9>"$D/$1.fifo"
}

ef_mock_start mock || { fail "mockprov starts"; ef_finish; }
ef_items_recipe "$MOCK_PORT" "$D/items.json"
ef_worker_start "$D/w.log" --providers "$D/items.json" --concurrency 4
WPID=$EF_LAST_PID
ef_wait_for 10 '[ "$(rcli HEXISTS farm:providers items)" = 1 ]' || fail "worker starts" "$(cat "$D/w.log")"
start_statusd

# ---- a slow producer outlives the deadline ----
spawn_enq slow SLOW1
total_mid=""
for i in $(seq 1 16); do
  printf '%s\n' "$i" >&9
  sleep 0.4
  [ "$i" = 8 ] && total_mid=$(job_field SLOW1 total)
done
printf '1' >&9; sleep 2.6; printf '7\n' >&9   # one id cut by a pause longer than the TTL
exec 9>&-
wait "$ENQ_PID"; rc=$?
eq "slow producer (9 s, TTL 2 s): enqueuer exits 0" 0 "$rc"
check "slow producer: prints the job id alone on a line" grep -qx SLOW1 "$D/slow.out"
check "slow producer: progress visible while enqueuing (total $total_mid after 8 of 17 ids)" \
  test "${total_mid:-0}" -ge 4
if ef_wait_job SLOW1 completed 20; then ok "slow producer: the job completes"; else fail "slow producer: job completes" "status $(job_field SLOW1 status) $(job_field SLOW1 error)"; fi
eq "slow producer: every id counted" "17 17" "$(job_field SLOW1 total) $(job_field SLOW1 processed)"

# ---- a lost job is noticed at once ----
for how in abandoned removed; do
  spawn_enq "lost$how" "LOST$how"
  printf '1\n2\n3\n' >&9
  ef_wait_for 5 "[ \"\$(job_field LOST$how status)\" = enqueuing ]"
  if [ $how = abandoned ]; then
    rcli ZADD "$Q:enqueuing" 1 "LOST$how" >/dev/null
    redis_eval job_abandon "$Q:job:LOST$how" "$Q:job:LOST$how:chunks" "$Q:enqueuing" , "LOST$how" "$Q:events" >/dev/null
  else
    redis_eval job_discard "$Q:job:LOST$how" "$Q:job:LOST$how:chunks" "$Q:jobs" "$Q:enqueuing" , "LOST$how" >/dev/null
  fi
  t0=$SECONDS
  for i in $(seq 1 30); do  # the producer goes on writing for up to 9 s
    kill -0 "$ENQ_PID" 2>/dev/null || break
    printf '%s\n' "$i" >&9 2>/dev/null
    sleep 0.3
  done
  exec 9>&- 2>/dev/null
  wait "$ENQ_PID"; rc=$?
  eq "job $how while enqueuing: enqueuer exits 1" 1 "$rc"
  check "job $how while enqueuing: noticed within 2 s ($((SECONDS - t0)) s)" test $((SECONDS - t0)) -le 2
  contains "job $how while enqueuing: says the job was lost" "job LOST$how was lost while enqueuing" "$(cat "$D/lost$how.out")"
done
contains "abandoned: says why" "it is failed (abandoned" "$(cat "$D/lostabandoned.out")"
contains "removed: says so" "it was removed" "$(cat "$D/lostremoved.out")"
eq "abandoned: the failed job is kept, not discarded" failed "$(job_field LOSTabandoned status)"

# ---- a killed enqueuer with no worker: statusd marks the job failed ----
kill "$WPID"; wait "$WPID" 2>/dev/null
spawn_enq killed KILLSD
printf '1\n2\n3\n' >&9
ef_wait_for 5 '[ "$(job_field KILLSD status)" = enqueuing ]'
kill -9 "$ENQ_PID"; wait "$ENQ_PID" 2>/dev/null; exec 9>&-
if ef_wait_job KILLSD failed 8; then ok "killed enqueuer, no worker: statusd marks the job failed"; else fail "killed enqueuer: statusd marks failed" "status $(job_field KILLSD status)"; fi
contains "killed enqueuer: the reason is abandoned" "abandoned" "$(job_field KILLSD error)"

# ---- ... and without statusd, the next enqueuer run does ----
kill "$SD_PID"; wait "$SD_PID" 2>/dev/null
spawn_enq killed2 KILLENQ
printf '1\n2\n3\n' >&9
ef_wait_for 5 '[ "$(job_field KILLENQ status)" = enqueuing ]'
kill -9 "$ENQ_PID"; wait "$ENQ_PID" 2>/dev/null; exec 9>&-
sleep 2.5
eq "killed enqueuer, nothing running: still enqueuing" enqueuing "$(job_field KILLENQ status)"
id=$(seq 1 3 | "$ENQ" --provider items - 2>"$D/next.err")
eq "the next enqueuer run marks it failed" failed "$(job_field KILLENQ status)"
contains "the next enqueuer run says so" "job KILLENQ abandoned" "$(cat "$D/next.err")"
eq "the next enqueuer run's own job is queued" queued "$(job_field "$id" status)"
ef_finish
