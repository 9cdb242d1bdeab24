-- SPDX-License-Identifier: MIT
-- ratelimit_take: the farm-wide token bucket of one provider.  Refilled from
-- Redis's own clock (TIME), so hosts with skewed clocks agree.  A worker
-- asks for as many tokens as it has requests ready; it gets at most what
-- the bucket holds, at most its fair share of the burst when several
-- workers are waiting, and, when short, how long to wait for the next
-- token.  A small reserve (about 5 ms of tokens, at least 1) is never handed
-- out, so jitter between the grant and the provider's own clock cannot push
-- the farm over the provider's limit; the long-run rate is unchanged.
-- Tokens go out in batches of 10 ms of the rate or a quarter of the burst,
-- whichever is more (at most the asker's fair share and what it wants): a
-- worker short of tokens is told to wait for a batch, not for the next
-- single token, so at 1000/s a worker makes about one call per 10 requests
-- instead of polling every millisecond.  The batches of all waiting workers
-- fit in the burst together, so waiting for them loses no tokens.
-- The bucket's settings are read from the hash (set by workers from their
-- recipes, or by `enqueuer rate-limit`), falling back to ARGV.
-- A pause (ratelimit_penalty.lua, a 429) holds every provider, with a rate
-- or without.  A provider without a rate is free (the 4th reply element is
-- 1: the worker may send without asking for a while) unless a 429 left a
-- learned rate (learned_requests per second, burst 1, growing by its own
-- size every 10 s since learned_at) that has not lapsed (ARGV[6] ms).
--
-- KEYS[1] farm:ratelimit:{P}  KEYS[2] farm:ratelimit:{P}:waiters
-- ARGV[1] tokens wanted  ARGV[2] worker id
-- ARGV[3] requests  ARGV[4] per seconds  ARGV[5] burst   (defaults)
-- ARGV[6] how long a learned rate lasts, ms (optional, default 60000)
-- Returns {granted, wait ms before asking again (0: ask when needed), tokens
-- left (x1000), 1 when no rate is in force else 0}
local bucket, waiters = KEYS[1], KEYS[2]
local want = tonumber(ARGV[1]) or 1
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local h = redis.call('HMGET', bucket, 'requests', 'per_seconds', 'burst', 'tokens', 'ts',
  'paused_until', 'learned_requests', 'learned_at')
local requests = tonumber(h[1]) or tonumber(ARGV[3]) or 0
local per = tonumber(h[2]) or tonumber(ARGV[4]) or 1
local burst = tonumber(h[3]) or tonumber(ARGV[5]) or requests
local paused = tonumber(h[6]) or 0
if requests <= 0 or per <= 0 then
  if paused > now then
    return {0, math.ceil(paused - now), 0, 0}
  end
  local learned, at = tonumber(h[7]), tonumber(h[8]) or 0
  if not learned or at <= 0 or now - at >= (tonumber(ARGV[6]) or 60000) then
    return {want, 0, 0, 1}
  end
  requests, per, burst = learned * (1 + (now - at) / 10000), 1, 1
end
if burst < 1 then burst = 1 end
local rate = requests / (per * 1000)            -- tokens per ms
local tokens = tonumber(h[4])
local ts = tonumber(h[5]) or now
if tokens == nil then tokens = burst end
if ts > now then ts = now end
tokens = math.min(burst, tokens + (now - ts) * rate)
redis.call('ZADD', waiters, now, ARGV[2])
redis.call('ZREMRANGEBYSCORE', waiters, '-inf', now - 2000)
local reserve = math.min(math.max(1, math.ceil(rate * 5)), math.floor(burst / 2))
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
redis.call('HSET', bucket, 'tokens', tokens, 'ts', now, 'rate_per_s', requests / per,
  'burst_now', burst)
return {granted, wait, math.floor(tokens * 1000), 0}
