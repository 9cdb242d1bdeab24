-- SPDX-License-Identifier: MIT
-- worker_beat: a live worker's mark in the registry, on Redis's clock: its
-- id scored with now, and every entry older than the heartbeat TTL (a
-- worker that died without unregistering, SIGKILL or a lost host) removed.
-- Every worker runs it on its tick, so the registry is pruned while any
-- worker lives; the clocks of the hosts play no part.
--
-- KEYS[1] farm:workers
-- ARGV[1] worker id  ARGV[2] heartbeat TTL (ms)
-- Returns the number of entries pruned.
if #KEYS ~= 1 or #ARGV ~= 2 or not tonumber(ARGV[2]) or tonumber(ARGV[2]) <= 0 then
  return redis.error_reply('ERR worker_beat: 1 key and 2 arguments (id, ttl ms) expected')
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now, ARGV[1])
return redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. (now - tonumber(ARGV[2])))
