-- SPDX-License-Identifier: MIT
-- job_cancel: ends a job as "cancelled".  Its remaining entities are never
-- requested: workers drop its chunks when they take them, and chunks set
-- aside while it was paused are dropped here.  Counters keep what was done.
-- Cancelling an enqueuing job makes the enqueuer's next append fail.
-- A job already completed, cancelled or failed is left as it is.
--
-- KEYS[1] farm:{Q}:job:ID  KEYS[2] farm:{Q}:job:ID:parked  KEYS[3] farm:{Q}:enqueuing
-- ARGV[1] id  ARGV[2] events channel
-- Returns the job's status after the call.
local job, parked, enq = KEYS[1], KEYS[2], KEYS[3]
local id = ARGV[1]
local status = redis.call('HGET', job, 'status')
if not status then
  return redis.error_reply('ERR job ' .. id .. ' does not exist')
end
if status == 'completed' or status == 'cancelled' or status == 'failed' then
  return status
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('HSET', job, 'status', 'cancelled', 'completed_at', now, 'updated_at', now)
redis.call('DEL', parked)
redis.call('ZREM', enq, id)
redis.call('PUBLISH', ARGV[2], cjson.encode({job = id, status = 'cancelled'}))
return 'cancelled'
