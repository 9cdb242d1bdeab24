-- SPDX-License-Identifier: MIT
-- job_seal: ends the enqueue of a job.  Checks the totals the enqueuer
-- counted against what Redis stored, then makes every chunk visible at once:
-- the references JOBID:0 .. JOBID:(n-1) go onto the pending list, normal
-- priority at the left (workers take from the right, so jobs run FIFO and a
-- job's chunks in order), high priority at the right (taken before every
-- waiting normal chunk, still in chunk order).  Status becomes "queued".
-- A job is never completed before it is sealed.
--
-- KEYS[1] farm:{Q}:job:ID  KEYS[2] farm:{Q}:pending  KEYS[3] farm:{Q}:enqueuing
-- ARGV[1] id  ARGV[2] expected total  ARGV[3] expected chunks_total
-- ARGV[4] events channel (farm:{Q}:events)  ARGV[5] skipped entity count
-- Returns the new status.
if #KEYS ~= 3 or #ARGV ~= 5 then
  return redis.error_reply('ERR job_seal: KEYS and ARGV do not match the layout in its header')
end
local job, pending, enq = KEYS[1], KEYS[2], KEYS[3]
local id = ARGV[1]
local st = redis.call('HMGET', job, 'status', 'total', 'chunks_total', 'priority')
if not st[1] then
  return redis.error_reply('ERR job ' .. id .. ' does not exist')
end
if st[1] ~= 'enqueuing' then
  return redis.error_reply('ERR job ' .. id .. ' is ' .. st[1] .. ', not enqueuing')
end
local total, n = tonumber(st[2]), tonumber(st[3])
if total ~= tonumber(ARGV[2]) or n ~= tonumber(ARGV[3]) then
  return redis.error_reply('ERR job ' .. id .. ' holds ' .. total .. ' entities in ' .. n ..
    ' chunks, the enqueuer sent ' .. ARGV[2] .. ' in ' .. ARGV[3])
end
if n < 1 then
  return redis.error_reply('ERR job ' .. id .. ' has no entities')
end
local batch = {}
local function flush(cmd)
  if #batch > 0 then
    redis.call(cmd, pending, unpack(batch))
    batch = {}
  end
end
if st[4] == 'high' then
  for c = n - 1, 0, -1 do
    batch[#batch + 1] = id .. ':' .. c
    if #batch == 1000 then flush('RPUSH') end
  end
  flush('RPUSH')
else
  for c = 0, n - 1 do
    batch[#batch + 1] = id .. ':' .. c
    if #batch == 1000 then flush('LPUSH') end
  end
  flush('LPUSH')
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('HSET', job, 'status', 'queued', 'sealed', 1, 'updated_at', now,
  'skipped', tonumber(ARGV[5]) or 0)
redis.call('ZREM', enq, id)
redis.call('PUBLISH', ARGV[4], cjson.encode({job = id, status = 'queued', total = total}))
return 'queued'
