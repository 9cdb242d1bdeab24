-- SPDX-License-Identifier: MIT
-- job_cancel: ends a job as "cancelled".  Its remaining entities are never
-- requested: workers holding its chunks hear it on the queue's control
-- channel and drop them at once (requests in flight finish), workers drop
-- chunks they take later, and chunks set aside while it was paused are
-- dropped here.  Counters keep what was done.  Cancelling an enqueuing job
-- makes the enqueuer's next append fail.  A job already completed,
-- cancelled or failed is left as it is (the control message is sent again,
-- so no worker keeps working on it).
--
-- KEYS[1] farm:{Q}:job:ID  KEYS[2] farm:{Q}:job:ID:parked  KEYS[3] farm:{Q}:enqueuing
--     KEYS[4] farm:{Q}:control (channel)
-- ARGV[1] id  ARGV[2] events channel
-- Returns the job's status after the call.
if #KEYS ~= 4 or #ARGV ~= 2 then
  return redis.error_reply('ERR job_cancel: 4 keys and 2 arguments expected')
end
local job, parked, enq, control = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local id = ARGV[1]
local status = redis.call('HGET', job, 'status')
if not status then
  return redis.error_reply('ERR job ' .. id .. ' does not exist')
end
if status == 'completed' or status == 'cancelled' or status == 'failed' then
  redis.call('PUBLISH', control, cjson.encode({job = id, status = status}))
  return status
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('HSET', job, 'status', 'cancelled', 'completed_at', now, 'updated_at', now)
redis.call('DEL', parked)
redis.call('ZREM', enq, id)
local msg = cjson.encode({job = id, status = 'cancelled'})
redis.call('PUBLISH', ARGV[2], msg)
redis.call('PUBLISH', control, msg)
return 'cancelled'
