#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# ef-test: parallel
# The contract holds for any client, not only our programs: the Lua scripts
# refuse what the C programs refuse (a job id with ':', a provider no worker
# registered, with the enqueuer's words), register the queue in farm:queues,
# and the docs' "A job by hand" recipe (docs/redis.md), run as written with
# redis-py, makes a job a worker completes with exact counts and that
# statusd lists under /queues.
source "$(dirname "$0")/lib.sh"
ef_setup
D=$EF_TMP
Q='farm:{default}'
redis_eval() { rcli --eval "$EF_ROOT/scripts/$1.lua" "${@:2}" 2>&1; }

# Debian's python3 carries python3-redis (mk/deps.sh); a pyenv shim may not
PY=""
for p in /usr/bin/python3 python3; do
  if "$p" -c 'import redis' 2>/dev/null; then PY=$p; break; fi
done

ef_mock_start mock || { fail "mockprov starts"; ef_finish; }
ef_items_recipe "$MOCK_PORT" "$D/items.json"
ef_worker_start "$D/w.log" --providers "$D/items.json" --concurrency 4
ef_wait_for 10 '[ "$(rcli HEXISTS farm:providers items)" = 1 ]' || fail "worker registers its providers" "$(cat "$D/w.log")"

# ---- job_create refuses what the programs refuse ----
out=$(redis_eval job_create "$Q:job:A:B" "$Q:jobs" "$Q:enqueuing" "$Q:notify" "$Q:settings" farm:queues farm:providers , \
  'A:B' default items item 50 0 normal 30000)
contains "job_create: a job id with ':' is refused" "bad job id 'A:B'" "$out"
eq "job_create: nothing written for the refused id" "0 0" \
  "$(rcli EXISTS "$Q:job:A:B") $(rcli ZCARD "$Q:jobs")"
out=$(redis_eval job_create "$Q:job:N1" "$Q:jobs" "$Q:enqueuing" "$Q:notify" "$Q:settings" farm:queues farm:providers , \
  N1 default nosuch item 50 0 normal 30000)
contains "job_create: an unknown provider is refused like the enqueuer does" \
  "unknown provider 'nosuch' (registered by workers: items)" "$out"
out=$(redis_eval job_create "$Q:job:N2" "$Q:jobs" "$Q:enqueuing" "$Q:notify" "$Q:settings" farm:queues , N2 default items item 50 0 normal 30000)
contains "job_create: a 6-key layout is refused" "do not match the layout" "$out"
# the Cluster layout: the queue's 5 keys only (one slot); the caller checks
# the provider and registers the queue itself
out=$(redis_eval job_create "$Q:job:N2" "$Q:jobs" "$Q:enqueuing" "$Q:notify" "$Q:settings" , N2 default nosuch item 50 0 normal 30000)
eq "job_create: the 5-key (cluster) layout creates the job, the registry left to the caller" \
  "enqueuing 1 0" "$(job_field N2 status) $(rcli ZCARD "$Q:jobs") $(rcli EXISTS farm:queues)"
rcli DEL "$Q:job:N2" >/dev/null; rcli ZREM "$Q:jobs" N2 >/dev/null; rcli ZREM "$Q:enqueuing" N2 >/dev/null
out=$(redis_eval job_create "$Q:job:N3" "$Q:jobs" "$Q:enqueuing" "$Q:notify" "$Q:settings" farm:queues farm:providers , \
  N3 default items item 50 0 normal 30000 status completed)
contains "job_create: an extra pair cannot overwrite a job field" "is a job field" "$out"
rcli HSET "$Q:job:T1" status enqueuing chunks_total 0 total 0 >/dev/null
out=$(redis_eval job_append "$Q:job:T1" "$Q:job:T1:chunks" "$Q:enqueuing" , T1 0 0 1 '{"id":"1"}')
contains "job_append: a heartbeat ttl of 0 is refused" "heartbeat ttl must be" "$out"
out=$(redis_eval job_append "$Q:job:T1" "$Q:job:T1:chunks" "$Q:enqueuing" , T1 30000 0 1)
contains "job_append: a chunk without its entities is refused" "do not match the layout" "$out"
eq "job_append: nothing written for refused calls" "0 0" "$(rcli EXISTS "$Q:job:T1:chunks") $(rcli ZCARD "$Q:enqueuing")"
out=$(redis_eval job_seal "$Q:job:T1" "$Q:pending" "$Q:enqueuing" , T1 0 0)
contains "job_seal: a call without the events channel is refused" "do not match the layout" "$out"
eq "job_seal: nothing written for the refused call" "enqueuing 0" "$(job_field T1 status) $(rcli LLEN "$Q:pending")"
rcli DEL "$Q:job:T1" >/dev/null
eq "job_create: nothing written for refused calls" "0 0" "$(rcli ZCARD "$Q:jobs") $(rcli EXISTS farm:queues)"

# ---- scripts/enqueue.sh ----
printf '1\n2\n3\n' >"$D/ids"
out=$("$EF_ROOT/scripts/enqueue.sh" --provider nosuch "$D/ids" 2>&1); rc=$?
eq "enqueue.sh --provider nosuch: exit 1" 1 "$rc"
contains "enqueue.sh --provider nosuch: says why" \
  "enqueue.sh: unknown provider 'nosuch' (registered by workers: items)" "$out"
eq "enqueue.sh --provider nosuch: no job left behind" 0 "$(rcli ZCARD "$Q:jobs")"
out=$("$EF_ROOT/scripts/enqueue.sh" --provider items "$D/ids" 2>&1); rc=$?
eq "enqueue.sh: a good job is accepted" 0 "$rc"
eq "enqueue.sh: the job's queue is in farm:queues" 1 "$(rcli SISMEMBER farm:queues default)"
if ef_wait_job "$out" completed 20; then ok "enqueue.sh job completes"; else fail "enqueue.sh job completes" "$(job_field "$out" status)"; fi
rcli DEL farm:queues >/dev/null
out=$(redis_eval job_create 'farm:{solo}:job:S1' 'farm:{solo}:jobs' 'farm:{solo}:enqueuing' \
  'farm:{solo}:notify' 'farm:{solo}:settings' farm:queues farm:providers , S1 solo items item 50 0 normal 30000)
eq "job_create alone registers its queue in farm:queues" 1 "$(rcli SISMEMBER farm:queues solo)"
redis_eval job_discard 'farm:{solo}:job:S1' 'farm:{solo}:job:S1:chunks' 'farm:{solo}:jobs' \
  'farm:{solo}:enqueuing' , S1 >/dev/null
rcli SREM farm:queues solo >/dev/null

# ---- the docs' recipe with redis-cli, as written (on our socket) ----
awk '/^## A job by hand/ { in_sec = 1; next }
     in_sec && /^## / { exit }
     in_sec && /^```sh$/ { on = 1; next }
     on && /^```$/ { exit }
     on { print }' "$EF_ROOT/docs/redis.md" | sed "s|^redis-cli |redis-cli -s '$D/redis.sock' |" >"$D/recipe.sh"
out=$(cd "$EF_ROOT" && bash "$D/recipe.sh" 2>&1 | tail -1)
eq "redis-cli recipe: the seal says queued" queued "$out"
if ef_wait_job J1 completed 20; then ok "redis-cli recipe: a worker completes the job"; else fail "redis-cli recipe: job completes" "status $(job_field J1 status)"; fi
eq "redis-cli recipe: exact counts" "2 0 0 0" "$(rcli HMGET "$Q:job:J1" updated conflicts not_found errors | tr '\n' ' ' | sed 's/ $//')"
rcli DEL "$Q:job:J1" "$Q:job:J1:chunks" "$Q:job:J1:outcomes" "$Q:job:J1:attempts" "$Q:job:J1:results" farm:queues >/dev/null
rcli ZREM "$Q:jobs" J1 >/dev/null

# ---- the docs' recipe, as written, with redis-py ----
if [ -z "$PY" ]; then
  fail "redis-py" "no python3 with the redis module (Debian python3-redis; run mk/deps.sh)"
  ef_finish
fi
awk '/^## A job by hand/ { in_sec = 1; next }
     in_sec && /^## / { exit }
     in_sec && /^```python$/ { on = 1; next }
     on && /^```$/ { exit }
     on { print }' "$EF_ROOT/docs/redis.md" >"$D/recipe.py"
check "docs/redis.md has the redis-py recipe" test -s "$D/recipe.py"
out=$(cd "$EF_ROOT" && "$PY" "$D/recipe.py" 2>&1)
eq "redis-py recipe: prints what the doc says" "J1 queued" "$out"
if ef_wait_job J1 completed 20; then ok "redis-py recipe: a worker completes the job"; else fail "redis-py recipe: job completes" "status $(job_field J1 status)"; fi
eq "redis-py recipe: exact counts (total processed updated conflicts not_found errors)" "2 2 2 0 0 0" \
  "$(for f in total processed updated conflicts not_found errors; do printf '%s ' "$(job_field J1 $f)"; done | sed 's/ $//')"
eq "redis-py recipe: the queue is registered" 1 "$(rcli SISMEMBER farm:queues default)"

rm -f "$D/sd.port"
ef_spawn "$D/sd.log" "$BIN/statusd" --listen 127.0.0.1:0 --port-file "$D/sd.port"
if ef_wait_for 5 test -s "$D/sd.port"; then
  queues=$(curl -s "http://127.0.0.1:$(cat "$D/sd.port")/queues")
  contains "redis-py recipe: statusd /queues lists the queue" '"default"' "$queues"
  metrics=$(curl -s "http://127.0.0.1:$(cat "$D/sd.port")/metrics")
  contains "redis-py recipe: /metrics counts the queue" 'queue="default"' "$metrics"
else
  fail "statusd starts" "$(cat "$D/sd.log")"
fi

# a refused call raises with the reason and writes nothing
out=$(cd "$EF_ROOT" && "$PY" - <<'PY' 2>&1
import os, redis
r = redis.Redis.from_url(os.environ["REDIS_URL"])
create = r.register_script(open("scripts/job_create.lua").read())
try:
    create(keys=["farm:{default}:job:X:1", "farm:{default}:jobs", "farm:{default}:enqueuing",
                 "farm:{default}:notify", "farm:{default}:settings", "farm:queues", "farm:providers"],
           args=["X:1", "default", "items", "item", 50, 0, "normal", 30000])
    print("accepted")
except redis.exceptions.ResponseError as e:
    print("refused:", e)
PY
)
contains "redis-py: a job id with ':' raises ResponseError" "refused: bad job id 'X:1'" "$out"
ef_finish
