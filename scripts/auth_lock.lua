-- SPDX-License-Identifier: MIT
-- auth_lock: a worker needs a provider's OAuth2 access token (it has none,
-- its token is due for renewal, or the provider refused it with a 401).
-- The token is shared by the whole farm and renewed by one worker at a time:
-- this script hands out the token when it is fresh, or makes the caller the
-- one renewer (a lock with a deadline, so a worker that dies while fetching
-- holds it no longer than that), or tells it to wait: for the renewer (the
-- caller polls again, at most until the lock's deadline) or for the end of
-- the backoff after a failed fetch (auth_store.lua set it).  While it waits,
-- the caller may go on with a token that has not expired yet.  A token the
-- caller saw refused (ARGV[3]) is never handed back as usable: the first
-- caller to report it renews it, the others get the new one; but a token
-- refused within REFUSED_MIN_MS of its fetch is renewed only once it is
-- that old (a backoff), so a provider that answers 401 whatever the token
-- costs at most one fetch per REFUSED_MIN_MS, not one per request.  Times are on
-- Redis's clock (TIME).  The hash never holds the client secret.
--
-- KEYS[1] farm:auth:{P}
-- ARGV[1] the caller's worker id (the lock's holder)
-- ARGV[2] how long the caller may hold the lock, ms (> 0): its fetch's timeout and a margin
-- ARGV[3] the token the provider refused (401) to the caller, "" for none
-- A call that does not fit this layout changes nothing and returns an error.
-- Returns {verdict, token, ms to renewal, ms to expiry, ms to wait, error}:
--   verdict 1 fresh: the token (renewal and expiry in the future)
--   verdict 0 fetch: the caller holds the lock for ms to wait and fetches
--   verdict 2 wait: another worker renews; poll again within ms to wait
--   verdict 3 backoff: the last fetch failed (error says why, never a
--     secret); no fetch before ms to wait
--   token is "" when there is no usable one; with verdicts 0, 2 and 3 it is
--   the old token, still valid (its ms to expiry), to use meanwhile.
local KEEP_MS = 60000 -- the hash outlives its deadlines by this much
local REFUSED_MIN_MS = 1000 -- a refused token is renewed no sooner after its fetch
local worker, lock_ms, stale = ARGV[1], tonumber(ARGV[2]), ARGV[3]
if #KEYS ~= 1 or #ARGV ~= 3 or worker == '' or not lock_ms or lock_ms <= 0 or lock_ms > 3600000 then
  return redis.error_reply('ERR auth_lock: KEYS and ARGV do not match the layout in its header (worker, lock ms, refused token)')
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local h = redis.call('HMGET', KEYS[1], 'token', 'renew_at', 'expires_at', 'holder', 'holder_until',
  'retry_at', 'error', 'fetched_at')
local token = h[1] or ''
local renew_at, expires_at = tonumber(h[2]) or 0, tonumber(h[3]) or 0
local tok, to_renew, to_expiry = '', 0, 0
if token ~= '' and token ~= stale and now < expires_at then
  tok, to_renew, to_expiry = token, math.max(0, renew_at - now), expires_at - now
end
if tok ~= '' and now < renew_at then
  return {1, tok, to_renew, to_expiry, 0, ''}
end
local fetched_at = tonumber(h[8]) or 0
if token ~= '' and token == stale and now < fetched_at + REFUSED_MIN_MS then
  return {3, '', 0, 0, fetched_at + REFUSED_MIN_MS - now,
    'the provider refused a token fetched less than ' .. REFUSED_MIN_MS .. ' ms ago'}
end
local holder, holder_until = h[4] or '', tonumber(h[5]) or 0
if holder ~= '' and holder ~= worker and now < holder_until then
  return {2, tok, to_renew, to_expiry, holder_until - now, ''}
end
local retry_at = tonumber(h[6]) or 0
if now < retry_at then
  return {3, tok, to_renew, to_expiry, retry_at - now, h[7] or ''}
end
redis.call('HSET', KEYS[1], 'holder', worker, 'holder_until', now + lock_ms)
redis.call('PEXPIREAT', KEYS[1], math.max(expires_at, now + lock_ms) + KEEP_MS)
return {0, tok, to_renew, to_expiry, lock_ms, ''}
