-- SPDX-License-Identifier: MIT
-- job_resume: resumes a paused job: status back to "running" (or "queued"
-- when no chunk was ever taken) and every chunk set aside while paused goes
-- back to the taking end of the pending list.  Workers hear it on the
-- queue's control channel (a chunk they were about to park is worked).
--
-- KEYS[1] farm:{Q}:job:ID  KEYS[2] farm:{Q}:job:ID:parked  KEYS[3] farm:{Q}:pending
--     KEYS[4] farm:{Q}:control (channel)
-- ARGV[1] id  ARGV[2] events channel
-- Returns the job's status after the call.
if #KEYS ~= 4 or #ARGV ~= 2 then
  return redis.error_reply('ERR job_resume: 4 keys and 2 arguments expected')
end
local job, parked, pending, control = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local id = ARGV[1]
local st = redis.call('HMGET', job, 'status', 'started_at')
if not st[1] then
  return redis.error_reply('ERR job ' .. id .. ' does not exist')
end
if st[1] ~= 'paused' then
  if st[1] == 'queued' or st[1] == 'running' then
    return st[1]
  end
  return redis.error_reply('ERR job ' .. id .. ' is ' .. st[1] .. ' and cannot be resumed')
end
local status = (tonumber(st[2]) or 0) > 0 and 'running' or 'queued'
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('HSET', job, 'status', status, 'updated_at', now)
for _ = 1, redis.call('LLEN', parked) do
  if not redis.call('LMOVE', parked, pending, 'LEFT', 'RIGHT') then break end
end
local msg = cjson.encode({job = id, status = status})
redis.call('PUBLISH', ARGV[2], msg)
redis.call('PUBLISH', control, msg)
return status
