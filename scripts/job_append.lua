-- SPDX-License-Identifier: MIT
-- job_append: stores a batch of chunks of a job that is still enqueuing.
-- Chunks are numbered from 0 and must arrive in order (first index ==
-- chunks_total), so a retried or duplicated append is refused rather than
-- counted twice.  No chunk reference is pushed here: workers cannot see a
-- chunk before job_seal, so an aborted enqueue leaves nothing for them.
-- Also refreshes the enqueuer heartbeat (an append with no chunks is a
-- plain heartbeat).
--
-- KEYS[1] farm:{Q}:job:ID  KEYS[2] farm:{Q}:job:ID:chunks  KEYS[3] farm:{Q}:enqueuing
-- ARGV[1] id  ARGV[2] heartbeat ttl ms (1000..3600000)  ARGV[3] index of the first chunk
-- ARGV[4..] pairs: entity count, NDJSON entities (one JSON object a line)
-- Returns chunks_total after the append.
if #KEYS ~= 3 or #ARGV < 3 or #ARGV % 2 ~= 1 then
  return redis.error_reply('ERR job_append: KEYS and ARGV do not match the layout in its header')
end
local job, chunks, enq = KEYS[1], KEYS[2], KEYS[3]
local id = ARGV[1]
local ttl = tonumber(ARGV[2])
if not ttl or ttl % 1 ~= 0 or ttl < 1000 or ttl > 3600000 then
  return redis.error_reply('ERR heartbeat ttl must be an integer from 1000 to 3600000 ms')
end
local status = redis.call('HGET', job, 'status')
if not status then
  return redis.error_reply('ERR job ' .. id .. ' does not exist')
end
if status ~= 'enqueuing' then
  return redis.error_reply('ERR job ' .. id .. ' is ' .. status .. ', not enqueuing')
end
local n = tonumber(redis.call('HGET', job, 'chunks_total'))
if tonumber(ARGV[3]) ~= n then
  return redis.error_reply('ERR job ' .. id .. ' expects chunk ' .. n .. ', got ' .. ARGV[3])
end
local added = 0
for i = 4, #ARGV - 1, 2 do
  local count = tonumber(ARGV[i])
  local data = ARGV[i + 1]
  local _, nl = string.gsub(data, '\n', '')
  if not count or count < 1 or nl + 1 ~= count or string.find(data, '\n\n', 1, true) or
     string.sub(data, 1, 1) == '\n' or string.sub(data, -1) == '\n' then
    return redis.error_reply('ERR chunk ' .. n .. ' must hold ' .. tostring(ARGV[i]) ..
      ' entities, one JSON object a line, no empty line')
  end
  redis.call('HSET', chunks, n, ARGV[i + 1])
  n = n + 1
  added = added + count
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('HINCRBY', job, 'total', added)
redis.call('HSET', job, 'chunks_total', n, 'updated_at', now)
redis.call('ZADD', enq, now + ttl, id)
return n
