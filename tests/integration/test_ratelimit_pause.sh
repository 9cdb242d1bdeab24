#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The farm-wide pause after a 429 (worker/ratelimit.c, ratelimit_penalty.lua,
# ratelimit_take.lua): a Retry-After of 31 years is capped at the recipe's
# max_pause_s and logged; `enqueuer rate-limit` and statusd's
# POST /providers/P/resume clear a pause; an HTTP-date Retry-After is read
# against the response's Date header, or against Redis TIME, never against
# a worker's skewed clock; a provider without `rate` is paused farm-wide too
# and its retries are spread so that every entity ends updated; a worker
# fetching huge chunked bodies holds at most max_body per request.
source "$(dirname "$0")/lib.sh"
ef_setup
ENQ="$BIN/enqueuer"
D=$EF_TMP
B='farm:ratelimit:{items}'
ef_mock_start mp --catalog 1000 || { fail "mockprov starts"; ef_finish; }
MP=$MOCK_PORT
ctl() { curl -s "http://127.0.0.1:$MP/control?$1" >/dev/null; }
# pause_left: ms from Redis's now to the bucket's paused_until
pause_left() {
  local until s us
  until=$(rcli HGET "$B" paused_until); { read -r s; read -r us; } < <(rcli TIME)
  echo $(( ${until%.*} - s * 1000 - us / 1000 ))
}
wait_penalty() { ef_wait_for "${1:-10}" '[ "$(rcli HGET "$B" penalties)" -ge 1 ]'; }
reset_all() { rcli DEL "$B" "$B:waiters" >/dev/null; curl -s "http://127.0.0.1:$MP/stats/reset" >/dev/null; }
stop_worker() { kill -TERM "$WPID" 2>/dev/null; wait "$WPID" 2>/dev/null; }

# ---- a Retry-After of 999999999 s is capped, logged, and cleared by rate-limit ----
ef_items_recipe "$MP" "$D/rated.json" ', "rate": {"requests": 1000, "per_seconds": 1, "burst": 10}'
ctl "rate=1&per=1&burst=1&retry_after_s=999999999"
seq 1 3 >"$D/ids3"
id=$("$ENQ" --provider items "$D/ids3" 2>/dev/null)
ef_worker_start "$D/wa.log" --providers "$D/rated.json" --concurrency 8; WPID=$EF_LAST_PID
if wait_penalty 10; then
  left=$(pause_left)
  check "cap: the pause is capped at max_pause_s 300 s ($left ms left)" test "$left" -gt 200000 -a "$left" -le 300000
else
  fail "cap: a 429 paused the bucket" "penalties $(rcli HGET "$B" penalties)"
fi
ef_wait_for 5 'grep -q "capped" "$D/wa.log"'
contains "cap: the log says the pause was capped" "more than max_pause_s: capped" "$(cat "$D/wa.log")"
ctl "rate=0"
sleep 1
eq "cap: the job waits while paused" running "$(job_field "$id" status)"
"$ENQ" rate-limit items 1000 1 10 >/dev/null
t0=$SECONDS
if ef_wait_job "$id" completed 10; then ok "cap: rate-limit cleared the pause, job completed in $((SECONDS - t0)) s"; else
  fail "cap: job completes after rate-limit" "status $(job_field "$id" status), paused_until $(rcli HGET "$B" paused_until)"; fi
eq "cap: every entity updated" 3 "$(job_field "$id" updated)"
eq "cap: paused_until reset" 0 "$(rcli HGET "$B" paused_until)"

# ---- statusd clears a pause ----
rm -f "$D/sd.port"
ef_spawn "$D/sd.log" "$BIN/statusd" --listen 127.0.0.1:0 --port-file "$D/sd.port" --token sekrit
ef_wait_for 5 test -s "$D/sd.port"
SDP=$(cat "$D/sd.port")
reset_all
ctl "rate=1&per=1&burst=1&retry_after_s=999999999"
id=$("$ENQ" --provider items "$D/ids3" 2>/dev/null)
wait_penalty 10 || fail "statusd: a 429 paused the bucket" "no penalty"
ctl "rate=0"
eq "statusd: resume without the token is refused" 401 \
  "$(curl -s -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$SDP/providers/items/resume")"
eq "statusd: a bad provider name is refused" 400 \
  "$(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Authorization: Bearer sekrit' "http://127.0.0.1:$SDP/providers/b%7Bx/resume")"
out=$(curl -s -X POST -H 'Authorization: Bearer sekrit' "http://127.0.0.1:$SDP/providers/items/resume")
contains "statusd: POST /providers/items/resume answers" '"provider":"items"' "$out"
t0=$SECONDS
if ef_wait_job "$id" completed 10; then ok "statusd: the pause is cleared, job completed in $((SECONDS - t0)) s"; else
  fail "statusd: job completes after resume" "status $(job_field "$id" status)"; fi
stop_worker

# ---- an HTTP-date Retry-After is read against Date, or Redis TIME ----
# The provider's clock is 10 minutes ahead of the worker's (it says so in
# Date); it asks for 2 s.  Read against the worker's clock that is 602 s.
reset_all
ctl "rate=1&per=1&burst=1&retry_after_s=2&retry_after_date=1&clock_skew_s=600"
id=$("$ENQ" --provider items "$D/ids3" 2>/dev/null)
ef_worker_start "$D/wb.log" --providers "$D/rated.json" --concurrency 8; WPID=$EF_LAST_PID
if wait_penalty 10; then
  left=$(pause_left)
  check "date: Retry-After read against the Date header ($left ms, want about 2000)" test "$left" -le 4000
else
  fail "date: a 429 paused the bucket" "no penalty"
fi
ef_wait_job "$id" completed 15 && ok "date: job completed" || fail "date: job completed" "status $(job_field "$id" status)"
stop_worker
# No Date header, and the worker's clock 10 minutes slow: Redis TIME decides.
reset_all
ctl "rate=1&per=1&burst=1&retry_after_s=2&retry_after_date=2&clock_skew_s=0"
id=$("$ENQ" --provider items "$D/ids3" 2>/dev/null)
EF_TEST_CLOCK_SKEW_MS=-600000 ef_worker_start "$D/wc.log" --providers "$D/rated.json" --concurrency 8; WPID=$EF_LAST_PID
if wait_penalty 10; then
  left=$(pause_left)
  check "date: without Date, read against Redis TIME, not a worker 10 min slow ($left ms)" test "$left" -le 4000
else
  fail "date: a 429 paused the bucket (no Date)" "no penalty"
fi
ef_wait_job "$id" completed 15 && ok "date: job completed (no Date)" || fail "date: job completed (no Date)" "status $(job_field "$id" status)"
stop_worker
ctl "retry_after_s=0&retry_after_date=0&rate=0"

# ---- a provider without rate: a 429 pauses the farm, retries are spread ----
reset_all
ef_items_recipe "$MP" "$D/free.json"
ctl "rate=2&per=1&burst=1"
seq 1 6 >"$D/ids6"
id=$("$ENQ" --provider items "$D/ids6" 2>/dev/null)
ef_worker_start "$D/wd.log" --providers "$D/free.json" --concurrency 8; WPID=$EF_LAST_PID
ef_wait_job "$id" completed 30 || fail "no rate: job completed" "status $(job_field "$id" status)"
echo "info: no rate, provider 2/s burst 1, 6 ids: 429s=$(mock_stat "$MP" responses_429) requests=$(mock_stat "$MP" requests) penalties=$(rcli HGET "$B" penalties)"
eq "no rate: errors 0" 0 "$(job_field "$id" errors)"
eq "no rate: updated 6" 6 "$(job_field "$id" updated)"
check "no rate: the 429 paused the provider farm-wide" test "$(rcli HGET "$B" penalties)" -ge 1
stop_worker
ctl "rate=0"

# ---- huge chunked bodies: at most max_body (1 MiB) held per request ----
reset_all
ctl "p_huge=1&huge_bytes=50000000&huge_chunked=1"
seq 1 16 >"$D/ids16"
ef_worker_start "$D/we.log" --providers "$D/free.json" --concurrency 16; WPID=$EF_LAST_PID
sleep 0.5
base=$(awk '/^VmRSS/ {print $2}' "/proc/$WPID/status")
id=$("$ENQ" --provider items --chunk-size 16 "$D/ids16" 2>/dev/null)
ef_wait_job "$id" completed 30 || fail "huge: job completed" "status $(job_field "$id" status)"
peak=$(awk '/^VmHWM/ {print $2}' "/proc/$WPID/status")
echo "info: 16 chunked bodies of 50 MB: worker RSS $base kB before, peak $peak kB"
eq "huge: every body over max_body is an error" 16 "$(job_field "$id" errors)"
contains "huge: the error names the limit" "1048576 bytes" "$(rcli LRANGE "farm:{default}:job:$id:errors" 0 0)"
if [ "${SAN:-0}" = 1 ]; then skip "huge: worker memory" "RSS is not judged under ASan"; else
  check "huge: the worker grew by less than 40 MB ($(( (peak - base) / 1024 )) MB)" test $((peak - base)) -lt 40960
fi
stop_worker
ctl "p_huge=0&huge_chunked=0"

ef_finish
