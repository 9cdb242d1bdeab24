-- SPDX-License-Identifier: MIT
-- chunk_claim: a worker has just moved chunk ref JOBID:N from pending to
-- processing (BLMOVE); this decides what happens to it, atomically:
--   the job is gone or final      -> dropped from processing      {'drop', why}
--   the queue is paused           -> back to the taking end       {'queue_paused'}
--   the job is paused             -> set aside on the job's parked list {'parked'}
--   every entity already has an outcome -> dropped (a redelivery)  {'drop', 'done'}
--   delivered more than max_attempts times -> dead list, its unfinished
--     entities recorded as errors, so the job still completes   {'dead', completed}
--   otherwise a lease (deadline now + lease ms) owned by this worker:
--     {'ok', entities NDJSON, outcomes, attempts, started, dry_run, provider, status}
-- The first claim of a queued job makes it running (started = 1).
-- The outcome string (one '.' per entity) is created here on first claim.
--
-- KEYS[1] job  [2] job:chunks  [3] job:outcomes  [4] job:attempts  [5] leases
--     [6] owners  [7] processing  [8] job:parked  [9] dead  [10] job:errors
--     [11] stats  [12] paused  [13] pending
-- ARGV[1] ref  [2] job id  [3] chunk number  [4] worker id  [5] lease ms
--     [6] max attempts  [7] events channel  [8] error log cap
local job, chunks, outcomes, attempts, leases, owners, processing, parked, dead, errors, stats,
  paused, pending = unpack(KEYS)
local ref, id, n, worker = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

local function unhold()
  redis.call('LREM', processing, 1, ref)
  redis.call('ZREM', leases, ref)
  redis.call('HDEL', owners, ref)
end

local function complete_if_done()
  local s = redis.call('HMGET', job, 'status', 'sealed', 'chunks_done', 'chunks_total')
  if s[2] == '1' and tonumber(s[3]) >= tonumber(s[4]) and
     (s[1] == 'running' or s[1] == 'queued' or s[1] == 'paused') then
    redis.call('HSET', job, 'status', 'completed', 'completed_at', now, 'updated_at', now)
    redis.call('PUBLISH', ARGV[7], cjson.encode({job = id, status = 'completed'}))
    return 1
  end
  return 0
end

if redis.call('EXISTS', paused) == 1 then
  redis.call('LREM', processing, 1, ref)
  redis.call('RPUSH', pending, ref)
  return {'queue_paused'}
end
local st = redis.call('HMGET', job, 'status', 'dry_run', 'provider')
local status = st[1]
if not status then
  unhold()
  return {'drop', 'no such job'}
end
if status == 'completed' or status == 'cancelled' or status == 'failed' then
  unhold()
  return {'drop', status}
end
if status == 'paused' then
  unhold()
  redis.call('LPUSH', parked, ref)
  return {'parked'}
end
local data = redis.call('HGET', chunks, n)
if not data then
  unhold()
  return {'drop', 'missing chunk'}
end
local oc = redis.call('HGET', outcomes, n)
if not oc then
  local _, nl = string.gsub(data, '\n', '')
  oc = string.rep('.', nl + 1)
  redis.call('HSET', outcomes, n, oc)
end
if not string.find(oc, '.', 1, true) then
  unhold()
  return {'drop', 'done'}
end
local tries = redis.call('HINCRBY', attempts, n, 1)
if tries > tonumber(ARGV[6]) then
  local left = 0
  oc = string.gsub(oc, '%.', function() left = left + 1; return 'e' end)
  redis.call('HSET', outcomes, n, oc)
  redis.call('HINCRBY', job, 'errors', left)
  redis.call('HINCRBY', job, 'processed', left)
  redis.call('HINCRBY', job, 'chunks_done', 1)
  redis.call('HINCRBY', job, 'chunks_dead', 1)
  redis.call('HSET', job, 'updated_at', now)
  redis.call('HINCRBY', stats, 'errors', left)
  redis.call('HINCRBY', stats, 'chunks_dead', 1)
  redis.call('LPUSH', errors, cjson.encode({chunk = tonumber(n), entities = left, at = now,
    error = 'chunk went to the dead list after ' .. (tries - 1) .. ' deliveries'}))
  redis.call('LTRIM', errors, 0, tonumber(ARGV[8]) - 1)
  unhold()
  redis.call('LPUSH', dead, ref)
  return {'dead', complete_if_done(), left}
end
redis.call('ZADD', leases, now + tonumber(ARGV[5]), ref)
redis.call('HSET', owners, ref, worker)
local started = 0
if status == 'queued' then
  redis.call('HSET', job, 'status', 'running', 'started_at', now, 'updated_at', now)
  redis.call('PUBLISH', ARGV[7], cjson.encode({job = id, status = 'running'}))
  started = 1
  status = 'running'
end
return {'ok', data, oc, tries, started, st[2] or '0', st[3] or '', status}
