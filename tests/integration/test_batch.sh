#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Batch steps (examples/people-batch.json against mockprov's batch
# endpoints): 10k entities at a provider limit of 10 requests/s with
# batches of 100 go at about 1,000 entities/s, one token per request, zero
# 429s, exact counts against the truth (mockprov --expect items, not_found
# included); a worker SIGKILLed with batches in flight loses and double
# counts nothing once another worker finishes; a bulk endpoint that keeps
# failing is retried whole, then asked entity by entity, with exact counts.
source "$(dirname "$0")/lib.sh"
ef_setup
ENQ="$BIN/enqueuer"
D=$EF_TMP
CAT=9000 # ids above it, and multiples of 10, are not in the catalogue
export PEOPLE_API_KEY=test-key

ef_mock_start bm --catalog "$CAT" --rate 10 --per 1 --burst 10
P=$MOCK_PORT
ctl() { curl -s "http://127.0.0.1:$P/control?$1" >/dev/null; }
stat() { mock_stat "$P" "$1"; }
# the example recipes on this test's port; rate/retries as given
recipe() { # FILE RATE RETRIES
  sed -e "s|127.0.0.1:8088|127.0.0.1:$P|g" -e "s|\"requests\": 10, |\"requests\": $2, |g" \
    -e "s|\"retries\": 2|\"retries\": $3|g" "$EF_ROOT/examples/people-batch.json" >"$1"
}
# truth IDSFILE: "updated N not_found M" from the mock's own catalogue
truth() {
  "$BIN/mockprov" --expect items --catalog "$CAT" <"$1" |
    awk '{c[$2]++} END {printf "updated %d not_found %d", c["updated"], c["not_found"]}'
}
counts() { echo "updated $(job_field "$1" updated) not_found $(job_field "$1" not_found)"; }

# ---- 10k entities at 10 requests/s, batches of 100 ----
recipe "$D/r10.json" 10 2
seq 1 10000 >"$D/ids10k"
id=$("$ENQ" --provider items-batch --chunk-size 100 "$D/ids10k" 2>/dev/null)
ef_worker_start "$D/w1.log" --providers "$D/r10.json" --concurrency 8
W1=$EF_LAST_PID
if ef_wait_job "$id" completed 40; then ok "speed: job of 10000 completed"; else fail "speed: job completed" "processed $(job_field "$id" processed)"; fi
ms=$(($(job_field "$id" completed_at) - $(job_field "$id" started_at)))
rate=$(awk -v ms="$ms" 'BEGIN { printf "%.0f", 10000 * 1000 / (ms > 0 ? ms : 1) }')
reqs=$(stat requests)
echo "info: 10000 entities in $ms ms: $rate entities/s, $reqs requests, $(stat batch_ids) ids asked, 429s=$(stat responses_429)"
check "speed: $rate entities/s >= 700 at 10 requests/s" test "$rate" -ge 700
eq "speed: exact counts against the truth" "$(truth "$D/ids10k")" "$(counts "$id")"
eq "speed: processed = total, no errors, no conflicts" "10000 0 0" \
  "$(job_field "$id" processed) $(job_field "$id" errors) $(job_field "$id" conflicts)"
eq "speed: zero 429s from the referee" 0 "$(stat responses_429)"
eq "speed: every request went to the batch endpoint" "$reqs" "$(stat batch_requests)"
check "speed: at most 130 requests for 10000 entities ($reqs)" test "$reqs" -le 130
eq "speed: each id asked once" 10000 "$(stat batch_ids)"
eq "speed: a found entity's result" "Item 7" "$(rcli HGET 'farm:{default}:result:items-batch:7' title)"
check "speed: a missing entity has no result" test -z "$(rcli HGET 'farm:{default}:result:items-batch:10' title)"
w_reqs=$(rcli HGET 'farm:{default}:stats' requests)
echo "info: the worker counted ${w_reqs:-?} requests"
kill -TERM "$W1" 2>/dev/null
wait "$W1" 2>/dev/null

# ---- a worker SIGKILLed mid-batch ----
ctl "latency_ms=300"
curl -s "http://127.0.0.1:$P/stats/reset" >/dev/null
seq 5001 8000 >"$D/ids3k"
id=$("$ENQ" --provider people-bulk --chunk-size 50 "$D/ids3k" 2>/dev/null)
ef_worker_start "$D/k1.log" --providers "$D/r10.json" --concurrency 4 --visibility-timeout 2
K1=$EF_LAST_PID
ef_wait_for 20 '[ "$(job_field "$id" processed)" -ge 400 ]'
before=$(job_field "$id" processed)
kill -9 "$K1"
wait "$K1" 2>/dev/null
echo "info: worker SIGKILLed at processed=$before of 3000, mockprov had $(stat requests) requests"
check "kill: killed mid-job ($before of 3000)" test "$before" -lt 3000
ef_worker_start "$D/k2.log" --providers "$D/r10.json" --concurrency 4 --visibility-timeout 2
K2=$EF_LAST_PID
if ef_wait_job "$id" completed 30; then ok "kill: job completed by the second worker"; else fail "kill: job completed" "processed $(job_field "$id" processed)"; fi
eq "kill: exact counts against the truth" "$(truth "$D/ids3k")" "$(counts "$id")"
eq "kill: processed = total, no errors" "3000 0" "$(job_field "$id" processed) $(job_field "$id" errors)"
eq "kill: zero 429s" 0 "$(stat responses_429)"
asked=$(stat batch_ids)
check "kill: ids of the batches in flight were asked again ($asked asked for 3000)" test "$asked" -gt 3000
eq "kill: a result through the POST endpoint" "Item 5001" "$(rcli HGET 'farm:{default}:person:5001' title)"
kill -TERM "$K2" 2>/dev/null
wait "$K2" 2>/dev/null

# ---- a bulk endpoint that fails: retried whole, then one by one ----
ctl "latency_ms=0&rate=500&burst=50"
curl -s "http://127.0.0.1:$P/stats/reset" >/dev/null
ctl "batch_fail=2"
recipe "$D/r500.json" 500 2
seq 1 300 >"$D/ids300"
id=$("$ENQ" --provider people-bulk --chunk-size 100 "$D/ids300" 2>/dev/null)
ef_worker_start "$D/f1.log" --providers "$D/r500.json" --concurrency 4
F1=$EF_LAST_PID
if ef_wait_job "$id" completed 20; then ok "retry: job completed after 2 failed batches"; else fail "retry: job completed" "processed $(job_field "$id" processed)"; fi
eq "retry: exact counts" "$(truth "$D/ids300")" "$(counts "$id")"
eq "retry: the failures were batches" 2 "$(stat batch_failed_503)"
check "retry: retried whole, no single requests ($(stat requests) requests)" test "$(stat requests)" -le 10
kill -TERM "$F1" 2>/dev/null
wait "$F1" 2>/dev/null

curl -s "http://127.0.0.1:$P/stats/reset" >/dev/null
ctl "batch_fail=1000000"
seq 1001 1300 >"$D/ids300b"
id=$("$ENQ" --provider people-bulk --chunk-size 100 "$D/ids300b" 2>/dev/null)
ef_worker_start "$D/f2.log" --providers "$D/r500.json" --concurrency 4
F2=$EF_LAST_PID
if ef_wait_job "$id" completed 30; then ok "fallback: job completed with the bulk endpoint failing"; else fail "fallback: job completed" "processed $(job_field "$id" processed)"; fi
eq "fallback: exact counts" "$(truth "$D/ids300b")" "$(counts "$id")"
eq "fallback: no errors" 0 "$(job_field "$id" errors)"
failed=$(stat batch_failed_503)
reqs=$(stat requests)
echo "info: fallback: $failed failed batch requests, $reqs requests in all"
check "fallback: each batch tried 3 times (retries 2) before single requests ($failed)" test "$failed" -ge 3 -a "$failed" -le 12
eq "fallback: then one request per entity" "$((failed + 300))" "$reqs"
kill -TERM "$F2" 2>/dev/null
wait "$F2" 2>/dev/null
# ---- a batch step, then a step per entity ----
curl -s "http://127.0.0.1:$P/stats/reset" >/dev/null
ctl "batch_fail=0"
cat >"$D/two.json" <<JSON
{"providers": {"two": {
  "steps": [{"name": "find", "url": "http://127.0.0.1:$P/items?ids={ids}",
             "batch": {"max": 50, "ids": "query", "results": "/data", "id": "/id"},
             "as": {"first_tag": "/tags/0"}},
            {"name": "details", "url": "http://127.0.0.1:$P/item/{id}?tag={first_tag}"}],
  "extract": {"title": "/title"},
  "rate": {"requests": 500, "per_seconds": 1, "burst": 50}}}}
JSON
seq 1 50 >"$D/ids50"
ef_worker_start "$D/t1.log" --providers "$D/two.json" --concurrency 4
T1=$EF_LAST_PID
# the enqueuer knows the providers the workers registered
ef_wait_for 10 'rcli HEXISTS farm:providers two | grep -q 1'
id=$("$ENQ" --provider two --chunk-size 50 "$D/ids50" 2>/dev/null)
if ef_wait_job "$id" completed 20; then ok "two steps: job completed"; else fail "two steps: job completed" "processed $(job_field "$id" processed)"; fi
eq "two steps: exact counts" "$(truth "$D/ids50")" "$(counts "$id")"
eq "two steps: one batch, then one request per entity found" "1 45" "$(stat batch_requests) $(($(stat requests) - $(stat batch_requests)))"
eq "two steps: the second step's answer" "Item 9" "$(rcli HGET 'farm:{default}:result:two:9' title)"
kill -TERM "$T1" 2>/dev/null
wait "$T1" 2>/dev/null

bad=$(grep -l "AddressSanitizer\|LeakSanitizer\|runtime error" "$D"/*.log 2>/dev/null | xargs -r -n1 basename | tr '\n' ' ')
eq "no sanitizer report in any log" "" "$bad"

ef_finish
