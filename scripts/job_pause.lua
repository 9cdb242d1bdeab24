-- SPDX-License-Identifier: MIT
-- job_pause: pauses a queued or running job.  Workers that take one of its
-- chunks set it aside on farm:{Q}:job:ID:parked (they do not spin on it);
-- chunks already in hand finish their in-flight requests.
--
-- KEYS[1] farm:{Q}:job:ID
-- ARGV[1] id  ARGV[2] events channel
-- Returns "paused".
local job = KEYS[1]
local id = ARGV[1]
local status = redis.call('HGET', job, 'status')
if not status then
  return redis.error_reply('ERR job ' .. id .. ' does not exist')
end
if status == 'paused' then
  return 'paused'
end
if status ~= 'queued' and status ~= 'running' then
  return redis.error_reply('ERR job ' .. id .. ' is ' .. status .. ' and cannot be paused')
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('HSET', job, 'status', 'paused', 'updated_at', now)
redis.call('PUBLISH', ARGV[2], cjson.encode({job = id, status = 'paused'}))
return 'paused'
