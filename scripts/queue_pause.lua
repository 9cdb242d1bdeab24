-- SPDX-License-Identifier: MIT
-- queue_pause: pauses (ARGV[1] = 1) or resumes (0) a whole queue.  Workers
-- stop taking chunks from a paused queue; chunks in hand finish.
--
-- KEYS[1] farm:{Q}:paused
-- ARGV[1] 1|0  ARGV[2] events channel
-- Returns "paused" or "running".
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if ARGV[1] == '1' then
  redis.call('SET', KEYS[1], now)
  redis.call('PUBLISH', ARGV[2], cjson.encode({queue_paused = true}))
  return 'paused'
end
redis.call('DEL', KEYS[1])
redis.call('PUBLISH', ARGV[2], cjson.encode({queue_paused = false}))
return 'running'
