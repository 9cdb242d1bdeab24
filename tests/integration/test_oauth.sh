#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# OAuth2 client credentials (worker/auth.c, scripts/auth_lock.lua,
# scripts/auth_store.lua): mockprov issues 2 s tokens and refuses item
# requests without a valid one.  Two workers share one token for the whole
# farm: at most one fetch per renewal period farm-wide (none while the
# newest token has more than half its life left), no request ever sent with
# an expired token, exact counts.  A token revoked server-side: the 401s
# cause exactly one renewal and every refused request is sent again (exact
# counts, no errors), for batch requests too; a provider that refuses every
# token costs at most one fetch a second.  A token endpoint down for a few seconds, shorter than
# max_outage_s: no entity counted as an error.  The client secret appears in
# no worker log, no Redis value, no statusd answer, no enqueuer output.  A
# wrong secret: a clear error naming the recipe, in the log and in the
# job's error log, and the job ends with every entity an error once the
# outage bound has passed.  The recipe is examples/oauth.json.
source "$(dirname "$0")/lib.sh"
ef_setup
ENQ="$BIN/enqueuer"
D=$EF_TMP
SECRET='s3cr3t-Vx9q-7fPz'
export OAUTH_CLIENT_SECRET="$SECRET"
export OAUTH_CLIENT_ID='farm-client'
export BAD_SECRET='wrong-Hq2m-secret'

ef_mock_start mock --catalog 1000 --oauth 1 --token-ttl-s 2 --latency-ms 2 \
  --client-id "$OAUTH_CLIENT_ID" --client-secret "$SECRET" || { fail "mockprov starts"; ef_finish; }
port=$MOCK_PORT
# examples/oauth.json with this test's port and 50 requests/s; "bad" is the
# same recipe with a wrong secret, sent in the form body, and a 2 s outage bound
python3 - "$EF_ROOT/examples/oauth.json" "$port" >"$D/providers.json" <<'PY'
import copy, json, sys
doc = json.loads(open(sys.argv[1]).read().replace("8088", sys.argv[2]))
items = doc["providers"]["items"]
items["rate"] = {"requests": 50, "per_seconds": 1, "burst": 5}
bad = copy.deepcopy(items)
del bad["rate"]
bad["auth"]["client_secret"] = "${BAD_SECRET}"
bad["auth"]["max_outage_s"] = 2
bad["auth"]["client_auth"] = "form"
doc["providers"]["bad"] = bad
bulk = copy.deepcopy(items)
bulk["steps"] = [{"name": "bulk", "method": "POST", "url": "http://127.0.0.1:%s/items/bulk" % sys.argv[2],
                  "json": {"requests": "{ids}"},
                  "batch": {"max": 20, "ids": "json", "item": {"id": "{id}"},
                            "results": "/results", "id": "/id"}}]
bulk["extract"] = {"title": "/data/title"}
bulk["rate"] = {"requests": 4, "per_seconds": 1, "burst": 1}
doc["providers"]["bulk"] = bulk
print(json.dumps(doc))
PY
oauth_stat() { curl -s "http://127.0.0.1:$port/stats" | python3 -c "import json,sys; print(json.load(sys.stdin)['oauth']['$1'])"; }
stat_ms() { curl -s "http://127.0.0.1:$port/stats" | python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }
# counts ID N: exact outcomes of a job over items 1..N (every tenth is not found)
counts() {
  local id=$1 n=$2 q=${3:-default}
  eq "$4: updated" $((n - n / 10)) "$(job_field "$id" updated "$q")"
  eq "$4: not_found" $((n / 10)) "$(job_field "$id" not_found "$q")"
  eq "$4: no errors" 0 "$(job_field "$id" errors "$q")"
}

ef_worker_start "$D/w1.log" --providers "$D/providers.json" --concurrency 8 --log-level debug
w1=$EF_LAST_PID
ef_worker_start "$D/w2.log" --providers "$D/providers.json" --concurrency 8 --log-level debug
w2=$EF_LAST_PID
ef_wait_for 10 '[ -n "$(rcli HGET farm:providers items)" ]' || fail "workers register" "$(cat "$D/w1.log")"

# ---- 1. short-lived tokens, two workers: one fetch per renewal period farm-wide ----
seq 1 300 >"$D/ids300"
id=$("$ENQ" --provider items "$D/ids300" 2>"$D/enq.err")
if ef_wait_job "$id" completed 40; then ok "300 entities through 2 s tokens"; else
  fail "job completes" "status $(job_field "$id" status), $(tail -3 "$D/w1.log")"; fi
counts "$id" 300 default "short tokens"
fetches=$(oauth_stat token_fetches)
run_ms=$(( $(stat_ms last_request_ms) - $(stat_ms first_request_ms) ))
# renewal at 80 % of 2 s: one fetch per 1.6 s of run at most, plus the first and one of slack
most=$(( run_ms / 1600 + 2 ))
check "token fetches farm-wide ($fetches in $run_ms ms) at most one per renewal period ($most)" \
  test "$fetches" -le "$most"
check "tokens were renewed during the run ($fetches fetches)" test "$fetches" -ge 3
eq "no fetch while the newest token had half its life left (one renewer at a time)" 0 \
  "$(oauth_stat token_fetches_early)"
eq "renewed before expiry: no request refused" 0 "$(oauth_stat unauthorized)"
eq "the client authenticated with Basic" "$fetches" "$(oauth_stat basic)"
eq "the scope reached the token endpoint" "items:read" "$(oauth_stat last_scope)"
check "the token lives in farm:auth:{items}" test -n "$(rcli HGET 'farm:auth:{items}' token)"

# ---- 2. a token revoked server-side: one renewal, the refused requests sent again ----
curl -s "http://127.0.0.1:$port/control?token_ttl_s=30" >/dev/null
rcli DEL 'farm:auth:{items}' >/dev/null
sleep 2.1 # the 2 s tokens the workers hold have expired
curl -s "http://127.0.0.1:$port/stats/reset" >/dev/null
seq 1 200 >"$D/ids200"
id=$("$ENQ" --provider items "$D/ids200" 2>>"$D/enq.err")
ef_wait_for 20 '[ "$(job_field "$id" processed)" -ge 60 ]'
curl -s "http://127.0.0.1:$port/oauth/revoke" >/dev/null
if ef_wait_job "$id" completed 40; then ok "job completes across a revocation"; else
  fail "job completes across a revocation" "status $(job_field "$id" status)"; fi
counts "$id" 200 default "revoked"
refused=$(oauth_stat unauthorized)
check "the revoked token was refused ($refused x 401)" test "$refused" -ge 1
eq "exactly one renewal after the revocation (2 fetches in all)" 2 "$(oauth_stat token_fetches)"
eq "provider requests: one per entity plus one per 401" $((200 + refused)) "$(mock_stat "$port" requests)"
contains "a worker logs the renewal" "refused the OAuth2 token (401): renewing it" "$(cat "$D/w1.log" "$D/w2.log")"

# ---- 2b. a provider that refuses every token: at most one fetch a second ----
curl -s "http://127.0.0.1:$port/stats/reset" >/dev/null
seq 1 40 >"$D/ids40"
( for _ in $(seq 1 30); do curl -s "http://127.0.0.1:$port/oauth/revoke" >/dev/null; sleep 0.1; done ) &
revoker=$!
EF_PIDS+=("$revoker")
t0=$(date +%s%N)
id=$("$ENQ" --provider items "$D/ids40" 2>>"$D/enq.err")
ef_wait_job "$id" completed 30 || fail "job completes while every token is revoked" "status $(job_field "$id" status)"
t1=$(date +%s%N)
wait "$revoker"
eq "every token revoked: each entity has one outcome" 40 "$(job_field "$id" processed)"
fetches=$(oauth_stat token_fetches)
secs=$(( (t1 - t0) / 1000000000 + 1 ))
check "every token revoked: $fetches fetches in ${secs} s, at most one a second" test "$fetches" -le $((secs + 2))
rcli DEL 'farm:auth:{items}' >/dev/null

# ---- 3. the token endpoint down for a while, shorter than max_outage_s ----
curl -s "http://127.0.0.1:$port/control?token_down=1" >/dev/null
curl -s "http://127.0.0.1:$port/oauth/revoke" >/dev/null
seq 1 50 >"$D/ids50"
id=$("$ENQ" --provider items "$D/ids50" 2>>"$D/enq.err")
ef_wait_for 10 '[ "$(oauth_stat token_down)" -ge 2 ]'
curl -s "http://127.0.0.1:$port/control?token_down=0" >/dev/null
if ef_wait_job "$id" completed 40; then ok "job completes after the token outage"; else
  fail "job completes after the token outage" "status $(job_field "$id" status)"; fi
counts "$id" 50 default "outage"
contains "the failed fetch is logged, naming the recipe" \
  "recipe 'items': auth: no OAuth2 token: the token endpoint answered HTTP 503" "$(cat "$D/w1.log" "$D/w2.log")"

# ---- 3b. batch steps carry the token; a revoked one: the batch is sent again ----
curl -s "http://127.0.0.1:$port/stats/reset" >/dev/null
seq 1 200 >"$D/ids200"
id=$("$ENQ" --provider bulk --chunk-size 20 "$D/ids200" 2>>"$D/enq.err")
ef_wait_for 20 '[ "$(job_field "$id" processed)" -ge 40 ]'
curl -s "http://127.0.0.1:$port/oauth/revoke" >/dev/null
if ef_wait_job "$id" completed 40; then ok "batch job completes across a revocation"; else
  fail "batch job completes across a revocation" "status $(job_field "$id" status)"; fi
counts "$id" 200 default "batch, revoked"
check "batch: the revoked token was refused ($(oauth_stat unauthorized) x 401)" test "$(oauth_stat unauthorized)" -ge 1
eq "batch: one fetch, then one renewal after the revocation" 2 "$(oauth_stat token_fetches)"

# ---- 4. a wrong client secret: a clear error naming the recipe ----
seq 1 20 >"$D/ids20"
id=$("$ENQ" --queue bad --provider bad "$D/ids20" 2>>"$D/enq.err")
ef_worker_start "$D/w3.log" --queue bad --providers "$D/providers.json" --concurrency 4
w3=$EF_LAST_PID
if ef_wait_job "$id" completed 30 bad; then ok "the job with a wrong secret ends"; else
  fail "the job with a wrong secret ends" "status $(job_field "$id" status bad)"; fi
eq "wrong secret: every entity an error after max_outage_s" 20 "$(job_field "$id" errors bad)"
contains "wrong secret: the log names the recipe and the endpoint's error" \
  "recipe 'bad': auth: no OAuth2 token: the token endpoint answered HTTP 401: invalid_client" "$(cat "$D/w3.log")"
contains "wrong secret: the job's error log says why" "recipe 'bad': no OAuth2 token for 2 s" \
  "$(rcli LRANGE "farm:{bad}:job:$id:errors" 0 0)"
tries=$(oauth_stat token_refused)
check "wrong secret: the farm backs off ($tries refused fetches)" test "$tries" -ge 1 -a "$tries" -le 5
eq "wrong secret: the client was in the form body (client_auth form)" "$tries" "$(oauth_stat form)"

# ---- 5. the secret goes nowhere ----
rm -f "$D/sd.port"
ef_spawn "$D/sd.log" "$BIN/statusd" --listen 127.0.0.1:0 --port-file "$D/sd.port"
ef_wait_for 5 test -s "$D/sd.port" || fail "statusd starts" "$(cat "$D/sd.log")"
sdp=$(cat "$D/sd.port")
basic=$(printf '%s:%s' "$OAUTH_CLIENT_ID" "$SECRET" | base64)
leaks() { # NAME TEXT: the secret (as such or in a Basic header) is not in TEXT
  case "$2" in
    *"$SECRET"* | *"$basic"* | *"$BAD_SECRET"*) fail "$1" "the client secret is there" ;;
    *) ok "$1" ;;
  esac
}
leaks "no secret in the worker logs" "$(cat "$D/w1.log" "$D/w2.log" "$D/w3.log" "$D/enq.err")"
# every value of every key (strings, hashes, lists, sets, sorted sets), in one call
all=$(rcli EVAL "local out = {}
for _, k in ipairs(redis.call('KEYS', '*')) do
  local t = redis.call('TYPE', k).ok
  local v = {}
  if t == 'string' then v = {redis.call('GET', k)}
  elseif t == 'hash' then v = redis.call('HGETALL', k)
  elseif t == 'list' then v = redis.call('LRANGE', k, 0, -1)
  elseif t == 'set' then v = redis.call('SMEMBERS', k)
  elseif t == 'zset' then v = redis.call('ZRANGE', k, 0, -1) end
  out[#out + 1] = k
  for _, x in ipairs(v) do out[#out + 1] = x end
end
return out" 0)
nkeys=$(rcli DBSIZE)
check "redis has keys to look at ($nkeys)" test "$nkeys" -ge 10
contains "the scan reads values (farm:providers' summary)" '"auth":{"type":"oauth2_client_credentials"' "$all"
leaks "no secret in any redis value ($nkeys keys)" "$all"
tok=$(rcli HGET 'farm:auth:{items}' token)
case "$tok" in mpt.*) ok "farm:auth:{items} holds the token, not the secret" ;; *) fail "the token key" "'$tok'" ;; esac
sd=""
for path in /metrics /workers /queues "/jobs" "/jobs/$id" "/jobs/$id/errors" /health; do
  sd+="$(curl -s "http://127.0.0.1:$sdp$path")"
done
leaks "no secret in statusd's answers" "$sd"
case "$sd" in *"$tok"*) fail "no token in statusd's answers" ;; *) ok "no token in statusd's answers" ;; esac
rl=$("$ENQ" rate-limit items 2>&1)
leaks "no secret from enqueuer rate-limit" "$rl"
case "$rl" in *"$tok"*) fail "no token from enqueuer rate-limit" ;; *) ok "no token from enqueuer rate-limit" ;; esac
case "$(cat "$D/w1.log" "$D/w2.log" "$D/w3.log")" in
  *"$tok"* | *"Bearer mpt"*) fail "no token in the worker logs" ;;
  *) ok "no token in the worker logs" ;;
esac

# ---- the workers stop cleanly (under SAN=1: no sanitizer report) ----
kill -TERM "$w1" "$w2" "$w3" 2>/dev/null
for p in "$w1" "$w2" "$w3"; do
  ef_wait_for 15 '! kill -0 '"$p" || fail "worker $p stops on SIGTERM"
done
sanit=$(grep -lE "runtime error|AddressSanitizer|LeakSanitizer" "$D"/w*.log)
eq "no sanitizer report in the worker logs" "" "$sanit"
ef_finish
