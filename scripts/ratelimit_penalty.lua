-- SPDX-License-Identifier: MIT
-- ratelimit_penalty: a provider answered 429.  The whole farm backs off at
-- once: the bucket is emptied and paused until a deadline on Redis's clock
-- (TIME), whichever of the old and the new deadline ends later.  The pause
-- is the Retry-After: either a length (ARGV[1], delay-seconds, or an
-- HTTP-date already converted against the response's Date header) or, for
-- an HTTP-date with no Date header, the date itself (ARGV[2]), converted
-- here against Redis's clock, never a worker's.  Either way it is capped at
-- ARGV[3] ms.
-- A provider without a `rate` (ARGV[4] > 0: the answers per second the
-- worker saw) gets a learned rate: half of what it took, at least 1/s,
-- never above a learned rate still in force.  ratelimit_take.lua applies it
-- and lets it grow back until it lapses.
--
-- KEYS[1] farm:ratelimit:{P}
-- ARGV[1] pause ms (>= 0; ignored when ARGV[2] is given)
-- ARGV[2] Retry-After as an HTTP-date, ms since the epoch (0: none)
-- ARGV[3] the longest pause, ms (> 0)
-- ARGV[4] answers per second the worker saw (0: the provider has a rate, learn nothing)
-- ARGV[5] how long a learned rate lasts, ms
-- A call that does not fit this layout changes nothing and returns an error.
-- Returns {ms until the pause ends (this one or a longer one already set), 1 when capped else 0, the pause's end (ms, Redis
-- clock), the pause ms asked for}
local pause, date = tonumber(ARGV[1]), tonumber(ARGV[2])
local cap, seen, learn_ms = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
if #KEYS ~= 1 or #ARGV ~= 5 or not pause or not date or not cap or cap <= 0 or not seen
    or not learn_ms then
  return redis.error_reply('ERR ratelimit_penalty: KEYS and ARGV do not match the layout in its header (5 numbers)')
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if date > 0 then pause = date - now end
if pause < 0 then pause = 0 end
local asked, capped = pause, 0
if pause > cap then pause, capped = cap, 1 end
local until_ms = now + pause
local h = redis.call('HMGET', KEYS[1], 'paused_until', 'learned_requests', 'learned_at')
local cur = tonumber(h[1]) or 0
if cur > now + cap then cur = now + cap end -- set under a longer cap, or before there was one
if cur > until_ms then until_ms = cur end
redis.call('HSET', KEYS[1], 'paused_until', until_ms, 'tokens', 0, 'ts', now)
redis.call('HINCRBY', KEYS[1], 'penalties', 1)
if seen > 0 then
  local learned = math.max(1, math.floor(seen / 2))
  local old, at = tonumber(h[2]), tonumber(h[3]) or 0
  if old and at > 0 and now - at < learn_ms then
    local grown = old * (1 + (now - at) / 10000)
    if grown < learned then learned = math.max(1, math.floor(grown)) end
  end
  redis.call('HSET', KEYS[1], 'learned_requests', learned, 'learned_at', now)
end
return {math.floor(until_ms - now), capped, math.floor(until_ms), math.floor(math.min(asked, 9e15))}
