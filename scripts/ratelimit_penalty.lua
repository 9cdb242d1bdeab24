-- SPDX-License-Identifier: MIT
-- ratelimit_penalty: a provider answered 429.  The whole farm backs off at
-- once: the bucket is emptied and paused until now + pause ms (the
-- Retry-After, or a default), whichever ends later.
--
-- KEYS[1] farm:ratelimit:{P}
-- ARGV[1] pause ms
-- Returns the pause's end (ms, Redis clock).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local until_ms = now + (tonumber(ARGV[1]) or 1000)
local cur = tonumber(redis.call('HGET', KEYS[1], 'paused_until')) or 0
if cur > until_ms then until_ms = cur end
redis.call('HSET', KEYS[1], 'paused_until', until_ms, 'tokens', 0, 'ts', now)
redis.call('HINCRBY', KEYS[1], 'penalties', 1)
return math.floor(until_ms)
