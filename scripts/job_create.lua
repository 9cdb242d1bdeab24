-- SPDX-License-Identifier: MIT
-- job_create: creates a job hash in status "enqueuing" before any chunk of it
-- exists, records it in the queue's job index, in the enqueuing index (an
-- enqueuer heartbeat: a job whose enqueuer stops touching it is marked
-- failed/abandoned by job_abandon) and registers the queue in farm:queues.
-- Refuses what the C programs refuse, so that a client with only redis-cli
-- cannot make a job no worker can serve: an id that already exists, a job id
-- or queue or provider name outside the documented alphabet (a ':' in an id
-- would make chunk refs unparsable), a provider that no worker registered
-- (when some worker registered any), a bad chunk size, priority or dry_run.
--
-- The completion webhook (docs/webhooks.md): the job's notify_url is the
-- extra field notify_url when given, else the recipe's default ("notify" in
-- the provider's farm:providers summary, when that key is passed), else the
-- queue's (farm:{Q}:settings notify_url).  A job with one gets
-- notify_status "pending" and an entry in farm:{Q}:notify, where senders
-- (workers) find it.
--
-- KEYS[1] farm:{Q}:job:ID   KEYS[2] farm:{Q}:jobs   KEYS[3] farm:{Q}:enqueuing
-- KEYS[4] farm:{Q}:notify   KEYS[5] farm:{Q}:settings
-- KEYS[6] farm:queues       KEYS[7] farm:providers   (both optional, see below)
-- In a Redis Cluster farm:queues and farm:providers live in other slots than
-- the queue's keys, and a script may only touch one slot: there the caller
-- passes the 5 queue keys only, checks the provider against farm:providers
-- and, while this script says the queue is not registered yet, adds the
-- queue to farm:queues itself (SADD) after this script, then marks it
-- registered (HSET farm:{Q}:settings registered 1); a recipe's default
-- webhook is not applied.  With 7 keys (one node, Sentinel) the script
-- does both.
-- ARGV[1] id  ARGV[2] queue  ARGV[3] provider  ARGV[4] entity_type
-- ARGV[5] chunk_size (1..10000)  ARGV[6] dry_run (0|1)
-- ARGV[7] priority (normal|high)  ARGV[8] heartbeat ttl ms (1000..3600000)
-- ARGV[9..] extra field/value pairs (source, retry_of, notify_url, ...)
-- Returns created_at (ms, Redis clock); with 5 keys {created_at, first}, first
-- 1 while farm:{Q}:settings has no field registered (SADD the queue to
-- farm:queues, then set it: a caller that dies in between leaves it unset,
-- and the next job registers the queue), else 0.
--
-- redis-cli --eval scripts/job_create.lua 'farm:{default}:job:J1' 'farm:{default}:jobs' \
--   'farm:{default}:enqueuing' 'farm:{default}:notify' 'farm:{default}:settings' \
--   farm:queues farm:providers , J1 default items item 50 0 normal 30000
if (#KEYS ~= 7 and #KEYS ~= 5) or #ARGV < 8 or #ARGV % 2 ~= 0 then
  return redis.error_reply('ERR job_create: KEYS and ARGV do not match the layout in its header')
end
local job, jobs, enq, notify, settings = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local queues, providers = KEYS[6], KEYS[7]
local id, queue, provider = ARGV[1], ARGV[2], ARGV[3]

-- the names of lib/ef_common.c: 1-64 of A-Z a-z 0-9 _ - (queue and
-- provider names also '.')
local function name_ok(s, dot)
  local pat = dot and '^[A-Za-z0-9_.-]+$' or '^[A-Za-z0-9_-]+$'
  return #s >= 1 and #s <= 64 and string.find(s, pat) ~= nil
end
if not name_ok(id, false) then
  return redis.error_reply('ERR bad job id \'' .. string.sub(id, 1, 80) ..
    '\': 1-64 of A-Z a-z 0-9 _ -')
end
if not name_ok(queue, true) then
  return redis.error_reply('ERR bad queue name \'' .. string.sub(queue, 1, 80) ..
    '\': 1-64 of A-Z a-z 0-9 _ . -')
end
if not name_ok(provider, true) then
  return redis.error_reply('ERR bad provider name \'' .. string.sub(provider, 1, 80) ..
    '\': 1-64 of A-Z a-z 0-9 _ . -')
end
if #ARGV[4] < 1 or #ARGV[4] > 64 or string.find(ARGV[4], '[%z\1-\31\127]') then
  return redis.error_reply('ERR entity_type must be 1..64 printable bytes')
end
-- EF_JOB_CHUNK_SIZE_MAX in lib/ef_job.h (test_contract checks they agree)
local CHUNK_SIZE_MAX = 10000
local chunk_size = tonumber(ARGV[5])
if not chunk_size or chunk_size ~= math.floor(chunk_size) or chunk_size < 1 or
    chunk_size > CHUNK_SIZE_MAX then
  return redis.error_reply('ERR chunk_size must be an integer from 1 to ' .. CHUNK_SIZE_MAX)
end
if ARGV[6] ~= '0' and ARGV[6] ~= '1' then
  return redis.error_reply('ERR dry_run must be 0 or 1')
end
if ARGV[7] ~= 'normal' and ARGV[7] ~= 'high' then
  return redis.error_reply('ERR priority must be normal or high')
end
local ttl = tonumber(ARGV[8])
if not ttl or ttl % 1 ~= 0 or ttl < 1000 or ttl > 3600000 then
  return redis.error_reply('ERR heartbeat ttl must be an integer from 1000 to 3600000 ms')
end
-- the same check, and the same words, as the enqueuer and POST /jobs
if providers and redis.call('HLEN', providers) > 0 and
    redis.call('HEXISTS', providers, provider) == 0 then
  local names, len = {}, 0
  for _, p in ipairs(redis.call('HKEYS', providers)) do
    if len >= 400 then break end
    names[#names + 1] = p
    len = len + #p + 2
  end
  return redis.error_reply('ERR unknown provider \'' .. provider ..
    '\' (registered by workers: ' .. table.concat(names, ', ') .. ')')
end
local core = {id = 1, queue = 1, provider = 1, entity_type = 1, status = 1, sealed = 1,
  total = 1, processed = 1, updated = 1, conflicts = 1, not_found = 1, errors = 1,
  cached = 1, skipped = 1, chunk_size = 1, chunks_total = 1, chunks_done = 1,
  chunks_dead = 1, dry_run = 1, priority = 1, created_at = 1, started_at = 1,
  updated_at = 1, completed_at = 1, error = 1, notify_status = 1, notify_attempts = 1,
  notify_error = 1, notify_owner = 1, notify_give_up_at = 1, notify_at = 1}
for i = 9, #ARGV - 1, 2 do
  if core[ARGV[i]] or #ARGV[i] < 1 or #ARGV[i] > 64 or #ARGV[i + 1] > 4096 then
    return redis.error_reply('ERR extra field \'' .. string.sub(ARGV[i], 1, 80) ..
      '\' is a job field, empty, or too long')
  end
end
-- the webhook: given, else the recipe's default, else the queue's
local notify_url
for i = 9, #ARGV - 1, 2 do
  if ARGV[i] == 'notify_url' then notify_url = ARGV[i + 1] end
end
if not notify_url and providers then
  local sum = redis.call('HGET', providers, provider)
  if sum then
    local okj, o = pcall(cjson.decode, sum)
    if okj and type(o) == 'table' and type(o.notify) == 'string' then notify_url = o.notify end
  end
end
if not notify_url then
  local q = redis.call('HGET', settings, 'notify_url')
  if q then notify_url = q end
end
-- the rule of lib/ef_notify.c (ef_notify_url_valid)
if notify_url and (#notify_url > 2048 or not (string.find(notify_url, '^https?://[^/?#]') ~= nil)
    or string.find(notify_url, '[%z\1-\32\127]')) then
  return redis.error_reply('ERR notify url must be http:// or https://, at most 2048 bytes, ' ..
    'no space or control character')
end
if redis.call('EXISTS', job) == 1 then
  return redis.error_reply('ERR job ' .. id .. ' already exists')
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('HSET', job,
  'id', id, 'queue', queue, 'provider', provider, 'entity_type', ARGV[4],
  'status', 'enqueuing', 'sealed', 0,
  'total', 0, 'processed', 0, 'updated', 0, 'conflicts', 0, 'not_found', 0,
  'errors', 0, 'cached', 0, 'skipped', 0,
  'chunk_size', chunk_size, 'chunks_total', 0, 'chunks_done', 0, 'chunks_dead', 0,
  'dry_run', tonumber(ARGV[6]), 'priority', ARGV[7],
  'created_at', now, 'started_at', 0, 'updated_at', now, 'completed_at', 0)
for i = 9, #ARGV - 1, 2 do
  redis.call('HSET', job, ARGV[i], ARGV[i + 1])
end
if notify_url then
  redis.call('HSET', job, 'notify_url', notify_url, 'notify_status', 'pending',
    'notify_attempts', 0)
  redis.call('ZADD', notify, now, id)
end
local first = not queues and redis.call('HEXISTS', settings, 'registered') == 0
redis.call('ZADD', jobs, now, id)
redis.call('ZADD', enq, now + ttl, id)
if queues then
  redis.call('SADD', queues, queue)
  return now
end
return {now, first and 1 or 0}
