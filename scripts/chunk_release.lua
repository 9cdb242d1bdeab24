-- SPDX-License-Identifier: MIT
-- chunk_release: a worker hands back a chunk it holds without finishing it
-- (draining on SIGTERM, or a job paused under it), at once rather than
-- after the visibility timeout.  With mode "requeue" the chunk goes back to
-- the taking end of pending and the delivery does not count as an attempt;
-- with "retry" it goes back too but the delivery counts (a chunk the worker
-- could not read: it reaches the dead list after max attempts); with "drop"
-- (its job was cancelled) it just leaves processing.  Does
-- nothing when the worker no longer owns the lease.  Mode "unclaimed" hands
-- back a ref the worker moved to processing but never claimed (it took it
-- while shutting down): it goes back to pending if it is still there.
--
-- KEYS[1] leases  [2] owners  [3] processing  [4] pending  [5] job:attempts
-- ARGV[1] ref  [2] worker id  [3] chunk number  [4] requeue|retry|drop|unclaimed
-- Returns 1 when released, 0 when not owned.
local leases, owners, processing, pending, attempts = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local ref = ARGV[1]
if ARGV[4] == 'unclaimed' then
  if redis.call('HEXISTS', owners, ref) == 0 and redis.call('LREM', processing, 1, ref) > 0 then
    redis.call('ZREM', leases, ref)
    redis.call('RPUSH', pending, ref)
    return 1
  end
  return 0
end
if redis.call('HGET', owners, ref) ~= ARGV[2] then
  return 0
end
redis.call('ZREM', leases, ref)
redis.call('HDEL', owners, ref)
if redis.call('LREM', processing, 1, ref) > 0 and ARGV[4] ~= 'drop' then
  redis.call('RPUSH', pending, ref)
  if ARGV[4] == 'requeue' and tonumber(redis.call('HGET', attempts, ARGV[3]) or '0') > 0 then
    redis.call('HINCRBY', attempts, ARGV[3], -1)
  end
end
return 1
