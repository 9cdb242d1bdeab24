#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Rate headers (lib/ef_http.c, worker/ratelimit.c): a provider that says
# no request is left (X-RateLimit-Remaining: 0, or the IETF RateLimit field
# with remaining=0) pauses the farm until its reset, so a worker that sends
# one request at a time never meets a 429, with no `rate` in the recipe;
# such a pause cuts no rate.  Each header style against its own mockprov.
source "$(dirname "$0")/lib.sh"
ef_setup
ENQ="$BIN/enqueuer"
D=$EF_TMP
seq 1 24 >"$D/ids"
for mode in 1 2; do
  name=hdr$mode
  ef_mock_start "m$mode" --catalog 100 --rate 4 --per 1 --burst 4 --rate-headers "$mode" || {
    fail "mockprov starts"; continue; }
  port=$MOCK_PORT
  cat >"$D/$name.json" <<JSON
{"providers": {"$name": {
   "steps": [{"url": "http://127.0.0.1:$port/item/{id}"}],
   "extract": {"title": "/title"}, "timeout_ms": 5000, "retries": 5}}}
JSON
  ef_worker_start "$D/$name.log" --queue "$name" --providers "$D/$name.json" --concurrency 1
  wpid=$EF_LAST_PID
  ef_wait_for 10 '[ -n "$(rcli HGET farm:providers "$name")" ]'
  id=$("$ENQ" --queue "$name" --provider "$name" "$D/ids" 2>/dev/null)
  t0=$SECONDS
  if ef_wait_job "$id" completed 40 "$name"; then ok "mode $mode: job completed in $((SECONDS - t0)) s"; else
    fail "mode $mode: job completes" "status $(job_field "$id" status "$name")"; fi
  eq "mode $mode: every entity answered" 24 "$(( $(job_field "$id" updated "$name") + $(job_field "$id" not_found "$name") ))"
  eq "mode $mode: Remaining: 0 paused the farm before any 429" 0 "$(mock_stat "$port" responses_429)"
  check "mode $mode: the farm was paused by the headers ($(rcli HGET "farm:ratelimit:{$name}" penalties) times)" \
    test "$(rcli HGET "farm:ratelimit:{$name}" penalties)" -ge 1
  eq "mode $mode: a pause from the headers cuts no rate" "" "$(rcli HGET "farm:ratelimit:{$name}" learned_requests)"
  kill -TERM "$wpid" 2>/dev/null; wait "$wpid" 2>/dev/null
  kill -TERM "$MOCK_PID" 2>/dev/null
done
ef_finish
