-- SPDX-License-Identifier: MIT
-- queue_pause: pauses (ARGV[1] = 1) or resumes (0) a whole queue.  Workers
-- hear it on the queue's control channel: on pause they take nothing more
-- from it and hand the chunks they hold back to pending at once (requests
-- in flight finish and are recorded); on resume they take again.
--
-- KEYS[1] farm:{Q}:paused  KEYS[2] farm:{Q}:control (channel)
-- ARGV[1] 1|0  ARGV[2] events channel
-- Returns "paused" or "running".
if #KEYS ~= 2 or #ARGV ~= 2 or (ARGV[1] ~= '1' and ARGV[1] ~= '0') then
  return redis.error_reply('ERR queue_pause: 2 keys and 2 arguments (1|0, channel) expected')
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local msg
if ARGV[1] == '1' then
  redis.call('SET', KEYS[1], now)
  msg = cjson.encode({queue_paused = true})
else
  redis.call('DEL', KEYS[1])
  msg = cjson.encode({queue_paused = false})
end
redis.call('PUBLISH', ARGV[2], msg)
redis.call('PUBLISH', KEYS[2], msg)
return ARGV[1] == '1' and 'paused' or 'running'
