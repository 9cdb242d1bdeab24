#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# ef-test: parallel
# scripts/chunk_ack.lua on its own, called the way its header documents
# (through `redis-cli --eval`, as an operator would): outcomes recorded at
# most once, result hashes under overwrite and keep, a wrong-type result key
# failing its entity alone, dry run, the job:results lines and their export
# by `enqueuer results`, the capped error log, counters in the job and stats
# hashes, the chunk leaving processing, the job completing, the event, and a
# call that does not match the layout changing nothing.
source "$(dirname "$0")/lib.sh"
ef_setup
K='farm:{default}'
J="$K:job:J1"
D=$EF_TMP

# job ID CHUNK_SIZES... [dry=1] [sealed=0]: a running job hash with one
# outcome string per chunk, its chunks held in processing under a lease
job() {
  local id=$1 dry=0 sealed=1 n=0 total=0 s
  shift
  local sizes=()
  for s in "$@"; do
    case "$s" in dry=*) dry=${s#dry=} ;; sealed=*) sealed=${s#sealed=} ;; *) sizes+=("$s") ;; esac
  done
  for s in "${sizes[@]}"; do
    rcli HSET "$K:job:$id:outcomes" "$n" "$(printf '%*s' "$s" '' | tr ' ' .)" >/dev/null
    rcli RPUSH "$K:processing" "$id:$n" >/dev/null
    rcli ZADD "$K:leases" 1 "$id:$n" >/dev/null
    rcli HSET "$K:owners" "$id:$n" w1 >/dev/null
    n=$((n + 1)); total=$((total + s))
  done
  rcli HSET "$K:job:$id" id "$id" status running dry_run "$dry" sealed "$sealed" chunks_total "$n" \
    chunks_done 0 total "$total" processed 0 updated 0 conflicts 0 not_found 0 errors 0 cached 0 \
    updated_at 0 completed_at 0 >/dev/null
}
# ack JOB [RESULT KEYS...] , ARGV...: the fixed keys, then the caller's
ack() {
  local j="$K:job:$1"
  shift
  rcli --eval "$EF_ROOT/scripts/chunk_ack.lua" "$j" "$j:outcomes" "$j:results" "$j:errors" \
    "$K:leases" "$K:owners" "$K:processing" "$K:stats" "$j:dryrun" "$@"
}
counts() { rcli HMGET "$K:job:$1" updated conflicts not_found errors processed | tr '\n' ' ' | sed 's/ $//'; }
field() { rcli HGET "$K:job:$1" "$2"; }
line() { printf '%s\t%s' "$1" "$2"; }

# ---- overwrite: three of four entities, then a repeat, then the last ----
ef_flush
job J1 4
rcli HSET "$K:result:1" title Old keep me >/dev/null
timeout 10 redis-cli -s "$D/redis.sock" SUBSCRIBE "$K:events" >"$D/events" 2>&1 &
sub=$!
EF_PIDS+=("$sub")
ef_wait_for 5 '[ "$(rcli PUBSUB NUMSUB "$K:events" | tail -1)" = 1 ]'
r=$(ack J1 "$K:result:1" , J1:0 J1 0 1000 overwrite "$K:events" 3 \
  0 u 2 title Alien year 1979 '{"title":"Alien","year":"1979"}' '' 1 1 \
  1 n 0 '' '' 2 0 \
  2 e 0 '' 'HTTP 500 (gave up after 3 retries)' 3 0 | tr '\n' ' ')
eq "returns: not completed, chunk not done, status, counts, newly" \
  "0 0 running 1 0 1 1 3 4 3 " "$r"
eq "outcome characters recorded" "une." "$(rcli HGET "$J:outcomes" 0)"
eq "job counters" "1 0 1 1 3" "$(counts J1)"
eq "queue stats" "1 1 1 1" "$(rcli HMGET "$K:stats" updated not_found errors cached | tr '\n' ' ' | sed 's/ $//')"
eq "cached counted" 1 "$(field J1 cached)"
check "updated_at set" test "$(field J1 updated_at)" -gt 0
eq "overwrite: every field set, others kept" "Alien 1979 me" \
  "$(rcli HMGET "$K:result:1" title year keep | tr '\n' ' ' | sed 's/ $//')"
eq "job:results: one line per entity with fields" "$(line 0 '{"title":"Alien","year":"1979"}')" \
  "$(rcli HGET "$J:results" 0)"
el=$(rcli LRANGE "$J:errors" 0 -1)
eq "error log: one entry" 1 "$(rcli LLEN "$J:errors")"
eq "error log entry" '3 0 2 HTTP 500 (gave up after 3 retries) True' \
  "$(echo "$el" | python3 -c 'import json,sys; e = json.loads(sys.stdin.read()); print(e["id"], e["chunk"], e["index"], e["error"], e["at"] > 0)')"
eq "chunk still held" 1 "$(rcli LLEN "$K:processing")"

r=$(ack J1 "$K:result:2" , J1:0 J1 0 1000 overwrite "$K:events" 2 \
  0 c 1 title Other '{"title":"Other"}' '' 1 0 \
  1 e 0 '' 'late' 2 0 | tr '\n' ' ')
eq "a repeat records nothing" "0 0 running 1 0 1 1 3 4 0 " "$r"
eq "a repeat: counters unchanged" "1 0 1 1 3" "$(counts J1)"
eq "a repeat: no result hash written" 0 "$(rcli EXISTS "$K:result:2")"
eq "a repeat: no line, no error added" "1 $(line 0 '{"title":"Alien","year":"1979"}')" \
  "$(rcli LLEN "$J:errors") $(rcli HGET "$J:results" 0)"

r=$(ack J1 "$K:result:4" , J1:0 J1 0 1000 overwrite "$K:events" 1 \
  3 u 1 title 'Blue	Night "2"' '{"title":"Blue\tNight \"2\""}' '' 4 0 | tr '\n' ' ')
eq "last entity: chunk done, job completed" "1 1 completed 2 0 1 1 4 4 1 " "$r"
eq "last entity: value stored as sent" 'Blue	Night "2"' "$(rcli HGET "$K:result:4" title)"
eq "job:results: lines appended in order" \
  "$(line 0 '{"title":"Alien","year":"1979"}')
$(line 3 '{"title":"Blue\tNight \"2\""}')" "$(rcli HGET "$J:results" 0)"
eq "chunk out of processing, leases and owners" "0 0 0" \
  "$(rcli LLEN "$K:processing") $(rcli ZCARD "$K:leases") $(rcli HLEN "$K:owners")"
eq "chunks_done and status" "1 completed" "$(field J1 chunks_done) $(field J1 status)"
check "completed_at set" test "$(field J1 completed_at)" -gt 0
sleep 0.2
kill "$sub" 2>/dev/null
wait "$sub" 2>/dev/null
ev=$(grep '^{' "$D/events" | tail -1)
eq "events: one per call that recorded something" 2 "$(grep -c '^{' "$D/events")"
eq "event of the last call" "J1 completed 2 0 1 1 4 4" \
  "$(echo "$ev" | python3 -c 'import json,sys; e = json.load(sys.stdin); print(*(e[k] for k in ("job", "status", "updated", "conflicts", "not_found", "errors", "processed", "total")))')"

# the export reads those lines
rcli HSET "$J:chunks" 0 $'{"id":"1"}\n{"id":"2"}\n{"id":"3"}\n{"id":"4"}' >/dev/null
rcli HSET "$J" queue default provider items >/dev/null
res=$(REDIS_URL="unix://$D/redis.sock" "$BIN/enqueuer" results J1 2>&1)
eq "enqueuer results: the recorded fields" \
  '{"entity":{"id":"1"},"outcome":"updated","result":{"title":"Alien","year":"1979"}}
{"entity":{"id":"2"},"outcome":"not_found"}
{"entity":{"id":"3"},"outcome":"errors"}
{"entity":{"id":"4"},"outcome":"updated","result":{"title":"Blue\tNight \"2\""}}' "$res"

# ---- keep: missing fields set, a differing stored value is a conflict ----
ef_flush
job J2 3 sealed=0
rcli HSET "$K:result:a" title Same >/dev/null
rcli HSET "$K:result:b" title Before >/dev/null
r=$(ack J2 "$K:result:a" "$K:result:b" , J2:0 J2 0 1000 keep "$K:events" 2 \
  0 u 2 title Same year 2001 '{"title":"Same","year":"2001"}' '' a 0 \
  1 u 2 title After year 2002 '{"title":"After","year":"2002"}' '' b 0 | tr '\n' ' ')
eq "keep: equal value updated, differing value a conflict" "0 0 running 1 1 0 0 2 3 2 " "$r"
eq "keep: missing field set beside an equal one" "Same 2001" "$(rcli HMGET "$K:result:a" title year | tr '\n' ' ' | sed 's/ $//')"
eq "keep: stored value kept, missing field still set" "Before 2002" \
  "$(rcli HMGET "$K:result:b" title year | tr '\n' ' ' | sed 's/ $//')"
eq "keep: outcome characters" "uc." "$(rcli HGET "$K:job:J2:outcomes" 0)"
r=$(ack J2 , J2:0 J2 0 1000 keep "$K:events" 1 2 n 0 '' '' c 0 | tr '\n' ' ')
eq "unsealed job: chunk done, job not completed" "0 1 running 1 1 1 0 3 3 1 " "$r"

# ---- a result key of another type fails its entity alone ----
ef_flush
job J3 3
rcli SET "$K:result:x" oops >/dev/null
for pol in overwrite keep; do
  rcli DEL "$K:result:y" "$K:job:J3:errors" >/dev/null
  rcli HSET "$K:job:J3:outcomes" 0 ... >/dev/null
  rcli HSET "$K:job:J3" processed 0 updated 0 conflicts 0 not_found 0 errors 0 >/dev/null
  r=$(ack J3 "$K:result:x" "$K:result:y" , J3:0 J3 0 1000 "$pol" "$K:events" 2 \
    0 u 1 title X '{"title":"X"}' '' x 0 \
    1 u 1 title Y '{"title":"Y"}' '' y 0 | tr '\n' ' ')
  eq "wrong type ($pol): that entity errs, the other is updated" "1 0 0 1 2" "$(counts J3)"
  eq "wrong type ($pol): outcomes" "eu." "$(rcli HGET "$K:job:J3:outcomes" 0)"
  eq "wrong type ($pol): the other hash written" Y "$(rcli HGET "$K:result:y" title)"
  contains "wrong type ($pol): the error names the key" "result key $K:result:x: WRONGTYPE" \
    "$(rcli LRANGE "$K:job:J3:errors" 0 0)"
  eq "wrong type ($pol): its line kept for export" "$(line 0 '{"title":"X"}')
$(line 1 '{"title":"Y"}')" "$(rcli HGET "$K:job:J3:results" 0)"
  rcli HDEL "$K:job:J3:results" 0 >/dev/null
done

# ---- dry run: no result hash, the lines still kept ----
ef_flush
job J4 2 dry=1
rcli HSET "$K:result:k" title Stored >/dev/null
r=$(ack J4 "$K:result:n" "$K:result:k" , J4:0 J4 0 1000 keep "$K:events" 2 \
  0 u 1 title New '{"title":"New"}' '' n 0 \
  1 u 1 title Other '{"title":"Other"}' '' k 0 | tr '\n' ' ')
eq "dry run: outcomes computed (keep still sees the conflict)" "1 1 0 0 2" "$(counts J4)"
eq "dry run: no hash written, none changed" "0 Stored" \
  "$(rcli EXISTS "$K:result:n") $(rcli HGET "$K:result:k" title)"
eq "dry run: the would-be fields kept with the job" "$(line 0 '{"title":"New"}')
$(line 1 '{"title":"Other"}')" "$(rcli HGET "$K:job:J4:results" 0)"

# ---- the error log is capped; only a call that pushed trims ----
ef_flush
job J5 5
ack J5 , J5:0 J5 0 3 overwrite "$K:events" 5 \
  0 e 0 '' e0 i0 0  1 e 0 '' e1 i1 0  2 e 0 '' e2 i2 0  3 e 0 '' e3 i3 0  4 n 0 '' '' i4 0 >/dev/null
eq "error log: capped, newest first" "e3 e2 e1" \
  "$(rcli LRANGE "$K:job:J5:errors" 0 -1 | python3 -c 'import json,sys; print(*(json.loads(l)["error"] for l in sys.stdin))')"
eq "error log cap: counters still count every error" "0 0 1 4 5" "$(counts J5)"

# ---- a call that does not match the layout changes nothing ----
ef_flush
job J6 2
for bad in "2|0 u 0 '' '' a 0" "1|0 u 1 title '{}' '' a 0" "x|0 u 0 '' '' a 0" "1|0 u -1 '' '' a 0"; do
  n=${bad%%|*}
  eval "set -- ${bad#*|}"
  out=$(ack J6 , J6:0 J6 0 1000 overwrite "$K:events" "$n" "$@" 2>&1)
  contains "layout mismatch refused (count $n, $*)" "do not match the layout" "$out"
done
out=$(ack J6 "$K:result:z" , J6:0 J6 0 1000 overwrite "$K:events" 1 0 u 0 '' '' a 0 2>&1)
contains "layout mismatch refused (a key too many)" "do not match the layout" "$out"
out=$(ack J6 , J6:0 J6 0 1000 overwrite "$K:events" 1 0 u 1 title T '{"title":"T"}' '' a 0 2>&1)
contains "layout mismatch refused (a result key missing)" "do not match the layout" "$out"
eq "layout mismatch: nothing written" "0 0 0 0 0 .." "$(counts J6) $(rcli HGET "$K:job:J6:outcomes" 0)"

# ---- a missing job or chunk ----
out=$(ack NOPE , NOPE:0 NOPE 0 1000 overwrite "$K:events" 1 0 u 0 '' '' a 0 | tr '\n' ' ')
eq "missing job: status missing, nothing recorded" "0 0 missing 0 0 0 0 0 0 0 " "$out"

ef_finish
