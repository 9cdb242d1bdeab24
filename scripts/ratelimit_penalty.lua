-- SPDX-License-Identifier: MIT
-- ratelimit_penalty: a provider answered 429 (or 503 with Retry-After), or
-- said it has no request left until a reset (a rate header's Remaining: 0).
-- The whole farm backs off at once: the bucket is emptied and paused until
-- a deadline on Redis's clock (TIME), whichever of the old and the new
-- deadline ends later.  The pause is either a length (ARGV[1]: delay-seconds,
-- or an HTTP-date already converted against the response's Date header) or
-- a date (ARGV[2], ms since the epoch), converted here against Redis's
-- clock, never a worker's.  Either way it is capped at ARGV[3] ms.
--
-- Adaptive rate (ARGV[4] = 1: a 429 or 503, not a plain reset): the rate in
-- force is cut, at most once per wave of refusals however many workers saw
-- them: a refusal that comes before the last cut's pause has ended, or
-- within CUT_WINDOW_MS of the cut (cut_ms), cuts nothing (it answers a
-- request sent before the cut).  The cut remembers a plateau,
-- learned_requests (per second): the rate in force at the refusal, or the
-- answers per second the farm got over the last few seconds (ok_* fields,
-- counted by ratelimit_take.lua) when that is below BETA x the rate (the
-- farm sent far more than the provider took), lowered to (1 + BETA) / 2 of
-- that when it is below the previous plateau (the limit is lower still:
-- converge fast), to FAST_BETA of it when that refusal came within FAST_MS
-- of the last pause's end (the farm is far above the limit: the provider's
-- refilled burst was gone at once), at least FLOOR_PER_S; and
-- learned_at, the pause's end (ms).  From there ratelimit_take.lua runs the
-- rate at BETA x the plateau, growing back on a cubic curve: quickly at
-- first, flat near the plateau, then faster again beyond it (a provider that
-- raised its limit is found), up to the recipe's rate when it has one.
-- A first refusal at the recipe's rate while the farm got at least 95 % of
-- that rate accepted is jitter at a right rate: it pauses and cuts nothing.
-- The same curve lives in ratelimit_take.lua: keep the constants equal.
--
-- KEYS[1] farm:ratelimit:{P}
-- ARGV[1] pause ms (>= 0; ignored when ARGV[2] is given)
-- ARGV[2] the pause's end as a date, ms since the epoch (0: none)
-- ARGV[3] the longest pause, ms (> 0)
-- ARGV[4] 1: a refusal (429, 503): cut the rate; 0: pause only
-- A call that does not fit this layout changes nothing and returns an error.
-- Returns {ms until the pause ends (this one or a longer one already set),
-- 1 when capped else 0, the pause's end (ms, Redis clock), the pause ms
-- asked for, the plateau per second x1000 after this call (0: none)}
local BETA, C, CUT_WINDOW_MS, FLOOR_PER_S, FAST_MS, FAST_BETA = 0.9, 0.0025, 1000, 0.1, 3000, 0.75
local pause, date = tonumber(ARGV[1]), tonumber(ARGV[2])
local cap, cut = tonumber(ARGV[3]), tonumber(ARGV[4])
if #KEYS ~= 1 or #ARGV ~= 4 or not pause or not date or not cap or cap <= 0
    or (cut ~= 0 and cut ~= 1) then
  return redis.error_reply('ERR ratelimit_penalty: KEYS and ARGV do not match the layout in its header (4 numbers)')
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if date > 0 then pause = date - now end
if pause < 0 then pause = 0 end
local asked, capped = pause, 0
if pause > cap then pause, capped = cap, 1 end
local until_ms = now + pause
local h = redis.call('HMGET', KEYS[1], 'paused_until', 'learned_requests', 'learned_at',
  'requests', 'per_seconds', 'ok_at', 'ok_n', 'ok_prev_at', 'ok_prev_n', 'ok_last', 'cut_ms')
local cur = tonumber(h[1]) or 0
if cur > now + cap then cur = now + cap end -- set under a longer cap, or before there was one
if cur > until_ms then until_ms = cur end
redis.call('HSET', KEYS[1], 'paused_until', until_ms, 'tokens', 0, 'ts', until_ms)
redis.call('HINCRBY', KEYS[1], 'penalties', 1)

local plateau, at = tonumber(h[2]), tonumber(h[3]) or 0
local requests, per = tonumber(h[4]) or 0, tonumber(h[5]) or 1
local ceiling = (requests > 0 and per > 0) and requests / per or nil
local cut_ms = tonumber(h[11]) or 0
if cut == 1 and (at <= 0 or (now >= at and now >= cut_ms + CUT_WINDOW_MS)) then
  -- the rate in force now (as ratelimit_take.lua computes it)
  local r = ceiling
  if plateau and at > 0 then
    local k = (plateau * (1 - BETA) / C) ^ (1 / 3)
    local x = math.max(0, now - at) / 1000
    r = plateau + C * (x - k) ^ 3
    if ceiling and r > ceiling then r = ceiling end
  end
  -- the answers per second the farm got over the last 1.5 to 3 s (two
  -- slots kept by ratelimit_take.lua), when the span means something
  local ok_at, ok_n = tonumber(h[6]) or 0, tonumber(h[7]) or 0
  local from, prev_n = tonumber(h[8]) or 0, tonumber(h[9]) or 0
  if from <= 0 or from > ok_at then from, prev_n = ok_at, 0 end
  local last = tonumber(h[10]) or now
  local seen = nil
  -- (a span under half a second counts as half a second once the rate has
  -- been cut before: refused right after the pause, the few answers it got
  -- are what the provider takes; at the first refusal a short span is not
  -- used at all, the answers of a start reach the bucket one call late)
  if from > 0 and (last - from >= 500 or (at > 0 and last >= from)) then
    seen = (ok_n + prev_n) * 1000 / math.max(last - from, 500)
  end
  if ceiling and r == ceiling and not (plateau and at > 0) and seen and seen >= 0.95 * ceiling then
    -- the first refusal at the recipe's rate while the provider took about
    -- all of it: jitter at a rate that is right, pause only
    cut = 0
  end
  -- the measure only when the farm clearly sent more than was accepted
  -- (near the limit it reads low: answers in flight are not counted yet)
  if not r or (seen and seen < r * BETA) then r = seen end
  if not r then r = 1 end
  -- refused again below the last plateau: the limit is lower still, go
  -- below it at once (fast convergence)
  -- (and a quarter lower when it came within FAST_MS of the last pause's
  -- end: the farm is far above the limit; going there by BETA steps took
  -- four refusals from 20/s to 10/s, some of them well after the start)
  if plateau and at > 0 and r < plateau then
    if now - at < FAST_MS then r = r * FAST_BETA else r = r * (1 + BETA) / 2 end
  end
  if r < FLOOR_PER_S then r = FLOOR_PER_S end
  if cut == 1 then
    plateau = r
    redis.call('HSET', KEYS[1], 'learned_requests', plateau, 'learned_at', until_ms, 'cut_ms', now,
      'ok_at', until_ms, 'ok_n', 0, 'ok_prev_at', 0, 'ok_prev_n', 0)
    redis.call('HINCRBY', KEYS[1], 'cuts', 1)
  end
end
if not (at > 0 or cut == 1) then plateau = nil end
return {math.floor(until_ms - now), capped, math.floor(until_ms), math.floor(math.min(asked, 9e15)),
  math.floor((plateau or 0) * 1000)}
