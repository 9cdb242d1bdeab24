-- SPDX-License-Identifier: MIT
-- notify_claim: takes the delivery of one job's completion webhook, so that
-- one sender at a time works on it (docs/webhooks.md).  farm:{Q}:notify
-- holds every job whose webhook is not settled, scored by when a sender
-- should next look at it: while the job runs, the next check; once it has
-- ended, the next attempt, or while a sender holds it, the end of that
-- sender's lease.  A sender that dies holding it simply lets the lease run
-- out, and the next sender to look takes it over.
--
-- Due (score <= now) and the job ended with notify_status pending: the
-- caller gets the delivery for lease_ms (score now + lease_ms, notify_owner
-- = worker, notify_attempts + 1).  The first claim sets notify_give_up_at =
-- now + give_up_ms; a claim at or past it ends the delivery instead
-- (notify_status failed, the last error kept in notify_error).
--
-- KEYS[1] farm:{Q}:notify   KEYS[2] farm:{Q}:job:ID
-- ARGV[1] job id  ARGV[2] worker id  ARGV[3] lease ms (1000..3600000)
-- ARGV[4] recheck ms (100..3600000)  ARGV[5] give up ms (1000..604800000)
-- Returns {"claimed", attempt, give up in ms, HGETALL of the job...}, or
-- {"busy"} (not due: another sender holds it or its next attempt is later),
-- {"waiting"} (the job has not ended; looked at again in recheck ms),
-- {"gone"} (no entry, or no job: the entry is dropped), {"settled"}
-- (delivered or failed already, or no webhook: the entry is dropped) or
-- {"failed"} (given up now).
--
-- redis-cli --eval scripts/notify_claim.lua 'farm:{default}:notify' \
--   'farm:{default}:job:J1' , J1 w1 30000 1000 3600000
if #KEYS ~= 2 or #ARGV ~= 5 then
  return redis.error_reply('ERR notify_claim: KEYS and ARGV do not match the layout in its header')
end
local notify, job = KEYS[1], KEYS[2]
local id, worker = ARGV[1], ARGV[2]
local function int_in(s, lo, hi)
  local v = tonumber(s)
  if not v or v % 1 ~= 0 or v < lo or v > hi then return nil end
  return v
end
local lease, recheck = int_in(ARGV[3], 1000, 3600000), int_in(ARGV[4], 100, 3600000)
local give_up = int_in(ARGV[5], 1000, 604800000)
if not lease or not recheck or not give_up or #worker < 1 or #worker > 200 then
  return redis.error_reply('ERR notify_claim: lease, recheck, give up or worker out of range')
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local score = redis.call('ZSCORE', notify, id)
if not score then return {'gone'} end
if tonumber(score) > now then return {'busy'} end
if redis.call('EXISTS', job) == 0 then
  redis.call('ZREM', notify, id)
  return {'gone'}
end
local f = redis.call('HMGET', job, 'status', 'notify_status', 'notify_url', 'notify_give_up_at',
  'notify_attempts', 'notify_error')
local status, nstatus, url = f[1], f[2], f[3]
if nstatus ~= 'pending' or not url then
  redis.call('ZREM', notify, id)
  return {'settled'}
end
if status ~= 'completed' and status ~= 'cancelled' and status ~= 'failed' then
  redis.call('ZADD', notify, now + recheck, id)
  return {'waiting'}
end
local give_up_at = tonumber(f[4])
if not give_up_at then
  give_up_at = now + give_up
  redis.call('HSET', job, 'notify_give_up_at', give_up_at)
end
local attempts = tonumber(f[5]) or 0
if now >= give_up_at then
  local last = f[6]
  if not last or last == '' then last = 'no attempt answered' end
  redis.call('HSET', job, 'notify_status', 'failed', 'notify_at', now, 'notify_error',
    string.sub(last, 1, 400) .. ' (gave up after ' .. attempts .. ' attempt(s))')
  redis.call('HDEL', job, 'notify_owner')
  redis.call('ZREM', notify, id)
  return {'failed'}
end
attempts = attempts + 1
redis.call('HSET', job, 'notify_attempts', attempts, 'notify_owner', worker)
redis.call('ZADD', notify, now + lease, id)
local out = {'claimed', attempts, give_up_at - now}
for _, v in ipairs(redis.call('HGETALL', job)) do out[#out + 1] = v end
return out
