-- SPDX-License-Identifier: MIT
-- job_create: creates a job hash in status "enqueuing" before any chunk of it
-- exists, records it in the queue's job index and in the enqueuing index
-- (an enqueuer heartbeat: a job whose enqueuer stops touching it is marked
-- failed/abandoned by the reaper).  Refuses an id that already exists.
--
-- KEYS[1] farm:{Q}:job:ID      KEYS[2] farm:{Q}:jobs     KEYS[3] farm:{Q}:enqueuing
-- ARGV[1] id  ARGV[2] queue  ARGV[3] provider  ARGV[4] entity_type
-- ARGV[5] chunk_size  ARGV[6] dry_run (0|1)  ARGV[7] priority (normal|high)
-- ARGV[8] heartbeat ttl ms     ARGV[9..] extra field/value pairs
-- Returns created_at (ms, Redis clock).
--
-- redis-cli --eval scripts/job_create.lua 'farm:{default}:job:J1' 'farm:{default}:jobs' \
--   'farm:{default}:enqueuing' , J1 default items item 50 0 normal 30000
local job, jobs, enq = KEYS[1], KEYS[2], KEYS[3]
local id = ARGV[1]
if redis.call('EXISTS', job) == 1 then
  return redis.error_reply('ERR job ' .. id .. ' already exists')
end
-- EF_JOB_CHUNK_SIZE_MAX in lib/ef_job.h (test_contract checks they agree)
local CHUNK_SIZE_MAX = 10000
local chunk_size = tonumber(ARGV[5])
if not chunk_size or chunk_size ~= math.floor(chunk_size) or chunk_size < 1 or
    chunk_size > CHUNK_SIZE_MAX then
  return redis.error_reply('ERR chunk_size must be an integer from 1 to ' .. CHUNK_SIZE_MAX)
end
if ARGV[7] ~= 'normal' and ARGV[7] ~= 'high' then
  return redis.error_reply('ERR priority must be normal or high')
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[8]) or 30000
redis.call('HSET', job,
  'id', id, 'queue', ARGV[2], 'provider', ARGV[3], 'entity_type', ARGV[4],
  'status', 'enqueuing', 'sealed', 0,
  'total', 0, 'processed', 0, 'updated', 0, 'conflicts', 0, 'not_found', 0,
  'errors', 0, 'cached', 0, 'skipped', 0,
  'chunk_size', chunk_size, 'chunks_total', 0, 'chunks_done', 0, 'chunks_dead', 0,
  'dry_run', (ARGV[6] == '1') and 1 or 0, 'priority', ARGV[7],
  'created_at', now, 'started_at', 0, 'updated_at', now, 'completed_at', 0)
for i = 9, #ARGV - 1, 2 do
  redis.call('HSET', job, ARGV[i], ARGV[i + 1])
end
redis.call('ZADD', jobs, now, id)
redis.call('ZADD', enq, now + ttl, id)
return now
