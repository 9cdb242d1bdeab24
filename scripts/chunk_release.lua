-- SPDX-License-Identifier: MIT
-- chunk_release: a worker hands back a chunk it holds without finishing it
-- (draining on SIGTERM, its queue or its job paused, its job cancelled), at
-- once rather than after the visibility timeout.  Modes:
--   requeue    back to the taking end of pending; the delivery does not
--              count as an attempt (drain, queue paused)
--   retry      back to pending, and the delivery counts (a chunk the worker
--              could not read: it reaches the dead list after max attempts)
--   park       its job is paused: set aside on job:parked (job_resume puts
--              it back); if the job was resumed meanwhile it goes back to
--              pending, if it ended it is dropped; not counted as an attempt
--   drop       its job was cancelled: it just leaves processing
--   unclaimed  a ref the worker moved to processing but never claimed (it
--              took it while shutting down): back to pending if still there
-- Except for "unclaimed", does nothing when the worker no longer owns the
-- lease.
--
-- KEYS[1] leases  [2] owners  [3] processing  [4] pending  [5] job:attempts
--     [6] job:parked  [7] job
-- ARGV[1] ref  [2] worker id  [3] chunk number  [4] requeue|retry|park|drop|unclaimed
-- Returns 1 when released, 0 when not owned.
if #KEYS ~= 7 or #ARGV ~= 4 then
  return redis.error_reply('ERR chunk_release: 7 keys and 4 arguments expected')
end
local leases, owners, processing, pending, attempts, parked, job = unpack(KEYS)
local ref, mode = ARGV[1], ARGV[4]
if mode ~= 'requeue' and mode ~= 'retry' and mode ~= 'park' and mode ~= 'drop' and
   mode ~= 'unclaimed' then
  return redis.error_reply('ERR chunk_release: unknown mode ' .. mode)
end
if mode == 'unclaimed' then
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
if mode == 'park' then
  local status = redis.call('HGET', job, 'status')
  if status == 'queued' or status == 'running' then
    mode = 'requeue'
  elseif status ~= 'paused' then
    mode = 'drop'
  end
end
if redis.call('LREM', processing, 1, ref) > 0 and mode ~= 'drop' then
  if mode == 'park' then
    redis.call('LPUSH', parked, ref)
  else
    redis.call('RPUSH', pending, ref)
  end
  if mode ~= 'retry' and tonumber(redis.call('HGET', attempts, ARGV[3]) or '0') > 0 then
    redis.call('HINCRBY', attempts, ARGV[3], -1)
  end
end
return 1
