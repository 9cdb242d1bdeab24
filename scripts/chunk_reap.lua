-- SPDX-License-Identifier: MIT
-- chunk_reap: the visibility timeout.  Every worker runs it about once a
-- second (no single point of failure; it is idempotent).  A chunk whose
-- lease deadline passed (its worker died, stalled or was cut off) leaves
-- processing and goes back to the taking end of pending; its next claim
-- raises its attempt count.  A chunk in processing with no lease at all (a
-- worker died between BLMOVE and its claim) gets a lease of `grace` ms, so
-- it comes back too if nobody claims it.
--
-- KEYS[1] leases  [2] owners  [3] processing  [4] pending
-- ARGV[1] most chunks to requeue in one call  [2] orphan grace ms
--     [3] how many processing entries to check for orphans
-- Returns {requeued refs...}
local leases, owners, processing, pending = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local back = {}
local expired = redis.call('ZRANGEBYSCORE', leases, '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
for _, ref in ipairs(expired) do
  redis.call('ZREM', leases, ref)
  redis.call('HDEL', owners, ref)
  if redis.call('LREM', processing, 1, ref) > 0 then
    redis.call('RPUSH', pending, ref)
    back[#back + 1] = ref
  end
end
local scan = tonumber(ARGV[3]) or 0
if scan > 0 then
  -- new orphans are at the left (BLMOVE pushes there), old ones at the right
  local held = redis.call('LRANGE', processing, 0, scan - 1)
  if redis.call('LLEN', processing) > scan then
    for _, ref in ipairs(redis.call('LRANGE', processing, -scan, -1)) do held[#held + 1] = ref end
  end
  for _, ref in ipairs(held) do
    if not redis.call('ZSCORE', leases, ref) then
      redis.call('ZADD', leases, 'NX', now + tonumber(ARGV[2]), ref)
    end
  end
end
return back
