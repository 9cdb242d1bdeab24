-- SPDX-License-Identifier: MIT
-- lease_extend: a live worker pushes the deadlines of the chunks it still
-- holds.  A lease it no longer owns (reaped, or finished by someone else)
-- is not touched and is reported back, so the worker stops spending
-- requests on that chunk.
--
-- KEYS[1] leases  [2] owners
-- ARGV[1] lease ms  [2] worker id  [3..] chunk refs
-- Returns {refs no longer owned...}
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lost = {}
for i = 3, #ARGV do
  local ref = ARGV[i]
  if redis.call('HGET', KEYS[2], ref) == ARGV[2] and redis.call('ZSCORE', KEYS[1], ref) then
    redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[1]), ref)
  else
    lost[#lost + 1] = ref
  end
end
return lost
