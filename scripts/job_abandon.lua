-- SPDX-License-Identifier: MIT
-- job_abandon: marks a job whose enqueuer stopped before sealing it (killed,
-- lost its connection) as failed, with the reason, and drops its stored
-- chunks.  None of them was ever visible to workers.  Called for the ids
-- whose heartbeat in farm:{Q}:enqueuing has passed by every worker's reaper,
-- statusd and the enqueuer (lib/ef_abandon.c); does nothing when the
-- heartbeat was refreshed meanwhile (checked on Redis's clock).
--
-- KEYS[1] farm:{Q}:job:ID  KEYS[2] farm:{Q}:job:ID:chunks  KEYS[3] farm:{Q}:enqueuing
-- ARGV[1] id  ARGV[2] events channel
-- Returns 1 when the job was marked abandoned, 0 otherwise.
if #KEYS ~= 3 or #ARGV ~= 2 then
  return redis.error_reply('ERR job_abandon: KEYS and ARGV do not match the layout in its header')
end
local job, chunks, enq = KEYS[1], KEYS[2], KEYS[3]
local id = ARGV[1]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local deadline = tonumber(redis.call('ZSCORE', enq, id))
if not deadline or deadline > now then
  return 0
end
redis.call('ZREM', enq, id)
if redis.call('HGET', job, 'status') ~= 'enqueuing' then
  return 0
end
redis.call('HSET', job, 'status', 'failed', 'completed_at', now, 'updated_at', now,
  'error', 'abandoned: the enqueuer stopped before sealing the job')
redis.call('UNLINK', chunks)
redis.call('PUBLISH', ARGV[2], cjson.encode({job = id, status = 'failed'}))
return 1
