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
-- Results: an "updated" entity with field pairs (m > 0 below) merges them
-- into its result hash under the policy: overwrite sets every field; keep
-- sets missing fields only, and a stored value that differs makes the
-- outcome a conflict.  A result key that holds another type is an error for
-- that entity alone.  Dry run writes no result hash but predicts the real
-- run's counts on the same store: keep reads the result hash and job:dryrun,
-- where it records the fields the real run would have set (field
-- "RESULTKEY<TAB>NAME"), so that two entities of one dry-run job writing one
-- result hash conflict as they would for real; overwrite checks that the
-- key holds a hash (a wrong type is an error for real too).
-- job:results field N keeps one line "i<TAB>fields JSON" per
-- entity of chunk N with a non-empty fields JSON (dry run too), for export:
-- one write per call, not one per entity.  The worker sends each entity's
-- fields twice, as pairs for the hash and as JSON for that line: decoding
-- JSON here would cost Redis's own CPU for every entity of the farm.
--
-- KEYS[1] job  [2] job:outcomes  [3] job:results  [4] job:errors  [5] leases
--     [6] owners  [7] processing  [8] stats  [9] job:dryrun  [10..] one
--     result hash per entity with m > 0, in the order of the entities
-- ARGV[1] ref  [2] job id  [3] chunk number  [4] error log cap  [5] policy
--     (keep|overwrite)  [6] events channel  [7] entity count in this call
--     then per entity, 7 + 2m strings:
--       index (decimal, 0-based; written as is in the job:results line)
--       outcome (u c n e)
--       m, the number of field pairs (0 = no result hash for this entity;
--         m > 0 = its result hash is the next unused key from KEYS[10] on)
--       m pairs: field name, value (strings, stored as they are)
--       fields JSON (the extracted values with their JSON types: numbers,
--         arrays and objects as they were; "" = none; for job:results)
--       error message ("" = none)
--       entity id (for the error log)
--       answered from the cache (0|1)
--   A call whose KEYS and ARGV do not add up to this layout changes nothing
--   and returns an error.
-- Returns {job completed (0|1), chunk done (0|1), status, updated, conflicts,
--          not_found, errors, processed, total, newly recorded}
local A, K = ARGV, KEYS
local tonumber, type, unpack, rpcall = tonumber, type, unpack, redis.pcall
local job, outcomes, results, errors, leases, owners, processing, stats, dryk =
  K[1], K[2], K[3], K[4], K[5], K[6], K[7], K[8], K[9]
local ref, id, n, policy = A[1], A[2], A[3], A[5]

-- the layout first, so that a malformed call writes nothing: each entity's
-- pair count m, then the totals must match #ARGV and #KEYS
local count = tonumber(A[7])
local ms, b, nkeys = {}, 8, 9
if not count or count < 0 or count % 1 ~= 0 then b = -1 end
for e = 1, b > 0 and count or 0 do
  local m = tonumber(A[b + 2])
  if not m or m < 0 or m % 1 ~= 0 then
    b = -1
    break
  end
  ms[e] = m
  if m > 0 then nkeys = nkeys + 1 end
  b = b + 7 + 2 * m
end
if b ~= #A + 1 or nkeys ~= #K then
  return redis.error_reply('ERR chunk_ack: KEYS and ARGV do not match the layout in its header')
end

local oc = redis.call('HGET', outcomes, n)
local st = redis.call('HMGET', job, 'status', 'dry_run', 'sealed', 'chunks_total',
  'updated', 'conflicts', 'not_found', 'errors', 'processed', 'total')
if not oc or not st[1] then
  return {0, 0, st[1] or 'missing', 0, 0, 0, 0, 0, 0, 0}
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local dry, keep = st[2] == '1', policy == 'keep'
local had_pending = string.find(oc, '.', 1, true) ~= nil
local delta = {u = 0, c = 0, n = 0, e = 0}
local newly, cached, pushed = 0, 0, false
-- lines[1] is the chunk's earlier results text, read only if there is news
local lines, nl = {''}, 1
-- the outcome string, sparse: only the characters other than '.'
local size = #oc
local chars = {}
if string.find(oc, '[^.]') then
  for i, ch in string.gmatch(oc, '()([^.])') do chars[i] = ch end
end
local ki = 9
b = 8
for e = 1, count do
  local idx, o, m = tonumber(A[b]), A[b + 1], ms[e]
  local p = b + 3
  local f = p + 2 * m
  local key
  if m > 0 then
    ki = ki + 1
    key = K[ki]
  end
  if idx and idx >= 0 and idx < size and idx % 1 == 0 and not chars[idx + 1] and delta[o] then
    local fields, msg = A[f], A[f + 1]
    if key and o == 'u' then
      local bad
      if keep then
        local names = {}
        for i = 1, m do names[i] = A[p + 2 * i - 2] end
        local cur = rpcall('HMGET', key, unpack(names))
        if cur.err then
          bad = cur.err
        else
          -- dry run: what earlier entities of this job would have set
          local shadow
          if dry then
            local sf = {}
            for i = 1, m do sf[i] = key .. '\t' .. names[i] end
            shadow = redis.call('HMGET', dryk, unpack(sf))
          end
          local set, ns, conflict = {dry and dryk or key}, 1, false
          for i = 1, m do
            local v, have = A[p + 2 * i - 1], cur[i]
            if have == false and shadow then have = shadow[i] end
            if have == false then
              set[ns + 1] = dry and (key .. '\t' .. names[i]) or names[i]
              set[ns + 2] = v
              ns = ns + 2
            elseif have ~= v then
              conflict = true
            end
          end
          if conflict then o = 'c' end
          if ns > 1 then
            local r = rpcall('HSET', unpack(set))
            if type(r) == 'table' then bad = r.err end
          end
        end
      elseif dry then
        local r = rpcall('HEXISTS', key, A[p])
        if type(r) == 'table' then bad = r.err end
      else
        local r = rpcall('HSET', key, unpack(A, p, f - 1))
        if type(r) == 'table' then bad = r.err end
      end
      if bad then
        o = 'e'
        msg = 'result key ' .. key .. ': ' .. bad
      end
    end
    if fields ~= '' then
      lines[nl + 1] = A[b]
      lines[nl + 2] = '\t'
      lines[nl + 3] = fields
      lines[nl + 4] = '\n'
      nl = nl + 4
    end
    chars[idx + 1] = o
    delta[o] = delta[o] + 1
    newly = newly + 1
    if A[f + 3] == '1' then cached = cached + 1 end
    if msg ~= '' then
      redis.call('LPUSH', errors, cjson.encode({id = A[f + 2], chunk = tonumber(n), index = idx,
        error = msg, at = now}))
      pushed = true
    end
  end
  b = f + 4
end
if nl > 1 then
  lines[1] = redis.call('HGET', results, n) or ''
  redis.call('HSET', results, n, table.concat(lines))
end
local status = st[1]
-- the counters as they stand after this call: read above, or as HINCRBY left them
local c = {tonumber(st[5]), tonumber(st[6]), tonumber(st[7]), tonumber(st[8]), tonumber(st[9]),
  tonumber(st[10])}
if newly > 0 then
  local s = {}
  for i = 1, size do s[i] = chars[i] or '.' end
  oc = table.concat(s)
  redis.call('HSET', outcomes, n, oc)
  local names = {u = 'updated', c = 'conflicts', n = 'not_found', e = 'errors'}
  local slot = {u = 1, c = 2, n = 3, e = 4}
  for k, name in pairs(names) do
    if delta[k] > 0 then
      c[slot[k]] = redis.call('HINCRBY', job, name, delta[k])
      redis.call('HINCRBY', stats, name, delta[k])
    end
  end
  c[5] = redis.call('HINCRBY', job, 'processed', newly)
  if cached > 0 then
    redis.call('HINCRBY', job, 'cached', cached)
    redis.call('HINCRBY', stats, 'cached', cached)
  end
  redis.call('HSET', job, 'updated_at', now)
end
-- only this script and chunk_claim push to the log, and each trims after its push
if pushed then redis.call('LTRIM', errors, 0, tonumber(A[4]) - 1) end
local chunk_done, completed = 0, 0
if not string.find(oc, '.', 1, true) then
  redis.call('LREM', processing, 1, ref)
  redis.call('ZREM', leases, ref)
  redis.call('HDEL', owners, ref)
  if had_pending then
    chunk_done = 1
    local s = redis.call('HINCRBY', job, 'chunks_done', 1)
    if st[3] == '1' and s >= tonumber(st[4]) and
       (status == 'running' or status == 'queued' or status == 'paused') then
      redis.call('HSET', job, 'status', 'completed', 'completed_at', now)
      status = 'completed'
      completed = 1
    end
  end
end
if newly > 0 then
  redis.call('PUBLISH', A[6], cjson.encode({job = id, status = status,
    updated = c[1], conflicts = c[2], not_found = c[3],
    errors = c[4], processed = c[5], total = c[6]}))
end
return {completed, chunk_done, status, c[1], c[2], c[3], c[4], c[5], c[6], newly}
