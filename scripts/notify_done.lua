-- SPDX-License-Identifier: MIT
-- notify_done: records the end of one attempt at a job's completion
-- webhook, by the sender that claimed it (notify_claim.lua).  A sender that
-- no longer holds the delivery (its lease ran out and another sender took
-- it, or it was settled) changes nothing and gets "lost".
--
-- delivered: notify_status delivered, notify_at now, the entry leaves
-- farm:{Q}:notify.  retry: notify_error = the attempt's error, and the
-- next attempt is due in retry ms (no later than notify_give_up_at, where
-- the next claim gives up).
--
-- KEYS[1] farm:{Q}:notify   KEYS[2] farm:{Q}:job:ID
-- ARGV[1] job id  ARGV[2] worker id  ARGV[3] result (delivered|retry)
-- ARGV[4] error ("" when delivered; at most 400 bytes are kept)
-- ARGV[5] retry ms (0..86400000)
-- Returns "delivered", "retry" or "lost".
--
-- redis-cli --eval scripts/notify_done.lua 'farm:{default}:notify' \
--   'farm:{default}:job:J1' , J1 w1 retry 'HTTP 503' 2000
if #KEYS ~= 2 or #ARGV ~= 5 then
  return redis.error_reply('ERR notify_done: KEYS and ARGV do not match the layout in its header')
end
local notify, job = KEYS[1], KEYS[2]
local id, worker, result = ARGV[1], ARGV[2], ARGV[3]
local retry = tonumber(ARGV[5])
if (result ~= 'delivered' and result ~= 'retry') or not retry or retry % 1 ~= 0 or retry < 0 or
    retry > 86400000 then
  return redis.error_reply('ERR notify_done: result must be delivered or retry, retry ms 0..86400000')
end
local f = redis.call('HMGET', job, 'notify_owner', 'notify_status', 'notify_give_up_at')
if f[1] ~= worker or f[2] ~= 'pending' or not redis.call('ZSCORE', notify, id) then
  return 'lost'
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('HDEL', job, 'notify_owner')
if result == 'delivered' then
  redis.call('HSET', job, 'notify_status', 'delivered', 'notify_at', now)
  redis.call('ZREM', notify, id)
  return 'delivered'
end
local due = now + retry
local give_up_at = tonumber(f[3])
if give_up_at and due > give_up_at then due = give_up_at end
redis.call('HSET', job, 'notify_error', string.sub(ARGV[4], 1, 400))
redis.call('ZADD', notify, due, id)
return 'retry'
