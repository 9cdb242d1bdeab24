-- SPDX-License-Identifier: MIT
-- job_discard: removes every trace of a job that never got sealed (an
-- enqueue aborted by bad input, a signal, or an enqueuer that died).
-- Nothing of it was ever visible to workers, so nothing else refers to it.
-- Refuses a sealed job: those are cancelled, never discarded.
--
-- KEYS[1] farm:{Q}:job:ID  KEYS[2] farm:{Q}:job:ID:chunks  KEYS[3] farm:{Q}:jobs
-- KEYS[4] farm:{Q}:enqueuing
-- ARGV[1] id
-- Returns 1 when something was removed, 0 when the job did not exist.
local job, chunks, jobs, enq = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local id = ARGV[1]
local sealed = redis.call('HGET', job, 'sealed')
if not sealed then
  redis.call('ZREM', jobs, id)
  redis.call('ZREM', enq, id)
  return 0
end
if sealed == '1' then
  return redis.error_reply('ERR job ' .. id .. ' is sealed; cancel it instead')
end
redis.call('UNLINK', job, chunks)
redis.call('ZREM', jobs, id)
redis.call('ZREM', enq, id)
return 1
