-- SPDX-License-Identifier: MIT
-- ratelimit_take: the farm-wide token bucket of one provider.  Refilled from
-- Redis's own clock (TIME), so hosts with skewed clocks agree.  A worker
-- asks for as many tokens as it has requests ready; it gets at most what
-- the bucket holds, at most its fair share of the burst when several
-- workers are waiting, and, when short, how long to wait for the next
-- token.  A reserve (about 50 ms of tokens, at least 1, at most a third of
-- the burst) is never handed out: the provider's own bucket, drained by the
-- farm's first burst, is left that much, so requests that reach it bunched
-- (a worker descheduled for a few tens of ms, then sending what it holds)
-- are not refused; the long-run rate is unchanged.
-- Tokens go out in batches of 10 ms of the rate or a quarter of the burst,
-- whichever is more (at most the asker's fair share and what it wants): a
-- worker short of tokens is told to wait for a batch, not for the next
-- single token, so at 1000/s a worker makes about one call per 10 requests
-- instead of polling every millisecond.  The batches of all waiting workers
-- fit in the burst together, so waiting for them loses no tokens.
-- The bucket's settings are read from the hash (set by workers from their
-- recipes, or by `enqueuer rate-limit`), falling back to ARGV.
-- A pause (ratelimit_penalty.lua: a 429, a 503 with Retry-After, a rate
-- header's Remaining: 0) holds every provider, with a rate or without, and
-- the bucket stays empty until it ends (no burst piles up meanwhile).
-- Adaptive rate: after a refusal cut it (learned_requests, the plateau per
-- second; learned_at, ms, the cut's pause end), the rate in force is
-- plateau + C (x - K)^3 with x the seconds since learned_at and
-- K = cbrt(plateau (1 - BETA) / C): BETA x the plateau at first, back near
-- the plateau after K s, beyond it faster and faster, capped at the
-- recipe's rate (requests / per_seconds).  While a learned rate is in
-- force the burst is half a second of it (at least 1, at most the
-- recipe's burst): the provider's own burst may be far smaller.  A
-- provider without a rate is free (the 4th reply element is 1: the worker
-- may send without asking for a while) until a refusal gives it a plateau.
-- Once the curve is back at the recipe's rate the learned fields are
-- dropped.
-- The curve's constants live in ratelimit_penalty.lua too: keep them equal.
-- Answers the workers got (not refused) are counted in two slots of
-- OK_SLOT_MS (ok_prev_at/ok_prev_n, ok_at/ok_n), so ratelimit_penalty.lua
-- knows what the provider accepted over the last few seconds (up to the
-- last report, ok_last: answers reach the bucket one call late).
--
-- KEYS[1] farm:ratelimit:{P}  KEYS[2] farm:ratelimit:{P}:waiters
-- ARGV[1] tokens wanted  ARGV[2] worker id
-- ARGV[3] requests  ARGV[4] per seconds  ARGV[5] burst   (defaults)
-- ARGV[6] answers (not refused) the worker got since its last call
-- Returns {granted, wait ms before asking again (0: ask when needed), tokens
-- left (x1000), 1 when no rate is in force else 0}
local BETA, C, FLOOR_PER_S, OK_SLOT_MS = 0.9, 0.0025, 0.1, 1500
local bucket, waiters = KEYS[1], KEYS[2]
local want = tonumber(ARGV[1]) or 1
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local h = redis.call('HMGET', bucket, 'requests', 'per_seconds', 'burst', 'tokens', 'ts',
  'paused_until', 'learned_requests', 'learned_at', 'ok_at', 'ok_n')
local requests = tonumber(h[1]) or tonumber(ARGV[3]) or 0
local per = tonumber(h[2]) or tonumber(ARGV[4]) or 1
local burst = tonumber(h[3]) or tonumber(ARGV[5]) or requests
local paused = tonumber(h[6]) or 0
local answers = math.floor(tonumber(ARGV[6]) or 0)

-- count the answers in two slots
if answers > 0 then
  local ok_at = tonumber(h[9]) or 0
  if ok_at <= 0 or now - ok_at >= 2 * OK_SLOT_MS then
    redis.call('HSET', bucket, 'ok_prev_at', 0, 'ok_prev_n', 0, 'ok_at', now, 'ok_n', answers)
  elseif now - ok_at >= OK_SLOT_MS then
    redis.call('HSET', bucket, 'ok_prev_at', ok_at, 'ok_prev_n', tonumber(h[10]) or 0,
      'ok_at', now, 'ok_n', answers)
  else
    redis.call('HINCRBY', bucket, 'ok_n', answers)
  end
  redis.call('HSET', bucket, 'ok_last', now)
end

local ceiling = nil
if requests > 0 and per > 0 then ceiling = requests / per end
if burst < 1 then burst = 1 end
local plateau, at = tonumber(h[7]), tonumber(h[8]) or 0
local r = ceiling
if plateau and at > 0 then
  local k = (plateau * (1 - BETA) / C) ^ (1 / 3)
  local x = math.max(0, now - at) / 1000
  r = plateau + C * (x - k) ^ 3
  if r < FLOOR_PER_S then r = FLOOR_PER_S end
  if ceiling and r >= ceiling then
    r = ceiling
    if x > k then redis.call('HSET', bucket, 'learned_at', 0) end -- back at the ceiling
  end
end
if not r then -- no rate, nothing learned: free unless paused
  if paused > now then
    return {0, math.ceil(paused - now), 0, 0}
  end
  return {want, 0, 0, 1}
end
if plateau and at > 0 then
  -- a learned rate sends in smaller bursts (half a second of the rate):
  -- the provider's own burst may be far below the recipe's
  burst = math.max(1, math.min(burst, math.floor(r / 2)))
end
requests, per = r, 1
local rate = requests / (per * 1000)            -- tokens per ms
local tokens = tonumber(h[4])
local ts = tonumber(h[5]) or now
if tokens == nil then tokens = burst end
if paused > now then
  tokens, ts = 0, paused -- no token piles up during a pause: refill from its end
else
  if ts > now then ts = now end
  tokens = math.min(burst, tokens + (now - ts) * rate)
  ts = now
end
redis.call('ZADD', waiters, now, ARGV[2])
redis.call('ZREMRANGEBYSCORE', waiters, '-inf', now - 2000)
-- (at most a third of the burst: the rest is the slack before the bucket
-- overflows while a late worker comes back for its batch)
local reserve = math.min(math.max(1, math.ceil(rate * 50)), math.max(1, math.floor(burst / 3)))
if burst < 2 then reserve = 0 end
local granted, wait = 0, 0
if paused > now then
  wait = math.ceil(paused - now)
else
  local avail = math.floor(tokens - reserve)
  local n = redis.call('ZCARD', waiters)
  local share = math.max(1, math.ceil((burst - reserve) / math.max(1, n)))
  local batch = math.max(1, math.min(want, share,
    math.max(math.ceil(rate * 10), math.floor((burst - reserve) / 4))))
  if avail >= batch then
    granted = math.min(avail, want, share)
    tokens = tokens - granted
    redis.call('HINCRBY', bucket, 'granted', granted)
  end
  if granted < want then
    local need = (reserve + batch) - tokens
    if need > 0 then
      wait = math.ceil(need / rate)
    else
      wait = math.max(1, math.ceil(batch / rate)) -- capped by the fair share
    end
    redis.call('HINCRBY', bucket, 'waits', 1)
  end
end
redis.call('HSET', bucket, 'tokens', tokens, 'ts', ts, 'rate_per_s', requests / per,
  'burst_now', burst)
return {granted, wait, math.floor(tokens * 1000), 0}
