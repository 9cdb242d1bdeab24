#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# ef-test: parallel
# The enqueuer and the Redis contract against a real redis-server: chunking,
# FIFO and priority order, the job-before-chunk and sealing rules, duplicate
# ids, every validation error with its line number and nothing left behind,
# --skip-invalid, abandoned enqueues, signals, admin verbs, and the shell
# enqueue producing the same job as the C one.
source "$(dirname "$0")/lib.sh"
ef_setup
ENQ="$BIN/enqueuer"
Q='farm:{default}'
D=$EF_TMP

job_keys() { rcli --scan --pattern "$Q:job:*" | sort; }
nothing_left() { # NAME: no job, chunk or pending ref in the default queue
  local keys pend
  keys=$(job_keys); pend=$(rcli LLEN "$Q:pending"); local zj; zj=$(rcli ZCARD "$Q:jobs")
  if [ -z "$keys" ] && [ "$pend" = 0 ] && [ "$zj" = 0 ]; then ok "$1"; else fail "$1" "left: keys=[$keys] pending=$pend jobs=$zj"; fi
}

# ---- chunking ----
ef_flush
seq 1 120 >"$D/ids120"
id=$("$ENQ" --provider items --chunk-size 50 "$D/ids120" 2>"$D/err")
eq "submit prints the job id alone" 1 "$(printf '%s\n' "$id" | wc -l)"
check "job id is valid" grep -Eq '^[0-9A-Z]{26}$' <<<"$id"
eq "chunks_total" 3 "$(rcli HGET "$Q:job:$id" chunks_total)"
eq "total" 120 "$(rcli HGET "$Q:job:$id" total)"
eq "chunk 0 has 50" 50 "$(rcli HGET "$Q:job:$id:chunks" 0 | wc -l)"
eq "chunk 1 has 50" 50 "$(rcli HGET "$Q:job:$id:chunks" 1 | wc -l)"
eq "last chunk partial (20)" 20 "$(rcli HGET "$Q:job:$id:chunks" 2 | wc -l)"
eq "first entity" '{"id":"1"}' "$(rcli HGET "$Q:job:$id:chunks" 0 | head -1)"
eq "status queued after seal" queued "$(rcli HGET "$Q:job:$id" status)"
eq "sealed" 1 "$(rcli HGET "$Q:job:$id" sealed)"
eq "job in index" 1 "$(rcli ZSCORE "$Q:jobs" "$id" | grep -c .)"
eq "not in enqueuing index" "" "$(rcli ZSCORE "$Q:enqueuing" "$id")"
contains "log line 'job ID queued (total=N)'" "job $id queued (total=120)" "$(cat "$D/err")"
for f in id queue provider entity_type status total processed updated conflicts not_found errors \
  chunk_size chunks_total chunks_done dry_run priority created_at started_at updated_at completed_at; do
  [ "$(rcli HEXISTS "$Q:job:$id" "$f")" = 1 ] || fail "job field $f" "missing"
done
ok "every public job field present"
seq 1 7 >"$D/ids7"
id1=$("$ENQ" --provider items --chunk-size 1 "$D/ids7" 2>/dev/null)
eq "chunk size 1" 7 "$(rcli HGET "$Q:job:$id1" chunks_total)"
id2=$("$ENQ" --provider items --chunk-size 7 "$D/ids7" 2>/dev/null)
eq "exact multiple: one chunk" 1 "$(rcli HGET "$Q:job:$id2" chunks_total)"

# ---- FIFO and priority ----
ef_flush
a=$("$ENQ" --provider items --chunk-size 50 "$D/ids120" 2>/dev/null)
b=$("$ENQ" --provider items --chunk-size 50 "$D/ids120" 2>/dev/null)
order=$(for i in 1 2 3 4 5 6; do rcli RPOP "$Q:pending"; done | tr '\n' ' ')
eq "FIFO: jobs and chunks in order" "$a:0 $a:1 $a:2 $b:0 $b:1 $b:2 " "$order"
ef_flush
a=$("$ENQ" --provider items --chunk-size 50 "$D/ids120" 2>/dev/null)
h=$("$ENQ" --provider items --chunk-size 50 --priority high "$D/ids120" 2>/dev/null)
eq "priority stored" high "$(rcli HGET "$Q:job:$h" priority)"
order=$(for i in 1 2 3 4; do rcli RPOP "$Q:pending"; done | tr '\n' ' ')
eq "high priority jumps the queue, in chunk order" "$h:0 $h:1 $h:2 $a:0 " "$order"

# ---- job before chunk, sealing ----
ef_flush
fifo="$D/slow.fifo"; mkfifo "$fifo"
ef_spawn "$D/slow.out" "$ENQ" --provider items --chunk-size 2 --job-id SLOW1 "$fifo"
slow_pid=$EF_LAST_PID
exec 7>"$fifo"
printf '1\n2\n3\n4\n5\n' >&7
ef_wait_for 5 'test "$(rcli HGET "$Q:job:SLOW1" status)" = enqueuing'
eq "job exists (enqueuing) while input is open" enqueuing "$(rcli HGET "$Q:job:SLOW1" status)"
eq "no chunk visible before the seal" 0 "$(rcli LLEN "$Q:pending")"
eq "enqueuer heartbeat registered" 1 "$(rcli ZSCORE "$Q:enqueuing" SLOW1 | grep -c .)"
printf '6\n' >&7
exec 7>&-
wait "$slow_pid"
eq "enqueuer exits 0 at end of input" 0 $?
eq "sealed after input ends" queued "$(rcli HGET "$Q:job:SLOW1" status)"
eq "all chunks visible after the seal" 3 "$(rcli LLEN "$Q:pending")"
eq "total after seal" 6 "$(rcli HGET "$Q:job:SLOW1" total)"
# MONITOR: the job hash is written before any chunk reference reaches pending
ef_flush
rcli MONITOR >"$D/monitor" 2>&1 &
mon=$!; EF_PIDS+=("$mon"); sleep 0.2
"$ENQ" --provider items --job-id MON1 "$D/ids120" >/dev/null 2>&1
sleep 0.2; kill "$mon" 2>/dev/null
first_job=$(grep -n '"HSET" "farm:{default}:job:MON1"' "$D/monitor" | head -1 | cut -d: -f1)
first_push=$(grep -n '"LPUSH" "farm:{default}:pending"' "$D/monitor" | head -1 | cut -d: -f1)
if [ -n "$first_job" ] && [ -n "$first_push" ] && [ "$first_job" -lt "$first_push" ]; then
  ok "MONITOR: job hash written before the first chunk ref"
else fail "MONITOR order" "job at line '$first_job', push at '$first_push'"; fi
# seal refuses wrong totals and a second seal
redis_eval() { rcli --eval "$EF_ROOT/scripts/$1.lua" "${@:2}"; }
ef_flush
redis_eval job_create "$Q:job:S2" "$Q:jobs" "$Q:enqueuing" "$Q:notify" "$Q:settings" farm:queues farm:providers , S2 default items item 50 0 normal 30000 >/dev/null
redis_eval job_append "$Q:job:S2" "$Q:job:S2:chunks" "$Q:enqueuing" , S2 30000 0 1 '{"id":"a"}' >/dev/null
contains "append refuses a count that does not match the lines" "must hold 2 entities" "$(redis_eval job_append "$Q:job:S2" "$Q:job:S2:chunks" "$Q:enqueuing" , S2 30000 1 2 $'{"id":"b"}\n' 2>&1)"
contains "seal refuses wrong totals" "holds 1 entities" "$(redis_eval job_seal "$Q:job:S2" "$Q:pending" "$Q:enqueuing" , S2 5 1 "$Q:events" 0 2>&1)"
eq "nothing visible after a refused seal" 0 "$(rcli LLEN "$Q:pending")"
contains "append refuses a gap" "expects chunk 1" "$(redis_eval job_append "$Q:job:S2" "$Q:job:S2:chunks" "$Q:enqueuing" , S2 30000 5 1 '{"id":"b"}' 2>&1)"
eq "seal with right totals" queued "$(redis_eval job_seal "$Q:job:S2" "$Q:pending" "$Q:enqueuing" , S2 1 1 "$Q:events" 0)"
contains "second seal refused" "not enqueuing" "$(redis_eval job_seal "$Q:job:S2" "$Q:pending" "$Q:enqueuing" , S2 1 1 "$Q:events" 0 2>&1)"
contains "append after seal refused" "not enqueuing" "$(redis_eval job_append "$Q:job:S2" "$Q:job:S2:chunks" "$Q:enqueuing" , S2 30000 1 1 '{"id":"b"}' 2>&1)"
contains "discard refuses a sealed job" "sealed" "$(redis_eval job_discard "$Q:job:S2" "$Q:job:S2:chunks" "$Q:jobs" "$Q:enqueuing" , S2 2>&1)"

# ---- duplicate job id ----
ef_flush
"$ENQ" --provider items --job-id DUP1 "$D/ids7" >/dev/null 2>&1
before=$(rcli HGETALL "$Q:job:DUP1" | tr '\n' ' ')
out=$("$ENQ" --provider other --job-id DUP1 "$D/ids120" 2>&1); rc=$?
eq "duplicate id: exit 1" 1 "$rc"
contains "duplicate id: message" "job DUP1 already exists" "$out"
eq "duplicate id: first job untouched" "$before" "$(rcli HGETALL "$Q:job:DUP1" | tr '\n' ' ')"
eq "duplicate id: no extra chunk" 1 "$(rcli LLEN "$Q:pending")"

# ---- validation errors: message with line number, nothing left ----
bad_case() { # NAME EXPECTED_MESSAGE FORMAT FILE_CONTENT [extra flags]
  local name=$1 msg=$2 fmt=$3 content=$4; shift 4
  ef_flush
  printf '%b' "$content" >"$D/bad.in"
  local out rc
  out=$("$ENQ" --provider items --format "$fmt" "$@" "$D/bad.in" 2>&1); rc=$?
  eq "$name: exit 1" 1 "$rc"
  contains "$name: message" "$msg" "$out"
  nothing_left "$name: nothing left in Redis"
}
bad_case "empty input" "empty input" lines ""
bad_case "blank lines only" "empty input" lines "\n  \n\n"
bad_case "control character" "bad.in:3: id contains control character 0x01" lines "1\n2\n3\x01x\n4\n"
long=$(head -c 600 /dev/zero | tr '\0' 'a')
bad_case "id over 512 bytes" "bad.in:2: id is 600 bytes, the limit is 512" lines "1\n$long\n3\n"
bad_case "invalid UTF-8" "bad.in:2: id is not valid UTF-8" lines "1\n\xff\xfe\n"
bad_case "NUL byte" "bad.in:2: id contains control character 0x00" lines "1\nab\x00c\n"
bad_case "CSV missing id" "bad.in:3: missing id" csv "id,title\n1,A\n,B\n"
bad_case "CSV field count" "bad.in:3: 3 fields, the header has 2" csv "id,title\n1,A\n2,B,C\n"
bad_case "CSV unterminated quote" "bad.in:3: unterminated quoted field" csv 'id,title\n1,A\n2,"B\n'
bad_case "CSV no id column" "no column 'id' in the CSV header" csv "key,title\n1,A\n"
bad_case "CSV quote garbage" "bad.in:2: unexpected character after a closing quote" csv 'id,title\n1,"A"x\n'
bad_case "NDJSON malformed" "bad.in:2: malformed JSON" ndjson '{"id":"1"}\n{"id":\n'
bad_case "NDJSON not an object" "bad.in:2: not a JSON object" ndjson '{"id":"1"}\n[1,2]\n'
bad_case "NDJSON missing id" "bad.in:3: missing id (no field 'id')" ndjson '{"id":"1"}\n{"id":2}\n{"name":"x"}\n'
bad_case "NDJSON bad id type" "bad.in:1: field 'id' must be a string or an integer" ndjson '{"id":1.5}\n'
# a bad record deep in a large input: chunks were already appended, then discarded
ef_flush
{ seq 1 5000; printf 'bad\x02id\n'; seq 5001 6000; } >"$D/late.in"
out=$("$ENQ" --provider items --chunk-size 10 "$D/late.in" 2>&1); rc=$?
eq "late bad line: exit 1" 1 "$rc"
contains "late bad line: line number" "late.in:5001: id contains control character 0x02" "$out"
nothing_left "late bad line: appended chunks discarded"
# unknown provider, when workers registered some
ef_flush
rcli HSET farm:providers items '{}' movies '{}' >/dev/null
out=$("$ENQ" --provider nope "$D/ids7" 2>&1); rc=$?
eq "unknown provider: exit 1" 1 "$rc"
contains "unknown provider: message" "unknown provider 'nope' (registered by workers: " "$out"
nothing_left "unknown provider: nothing left"
check "known provider accepted" "$ENQ" --provider movies "$D/ids7"
rcli DEL farm:providers >/dev/null
# usage errors
out=$("$ENQ" "$D/ids7" 2>&1); eq "missing --provider: exit 1" 1 $?
contains "missing --provider: message" "--provider is required" "$out"
out=$("$ENQ" --provider items --chunk-size 0 "$D/ids7" 2>&1); contains "bad chunk size" "--chunk-size must be" "$out"
out=$("$ENQ" --provider items --queue 'a{b}' "$D/ids7" 2>&1); contains "bad queue name" "--queue must be" "$out"
out=$("$ENQ" --provider items "$D/none.txt" 2>&1); contains "missing file" "cannot open $D/none.txt" "$out"
out=$("$ENQ" --redis redis://127.0.0.1:1/0 --provider items "$D/ids7" 2>&1); eq "redis down: exit 1" 1 $?
contains "redis down: message" "cannot connect to redis" "$out"
out=$("$ENQ" --redis http://x --provider items "$D/ids7" 2>&1); contains "bad redis URL" "must start with redis://" "$out"

# ---- --skip-invalid ----
ef_flush
printf '1\n2\x01\n3\n%s\n4\n' "$long" >"$D/skip.in"
out=$("$ENQ" --provider items --skip-invalid "$D/skip.in" 2>"$D/skip.err"); rc=$?
eq "skip-invalid: exit 0" 0 "$rc"
eq "skip-invalid: total of good records" 3 "$(rcli HGET "$Q:job:$out" total)"
eq "skip-invalid: skipped counted" 2 "$(rcli HGET "$Q:job:$out" skipped)"
contains "skip-invalid: reports line 2" "skip.in:2: id contains control character" "$(cat "$D/skip.err")"
contains "skip-invalid: reports line 4" "skip.in:4: id is 600 bytes" "$(cat "$D/skip.err")"

# ---- formats ----
ef_flush
printf '\xef\xbb\xbfid,title,year\r\n1,"The ""Big"" One",1999\r\n2,"Multi\nline",2001\r\n\r\n3,Plain,2003\r\n' >"$D/m.csv"
id=$("$ENQ" --provider movies "$D/m.csv" 2>/dev/null)
eq "CSV: BOM, CRLF, quotes, blank line" 3 "$(rcli HGET "$Q:job:$id" total)"
eq "CSV: entity with fields" '{"id":"1","title":"The \"Big\" One","year":"1999"}' "$(rcli HGET "$Q:job:$id:chunks" 0 | head -1)"
contains "CSV: newline inside quotes kept" '"title":"Multi\nline"' "$(rcli HGET "$Q:job:$id:chunks" 0)"
printf 'isbn,title\n978-1,A\n978-2,B\n' >"$D/b.csv"
id=$("$ENQ" --provider books --id-field isbn "$D/b.csv" 2>/dev/null)
eq "CSV: --id-field" '{"id":"978-1","isbn":"978-1","title":"A"}' "$(rcli HGET "$Q:job:$id:chunks" 0 | head -1)"
printf '{"sku":7,"name":"x","tags":["a"]}\n\n{"sku":"8","n":null}\n' >"$D/p.ndjson"
id=$("$ENQ" --provider p --id-field sku "$D/p.ndjson" 2>/dev/null)
eq "NDJSON: integer id, fields kept" '{"id":"7","sku":7,"name":"x","tags":["a"]}' "$(rcli HGET "$Q:job:$id:chunks" 0 | head -1)"
id=$(seq 1 3 | "$ENQ" --provider items - 2>/dev/null)
eq "stdin input" 3 "$(rcli HGET "$Q:job:$id" total)"
eq "stdin source recorded" stdin "$(rcli HGET "$Q:job:$id" source)"

# ---- interrupted and abandoned enqueues ----
ef_flush
mkfifo "$D/int.fifo"
ef_spawn "$D/int.out" "$ENQ" --provider items --chunk-size 2 --job-id INT1 "$D/int.fifo"
ipid=$EF_LAST_PID
exec 8>"$D/int.fifo"; printf '1\n2\n3\n4\n5\n' >&8
ef_wait_for 5 'test "$(rcli HGET "$Q:job:INT1" status)" = enqueuing'
kill -INT "$ipid"; wait "$ipid"; rc=$?
exec 8>&-
eq "SIGINT mid-stream: exit 130" 130 "$rc"
nothing_left "SIGINT mid-stream: job discarded"
mkfifo "$D/kill.fifo"
ef_spawn "$D/kill.out" "$ENQ" --provider items --chunk-size 2 --job-id KILL1 "$D/kill.fifo"
kpid=$EF_LAST_PID
exec 9>"$D/kill.fifo"; printf '1\n2\n3\n4\n5\n' >&9
ef_wait_for 5 'test "$(rcli HGET "$Q:job:KILL1" status)" = enqueuing'
kill -9 "$kpid"; wait "$kpid" 2>/dev/null; exec 9>&-
eq "SIGKILL mid-stream: job stays enqueuing" enqueuing "$(rcli HGET "$Q:job:KILL1" status)"
eq "SIGKILL mid-stream: no chunk visible" 0 "$(rcli LLEN "$Q:pending")"
eq "abandon before the deadline: nothing" 0 "$(redis_eval job_abandon "$Q:job:KILL1" "$Q:job:KILL1:chunks" "$Q:enqueuing" , KILL1 "$Q:events")"
rcli ZADD "$Q:enqueuing" 1 KILL1 >/dev/null
eq "abandon after the deadline" 1 "$(redis_eval job_abandon "$Q:job:KILL1" "$Q:job:KILL1:chunks" "$Q:enqueuing" , KILL1 "$Q:events")"
eq "abandoned job marked failed" failed "$(rcli HGET "$Q:job:KILL1" status)"
contains "abandoned reason" "abandoned" "$(rcli HGET "$Q:job:KILL1" error)"
eq "abandoned job's chunks dropped" 0 "$(rcli EXISTS "$Q:job:KILL1:chunks")"

# ---- admin verbs ----
ef_flush
id=$("$ENQ" --provider items --chunk-size 50 "$D/ids120" 2>/dev/null)
st=$("$ENQ" status "$id")
check "status is JSON with numbers" python3 -c 'import json,sys; d=json.loads(sys.argv[1]); assert d["total"]==120 and d["dry_run"] is False and d["progress_percent"]==0' "$st"
out=$("$ENQ" status NOPE 2>&1); eq "status of a missing job: exit 1" 1 $?
contains "status of a missing job: message" "no job NOPE" "$out"
eq "pause" "job $id paused" "$("$ENQ" pause "$id")"
eq "paused status" paused "$(rcli HGET "$Q:job:$id" status)"
rcli LPUSH "$Q:job:$id:parked" "$id:1" >/dev/null
eq "resume" "job $id queued" "$("$ENQ" resume "$id")"
eq "resume moves parked chunks to the taking end" "$id:1" "$(rcli LINDEX "$Q:pending" -1)"
eq "queue pause" "queue default paused" "$("$ENQ" pause)"
eq "queue paused flag" 1 "$(rcli EXISTS "$Q:paused")"
eq "queue resume" "queue default running" "$("$ENQ" resume)"
eq "cancel" "job $id cancelled" "$("$ENQ" cancel "$id")"
eq "cancel is idempotent" "job $id cancelled" "$("$ENQ" cancel "$id")"
out=$("$ENQ" pause "$id" 2>&1); contains "cannot pause a cancelled job" "cannot be paused" "$out"
check "completed_at set by cancel" test "$(rcli HGET "$Q:job:$id" completed_at)" -gt 0
id2=$("$ENQ" --provider items "$D/ids7" 2>/dev/null)
lst=$("$ENQ" list)
contains "list shows jobs" "$id2" "$lst"
eq "list is newest first" "$id2" "$(echo "$lst" | sed -n 2p | awk '{print $1}')"
eq "list --status" 1 "$("$ENQ" list --status cancelled --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')"
out=$("$ENQ" status 'x{y}' 2>&1); contains "hostile job id refused" "not a valid job id" "$out"

# ---- retry-errors and results ----
ef_flush
id=$("$ENQ" --provider items --chunk-size 3 "$D/ids7" 2>/dev/null)   # chunks: 1-3, 4-6, 7
rcli HSET "$Q:job:$id:outcomes" 0 'ueu' 1 'nee' 2 'c' >/dev/null
rcli HSET "$Q:job:$id:results" 0 $'0\t{"title":"Item 1"}\n' >/dev/null
new=$("$ENQ" retry-errors "$id" 2>/dev/null)
eq "retry-errors: a new job of the errored entities" 3 "$(rcli HGET "$Q:job:$new" total)"
eq "retry-errors: the right entities" '{"id":"2"} {"id":"5"} {"id":"6"}' "$(rcli HGET "$Q:job:$new:chunks" 0 | tr '\n' ' ' | sed 's/ $//')"
eq "retry-errors: provider kept" items "$(rcli HGET "$Q:job:$new" provider)"
eq "retry-errors: retry_of recorded" "$id" "$(rcli HGET "$Q:job:$new" retry_of)"
# a retry big enough that the new job's appends are in flight while the
# old job's next chunks are read: 1200 errored entities in chunks of 2
seq 1 1200 >"$D/ids1200"
idb=$("$ENQ" --provider items --chunk-size 2 "$D/ids1200" 2>/dev/null)
for c in $(seq 0 599); do echo "HSET $Q:job:$idb:outcomes $c ee"; done | rcli >/dev/null
newb=$("$ENQ" retry-errors "$idb" 2>"$D/retryb.err")
eq "retry-errors, 1200 errored in 600 chunks: all of them, in order" "1200 1 1200" \
  "$(rcli HGET "$Q:job:$newb" total) $(rcli HGET "$Q:job:$newb:chunks" 0 | head -1 | sed 's/.*"\([0-9]*\)".*/\1/') $(rcli HGET "$Q:job:$newb:chunks" 599 | tail -1 | sed 's/.*"\([0-9]*\)".*/\1/')"
res=$("$ENQ" results "$id")
eq "results: one line per entity" 7 "$(echo "$res" | wc -l)"
eq "results: first line" '{"entity":{"id":"1"},"outcome":"updated","result":{"title":"Item 1"}}' "$(echo "$res" | head -1)"
eq "results: outcomes" "updated errors updated not_found errors errors conflicts" \
  "$(echo "$res" | python3 -c 'import json,sys; print(" ".join(json.loads(l)["outcome"] for l in sys.stdin))')"

# ---- --wait ----
ef_flush
( sleep 0.6; j=$(rcli ZRANGE "$Q:jobs" 0 0); rcli HSET "$Q:job:$j" processed 7 updated 7 status completed completed_at 1 >/dev/null ) &
"$ENQ" --provider items --wait "$D/ids7" >/dev/null 2>"$D/wait.err"; rc=$?
eq "--wait: exit 0 on completed" 0 "$rc"
contains "--wait: progress lines" "updated=7" "$(cat "$D/wait.err")"
ef_flush
( sleep 0.6; j=$(rcli ZRANGE "$Q:jobs" 0 0); rcli HSET "$Q:job:$j" status failed error boom >/dev/null ) &
"$ENQ" --provider items --wait "$D/ids7" >/dev/null 2>"$D/wait.err"; rc=$?
eq "--wait: exit 2 on failed" 2 "$rc"
( sleep 0.6; j=$(rcli ZRANGE "$Q:jobs" 0 0); rcli HSET "$Q:job:$j" status cancelled >/dev/null ) &
ef_flush
"$ENQ" --provider items --wait "$D/ids7" >/dev/null 2>"$D/wait.err"; rc=$?
eq "--wait: exit 3 on cancelled" 3 "$rc"

# ---- the shell enqueue makes the same job ----
ef_flush
printf '1\n 2 \r\n\n"q\\x\n\xc3\xa9t\xc3\xa9\n' >"$D/sh.in"
seq 10 200 >>"$D/sh.in"
a=$("$EF_ROOT/scripts/enqueue.sh" --redis "$REDIS_URL" --provider items --chunk-size 7 "$D/sh.in")
b=$("$ENQ" --provider items --chunk-size 7 --format lines "$D/sh.in" 2>/dev/null)
check "shell enqueue prints a job id" grep -Eq '^[0-9A-Z]{26}$' <<<"$a"
norm() { rcli HGETALL "$Q:job:$1" | paste - - | grep -Ev '^(id|created_at|updated_at)	' | sort; }
eq "shell job hash has the same fields and values" "$(norm "$b")" "$(norm "$a")"
same=1
for i in $(seq 0 $(( $(rcli HGET "$Q:job:$a" chunks_total) - 1 ))); do
  [ "$(rcli HGET "$Q:job:$a:chunks" "$i")" == "$(rcli HGET "$Q:job:$b:chunks" "$i")" ] || same=0
done
eq "shell job chunks byte-identical" 1 "$same"
eq "shell job refs on pending" "$(rcli LRANGE "$Q:pending" 0 -1 | grep -c "^$b:")" "$(rcli LRANGE "$Q:pending" 0 -1 | grep -c "^$a:")"
ef_flush
out=$(printf '1\n2\x01\n' | "$EF_ROOT/scripts/enqueue.sh" --redis "$REDIS_URL" --provider items - 2>&1); rc=$?
eq "shell enqueue: bad line exit 1" 1 "$rc"
contains "shell enqueue: line number" "stdin:2: id contains a control character" "$out"
nothing_left "shell enqueue: nothing left"
"$EF_ROOT/scripts/enqueue.sh" --redis "$REDIS_URL" --provider items --job-id SH1 "$D/ids7" >/dev/null
out=$("$EF_ROOT/scripts/enqueue.sh" --redis "$REDIS_URL" --provider items --job-id SH1 "$D/ids7" 2>&1); rc=$?
eq "shell enqueue: duplicate refused" 1 "$rc"
contains "shell enqueue: duplicate message" "already exists" "$out"

# ---- --help / --version of every program ----
for p in enqueuer worker statusd; do
  check "$p --help" "$BIN/$p" --help
  check "$p --version" "$BIN/$p" --version
done
contains "enqueuer --help names --redis" "--redis URL" "$("$ENQ" --help)"

ef_finish
