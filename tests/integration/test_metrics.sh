#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# ef-test: parallel
# GET /metrics against a live farm (a queue, a finished job, a live worker,
# a provider with its token bucket, a stale registry entry) passes
# `promtool check metrics` (names with spelled units, HELP and TYPE for
# every family), keeps 13-digit millisecond times to the millisecond, and
# neither GET /workers nor enrichfarm_workers_registered counts a worker
# whose last heartbeat is older than the heartbeat TTL on Redis's clock.
source "$(dirname "$0")/lib.sh"
ef_setup
D=$EF_TMP

start_sd() {
  rm -f "$D/sd.port"
  ef_spawn "$D/sd.log" "$BIN/statusd" --listen 127.0.0.1:0 --port-file "$D/sd.port" "$@"
  SD_PID=$EF_LAST_PID
  ef_wait_for 5 test -s "$D/sd.port" || { fail "statusd starts" "$(cat "$D/sd.log")"; ef_finish; }
  U="http://127.0.0.1:$(cat "$D/sd.port")"
}
jget() { python3 -c 'import json,sys; v=json.load(sys.stdin); print(v.get(sys.argv[1]))' "$1"; }

ef_mock_start mock || { fail "mockprov starts"; ef_finish; }
ef_items_recipe "$MOCK_PORT" "$D/recipe.json" ',"rate": {"requests": 500, "per_seconds": 1, "burst": 20}'
ef_worker_start "$D/worker.log" --providers "$D/recipe.json" --concurrency 8
WPID=$EF_LAST_PID
seq 1 40 >"$D/ids"
J=$("$BIN/enqueuer" --provider items --chunk-size 10 "$D/ids")
ef_wait_job "$J" completed 20 || fail "job completes" "$(cat "$D/worker.log" | tail -5)"
start_sd

# a pause whose end is a 13-digit ms time, and a fractional rate
rcli HSET 'farm:ratelimit:{items}' paused_until 1796250012345 rate_per_s 333.3333333 penalties 1 >/dev/null
# the adaptive rate's fields (and its bookkeeping, which is not exported)
rcli HSET 'farm:ratelimit:{items}' learned_requests 10.5 learned_at 1796250000123 cuts 2 ok_n 7 \
  ok_at 1796250000000 cut_ms 1796250000000 >/dev/null
# every kind of queue counter, so that every family is printed
rcli HSET 'farm:{default}:stats' requests 40 cached 2 responses_2xx 38 responses_429 1 \
  transport_errors 1 ratelimit_waits 3 some_other_counter 5 >/dev/null
# a worker SIGKILLed a minute ago: its registry entry stays, its hash is gone
now_ms=$(rcli TIME | python3 -c 'import sys; s,u=sys.stdin.read().split(); print(int(s)*1000+int(u)//1000)')
rcli ZADD farm:workers $((now_ms - 60000)) dead-worker-1 >/dev/null
ef_wait_for 5 '[ "$(rcli ZCARD farm:workers)" -ge 2 ]'

curl -s "$U/metrics" >"$D/metrics.txt"
for fam in enrichfarm_queue_pending enrichfarm_jobs enrichfarm_entities_total \
  enrichfarm_provider_requests_total enrichfarm_ratelimit_tokens enrichfarm_workers_registered \
  enrichfarm_statusd_requests_total; do
  grep -q "^$fam" "$D/metrics.txt" || fail "metrics: family $fam present" "$(head -c 400 "$D/metrics.txt")"
done
if command -v promtool >/dev/null 2>&1; then
  if out=$(promtool check metrics <"$D/metrics.txt" 2>&1); then
    ok "promtool check metrics: clean"
  else
    fail "promtool check metrics: clean" "$out"
  fi
else
  skip "promtool check metrics" "promtool not installed (Debian package prometheus; mk/deps.sh installs it)"
fi
contains "metrics: ms time kept to the ms (seconds with 3 decimals)" \
  'enrichfarm_ratelimit_paused_until_timestamp_seconds{provider="items"} 1796250012.345' "$(cat "$D/metrics.txt")"
contains "metrics: a fraction kept whole" \
  'enrichfarm_ratelimit_requests_per_second{provider="items"} 333.3333333' "$(cat "$D/metrics.txt")"
contains "metrics: the learned rate, with its unit" \
  'enrichfarm_ratelimit_learned_requests_per_second{provider="items"} 10.5' "$(cat "$D/metrics.txt")"
contains "metrics: when the rate was last cut" \
  'enrichfarm_ratelimit_learned_timestamp_seconds{provider="items"} 1796250000.123' "$(cat "$D/metrics.txt")"
check "metrics: the bucket's bookkeeping (ok_*, cut_ms) is not exported" \
  sh -c "! grep -E '^enrichfarm_ratelimit_(ok_|cut_ms)' '$D/metrics.txt'"
check "metrics: no value printed with an exponent" sh -c "! grep -E ' -?[0-9.]+e[+-]?[0-9]+$' '$D/metrics.txt'"

# dead workers: neither listed nor counted
eq "metrics: workers_registered counts the live worker only" "enrichfarm_workers_registered 1" \
  "$(grep '^enrichfarm_workers_registered ' "$D/metrics.txt")"
w=$(curl -s "$U/workers")
eq "workers: the live worker only" 1 "$(jget count <<<"$w")"
check "workers: the stale entry is not listed" sh -c "! printf '%s' '$w' | grep -q dead-worker-1"
# a worker that is killed stops counting once its heartbeat is TTL old
kill -9 "$WPID"
rcli ZADD farm:workers $((now_ms - 11000)) "$(rcli ZRANGE farm:workers -1 -1)" >/dev/null
w=$(curl -s "$U/workers")
eq "workers: a heartbeat older than the TTL is dead" 0 "$(jget count <<<"$w")"
eq "metrics: ... and not registered" "enrichfarm_workers_registered 0" \
  "$(curl -s "$U/metrics" | grep '^enrichfarm_workers_registered ')"

kill "$SD_PID"
ef_finish
