-- SPDX-License-Identifier: MIT
-- auth_store: the worker that holds a provider's token lock (auth_lock.lua)
-- reports its fetch.  A new token is stored with its expiry and its renewal
-- time (a share of its life, on Redis's clock), and the failure count is
-- cleared.  A failed fetch stores why (the caller's text, which never holds
-- the secret) and a backoff that doubles with each failure in a row, from
-- ARGV[5] up to ARGV[6]: no worker of the farm fetches again before it ends.
-- Either way the lock is released when the caller still holds it (a token
-- fetched by a worker whose lock has run out is stored all the same: it is
-- valid).
--
-- KEYS[1] farm:auth:{P}
-- ARGV[1] the caller's worker id
-- ARGV[2] the token, "" when the fetch failed
-- ARGV[3] the token's life, ms (its expires_in less the fetch's own time; > 0 with a token)
-- ARGV[4] when to renew, percent of the life (1 to 99)
-- ARGV[5] the first backoff after a failure, ms (> 0)
-- ARGV[6] the longest backoff, ms (>= ARGV[5])
-- ARGV[7] why the fetch failed ("" with a token)
-- A call that does not fit this layout changes nothing and returns an error.
-- Returns {1, ms to renewal, ms to expiry} for a token stored, or {0, ms of
-- backoff, failures in a row} for a failure.
local KEEP_MS = 60000 -- the hash outlives its deadlines by this much
local worker, token, life = ARGV[1], ARGV[2], tonumber(ARGV[3])
local pct, base, cap, why = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6]), ARGV[7]
if #KEYS ~= 1 or #ARGV ~= 7 or worker == '' or not life or not pct or pct < 1 or pct > 99
    or not base or base <= 0 or not cap or cap < base or (token ~= '' and life <= 0) then
  return redis.error_reply('ERR auth_store: KEYS and ARGV do not match the layout in its header (worker, token, life ms, renew %, backoff ms, max backoff ms, error)')
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local h = redis.call('HMGET', KEYS[1], 'holder', 'expires_at', 'failures')
if h[1] == worker then
  redis.call('HDEL', KEYS[1], 'holder', 'holder_until')
end
if token ~= '' then
  local renew = math.floor(life * pct / 100)
  redis.call('HSET', KEYS[1], 'token', token, 'renew_at', now + renew, 'expires_at', now + life,
    'fetched_at', now, 'failures', 0, 'retry_at', 0, 'error', '')
  redis.call('HINCRBY', KEYS[1], 'fetches', 1)
  redis.call('PEXPIREAT', KEYS[1], now + life + KEEP_MS)
  return {1, renew, math.floor(life)}
end
local failures = (tonumber(h[3]) or 0) + 1
local backoff = base * 2 ^ math.min(failures - 1, 30)
if backoff > cap then backoff = cap end
backoff = math.floor(backoff)
redis.call('HSET', KEYS[1], 'failures', failures, 'retry_at', now + backoff,
  'error', string.sub(why, 1, 400))
redis.call('PEXPIREAT', KEYS[1], math.max(tonumber(h[2]) or 0, now + backoff) + KEEP_MS)
return {0, backoff, failures}
