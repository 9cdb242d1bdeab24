-- SPDX-License-Identifier: MIT
-- job_pause: pauses a queued or running job.  Workers holding its chunks
-- hear it on the queue's control channel and stop at once: no new request
-- starts, requests in flight finish and are recorded, and each chunk is set
-- aside on farm:{Q}:job:ID:parked (chunk_release "park").  Chunks taken
-- later are parked by chunk_claim (workers do not spin on them).  Pausing a
-- paused job publishes again, so a worker that missed the first message
-- stops too.
--
-- KEYS[1] farm:{Q}:job:ID  KEYS[2] farm:{Q}:control (channel)
-- ARGV[1] id  ARGV[2] events channel
-- Returns "paused".
if #KEYS ~= 2 or #ARGV ~= 2 then
  return redis.error_reply('ERR job_pause: 2 keys and 2 arguments expected')
end
local job, control = KEYS[1], KEYS[2]
local id = ARGV[1]
local status = redis.call('HGET', job, 'status')
if not status then
  return redis.error_reply('ERR job ' .. id .. ' does not exist')
end
if status ~= 'paused' and status ~= 'queued' and status ~= 'running' then
  return redis.error_reply('ERR job ' .. id .. ' is ' .. status .. ' and cannot be paused')
end
local msg = cjson.encode({job = id, status = 'paused'})
if status ~= 'paused' then
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  redis.call('HSET', job, 'status', 'paused', 'updated_at', now)
  redis.call('PUBLISH', ARGV[2], msg)
end
redis.call('PUBLISH', control, msg)
return 'paused'
