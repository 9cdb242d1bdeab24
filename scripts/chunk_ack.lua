-- SPDX-License-Identifier: MIT
-- chunk_ack: records the outcomes of some entities of one chunk, at most
-- once each: an entity whose outcome character is no longer '.' is skipped,
-- so a redelivered chunk, a retried ack or a late ack from a worker whose
-- lease expired can never double count.  Counters, the capped error log,
-- result hashes and the chunk's progress change together.  When the last
-- entity of the chunk gets its outcome the chunk leaves processing and
-- chunks_done grows by one; when the sealed job's last chunk is done the job
-- is completed.
--
-- Results: for an "updated" entity with fields, the result hash KEYS[k] is
-- merged under the policy: overwrite sets every field; keep sets missing
-- fields only, and a stored value that differs makes the outcome a conflict.
-- A result key that holds another type is an error for that entity alone.
-- Dry run writes no result hash (the would-be fields still go to
-- job:results).  job:results field N keeps one line "i<TAB>fields JSON" per
-- entity of chunk N with fields, for export: one write per call, not one
-- per entity.
--
-- KEYS[1] job  [2] job:outcomes  [3] job:results  [4] job:errors  [5] leases
--     [6] owners  [7] processing  [8] stats  [9..] result hashes
-- ARGV[1] ref  [2] job id  [3] chunk number  [4] error log cap  [5] policy
--     (keep|overwrite)  [6] events channel  [7] entity count in this call
--     then 7 per entity: index, outcome (u c n e), result key index in KEYS
--     (0 = none), fields JSON (flat object of strings, "" = none), error
--     message ("" = none), entity id, answered from the cache (0|1)
-- Returns {job completed (0|1), chunk done (0|1), status, updated, conflicts,
--          not_found, errors, processed, total, newly recorded}
local job, outcomes, results, errors, leases, owners, processing, stats =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8]
local ref, id, n = ARGV[1], ARGV[2], ARGV[3]
local cap, policy = tonumber(ARGV[4]), ARGV[5]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local oc = redis.call('HGET', outcomes, n)
local st = redis.call('HMGET', job, 'status', 'dry_run')
if not oc or not st[1] then
  return {0, 0, st[1] or 'missing', 0, 0, 0, 0, 0, 0, 0}
end
local dry = st[2] == '1'
local had_pending = string.find(oc, '.', 1, true) ~= nil
local delta = {u = 0, c = 0, n = 0, e = 0}
local newly, cached = 0, 0
local lines = {}
local chars = {}
for i = 1, #oc do chars[i] = string.sub(oc, i, i) end
local count = tonumber(ARGV[7])
for e = 0, count - 1 do
  local b = 8 + e * 7
  local idx = tonumber(ARGV[b])
  local o = ARGV[b + 1]
  local keyi = tonumber(ARGV[b + 2])
  local fields = ARGV[b + 3]
  local msg = ARGV[b + 4]
  if idx and idx >= 0 and idx < #chars and chars[idx + 1] == '.' and delta[o] then
    if fields ~= '' then
      if o == 'u' and keyi > 0 then
        local key = KEYS[keyi]
        local f = cjson.decode(fields)
        local set = {key}
        local conflict, bad = false, nil
        for k, v in pairs(f) do
          v = tostring(v)
          if policy == 'keep' then
            local cur = redis.pcall('HGET', key, k)
            if type(cur) == 'table' and cur.err then
              bad = cur.err
              break
            elseif cur == false then
              set[#set + 1] = k; set[#set + 1] = v
            elseif cur ~= v then
              conflict = true
            end
          else
            set[#set + 1] = k; set[#set + 1] = v
          end
        end
        if conflict then o = 'c' end
        if not bad and not dry and #set > 1 then
          local r = redis.pcall('HSET', unpack(set))
          if type(r) == 'table' and r.err then bad = r.err end
        end
        if bad then
          o = 'e'
          msg = 'result key ' .. key .. ': ' .. bad
        end
      end
      lines[#lines + 1] = idx .. '\t' .. fields
    end
    chars[idx + 1] = o
    delta[o] = delta[o] + 1
    newly = newly + 1
    if ARGV[b + 6] == '1' then cached = cached + 1 end
    if msg ~= '' then
      redis.call('LPUSH', errors, cjson.encode({id = ARGV[b + 5], chunk = tonumber(n), index = idx,
        error = msg, at = now}))
    end
  end
end
if #lines > 0 then
  local cur = redis.call('HGET', results, n) or ''
  redis.call('HSET', results, n, cur .. table.concat(lines, '\n') .. '\n')
end
local status = st[1]
if newly > 0 then
  oc = table.concat(chars)
  redis.call('HSET', outcomes, n, oc)
  local names = {u = 'updated', c = 'conflicts', n = 'not_found', e = 'errors'}
  for k, name in pairs(names) do
    if delta[k] > 0 then
      redis.call('HINCRBY', job, name, delta[k])
      redis.call('HINCRBY', stats, name, delta[k])
    end
  end
  redis.call('HINCRBY', job, 'processed', newly)
  if cached > 0 then
    redis.call('HINCRBY', job, 'cached', cached)
    redis.call('HINCRBY', stats, 'cached', cached)
  end
  redis.call('HSET', job, 'updated_at', now)
end
redis.call('LTRIM', errors, 0, cap - 1)
local chunk_done, completed = 0, 0
if not string.find(oc, '.', 1, true) then
  redis.call('LREM', processing, 1, ref)
  redis.call('ZREM', leases, ref)
  redis.call('HDEL', owners, ref)
  if had_pending then
    chunk_done = 1
    local s = redis.call('HINCRBY', job, 'chunks_done', 1)
    local j = redis.call('HMGET', job, 'sealed', 'chunks_total')
    if j[1] == '1' and s >= tonumber(j[2]) and
       (status == 'running' or status == 'queued' or status == 'paused') then
      redis.call('HSET', job, 'status', 'completed', 'completed_at', now)
      status = 'completed'
      completed = 1
    end
  end
end
local c = redis.call('HMGET', job, 'updated', 'conflicts', 'not_found', 'errors', 'processed', 'total')
if newly > 0 then
  redis.call('PUBLISH', ARGV[6], cjson.encode({job = id, status = status,
    updated = tonumber(c[1]), conflicts = tonumber(c[2]), not_found = tonumber(c[3]),
    errors = tonumber(c[4]), processed = tonumber(c[5]), total = tonumber(c[6])}))
end
return {completed, chunk_done, status, tonumber(c[1]), tonumber(c[2]), tonumber(c[3]),
  tonumber(c[4]), tonumber(c[5]), tonumber(c[6]), newly}
