#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The worker end to end: real redis-server, real workers, the mock
# provider.  Exact counts against the catalogue's truth through several
# workers; a worker SIGKILLed mid-job; a stalled worker (SIGSTOP) whose lease
# expires and whose late ack changes nothing; a poison chunk reaching the
# dead list; 429 with Retry-After honoured; every classification case;
# pause/resume/cancel; SIGTERM drain; Redis restarted mid-job.
source "$(dirname "$0")/lib.sh"
ef_setup
ENQ="$BIN/enqueuer"
Q='farm:{default}'
D=$EF_TMP

truth() { # FILE -> "updated not_found" counts from the mock's own rule
  "$BIN/mockprov" --expect items --catalog "${2:-20000}" <"$1" | awk '{c[$2]++} END {printf "%d %d\n", c["updated"], c["not_found"]}'
}
counts() { echo "$(job_field "$1" updated) $(job_field "$1" not_found) $(job_field "$1" conflicts) $(job_field "$1" errors)"; }
no_dots() { # ID: every outcome slot of every chunk is filled
  local id=$1 n
  n=$(rcli HVALS "$Q:job:$id:outcomes" | grep -c '\.')
  [ "$n" = 0 ]
}
kill_workers() { local p; for p in "$@"; do kill -9 "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; }

ef_mock_start mock --catalog 20000
P=$MOCK_PORT
ef_items_recipe "$P" "$D/items.json"

# ---- 10k entities through 3 workers, exact ----
seq 1 10000 >"$D/ids10k"
read -r t_upd t_nf < <(truth "$D/ids10k")
id=$("$ENQ" --provider items --chunk-size 50 "$D/ids10k" 2>/dev/null)
pids=()
for i in 1 2 3; do ef_worker_start "$D/w$i.log" --providers "$D/items.json" --concurrency 16; pids+=("$EF_LAST_PID"); done
if ef_wait_job "$id" completed 90; then ok "10k job completed"; else fail "10k job completed" "status $(job_field "$id" status) processed $(job_field "$id" processed)"; fi
eq "10k: counts equal the truth" "$t_upd $t_nf 0 0" "$(counts "$id")"
eq "10k: processed = total" "10000 10000" "$(job_field "$id" processed) $(job_field "$id" total)"
eq "10k: chunks_done" 200 "$(job_field "$id" chunks_done)"
check "10k: every entity has an outcome" no_dots "$id"
eq "10k: one provider request per entity" 10000 "$(mock_stat "$P" requests)"
eq "10k: processing empty" 0 "$(rcli LLEN "$Q:processing")"
eq "10k: no lease left" 0 "$(rcli ZCARD "$Q:leases")"
eq "10k: result hash written" "Item 42" "$(rcli HGET "$Q:result:items:42" title)"
eq "10k: no result for a not_found" 0 "$(rcli EXISTS "$Q:result:items:40")"
eq "10k: 'starting' logged once" 1 "$(cat "$D"/w?.log | grep -c "job $id starting")"
eq "10k: 'completed' logged once with counts" 1 "$(cat "$D"/w?.log | grep -c "job $id completed: updated=$t_upd conflicts=0 not_found=$t_nf errors=0")"
check "10k: started_at and completed_at set" test "$(job_field "$id" completed_at)" -ge "$(job_field "$id" started_at)"
sleep 2.2 # one heartbeat
busy=$(for w in $(rcli ZRANGE farm:workers 0 -1); do rcli HGET "farm:worker:$w" processed; done | awk '$1 > 0' | wc -l)
check "10k: the workers shared the work ($busy of 3 busy)" test "$busy" -ge 2
eq "10k: workers registered" 3 "$(rcli ZCARD farm:workers)"
eq "10k: heartbeat has a TTL" 1 "$(rcli TTL "farm:worker:$(rcli ZRANGE farm:workers 0 0)" | awk '$1>0 && $1<=10 {print 1}')"
contains "10k: provider registered" '"name":"items"' "$(rcli HGET farm:providers items | tr -d ' ')"
kill_workers "${pids[@]}"

# ---- a worker SIGKILLed mid-job ----
ef_flush; curl -s "http://127.0.0.1:$P/stats/reset" >/dev/null
curl -s "http://127.0.0.1:$P/control?latency_ms=5" >/dev/null
seq 1 4000 >"$D/ids4k"
read -r t_upd t_nf < <(truth "$D/ids4k")
id=$("$ENQ" --provider items --chunk-size 50 "$D/ids4k" 2>/dev/null)
ef_worker_start "$D/k1.log" --providers "$D/items.json" --concurrency 16 --visibility-timeout 2; k1=$EF_LAST_PID
ef_worker_start "$D/k2.log" --providers "$D/items.json" --concurrency 16 --visibility-timeout 2; k2=$EF_LAST_PID
ef_wait_for 30 'test "$(job_field "$id" processed)" -gt 800'
kill -9 "$k1"; wait "$k1" 2>/dev/null
held=$(rcli LLEN "$Q:processing")
if ef_wait_job "$id" completed 60; then ok "SIGKILL: job completed"; else fail "SIGKILL: job completed" "$(counts "$id") processed $(job_field "$id" processed)"; fi
eq "SIGKILL: counts equal the truth" "$t_upd $t_nf 0 0" "$(counts "$id")"
eq "SIGKILL: processed = total" 4000 "$(job_field "$id" processed)"
check "SIGKILL: every entity has an outcome" no_dots "$id"
eq "SIGKILL: nothing left in processing" 0 "$(rcli LLEN "$Q:processing")"
echo "info: $held chunk(s) were held when the worker was killed; provider requests $(mock_stat "$P" requests) for 4000 entities"
kill_workers "$k2"
curl -s "http://127.0.0.1:$P/control?latency_ms=0" >/dev/null

# ---- a stalled worker: its lease expires, its late ack changes nothing ----
ef_flush
ef_mock_start slow --catalog 20000 --latency-ms 400
SP=$MOCK_PORT; SPID=$MOCK_PID
ef_items_recipe "$SP" "$D/slow.json"
seq 1 40 >"$D/ids40"
id=$("$ENQ" --provider items --chunk-size 40 "$D/ids40" 2>/dev/null)
ef_worker_start "$D/s1.log" --providers "$D/slow.json" --concurrency 4 --visibility-timeout 2; s1=$EF_LAST_PID
ef_wait_for 10 'test "$(rcli HLEN "$Q:owners")" = 1'
ef_wait_for 10 'test "$(job_field "$id" processed)" -ge 4'
kill -STOP "$s1"
before_stop=$(job_field "$id" processed)
ef_worker_start "$D/s2.log" --providers "$D/slow.json" --concurrency 8 --visibility-timeout 2; s2=$EF_LAST_PID
if ef_wait_job "$id" completed 30; then ok "SIGSTOP: chunk redone by another worker"; else fail "SIGSTOP: redone" "$(counts "$id")"; fi
snap="$(counts "$id") $(job_field "$id" processed) $(job_field "$id" chunks_done)"
kill -CONT "$s1"
sleep 3
eq "SIGSTOP: late ack changed nothing" "$snap" "$(counts "$id") $(job_field "$id" processed) $(job_field "$id" chunks_done)"
eq "SIGSTOP: counts exact" "36 4 0 0 40 1" "$snap"
contains "SIGSTOP: the stalled worker noticed" "lost the lease" "$(cat "$D/s1.log")"
contains "SIGSTOP: the reaper requeued the chunk" "back in pending" "$(cat "$D"/s?.log)"
echo "info: processed before the stall: $before_stop"
kill_workers "$s1" "$s2"
kill "$SPID" 2>/dev/null

# ---- a poison chunk reaches the dead list ----
ef_flush
ef_mock_start hang --catalog 100 --p-hang 1
HP=$MOCK_PORT; HPID=$MOCK_PID
RECIPE_TIMEOUT_MS=60000 ef_items_recipe "$HP" "$D/hang.json"
seq 1 10 >"$D/ids10"
id=$("$ENQ" --provider items --chunk-size 10 "$D/ids10" 2>/dev/null)
for round in 1 2; do
  ef_worker_start "$D/p$round.log" --providers "$D/hang.json" --visibility-timeout 1 --max-attempts 2
  pw=$EF_LAST_PID
  ef_wait_for 15 'test "$(rcli HGET "$Q:job:$id:attempts" 0)" = "$round"'
  kill -9 "$pw"; wait "$pw" 2>/dev/null
done
ef_worker_start "$D/p3.log" --providers "$D/hang.json" --visibility-timeout 1 --max-attempts 2; pw=$EF_LAST_PID
if ef_wait_job "$id" completed 20; then ok "poison: job completes"; else fail "poison: job completes" "status $(job_field "$id" status)"; fi
eq "poison: chunk on the dead list" "$id:0" "$(rcli LRANGE "$Q:dead" 0 -1)"
eq "poison: its entities count as errors" "0 0 0 10" "$(counts "$id")"
eq "poison: chunks_dead" 1 "$(job_field "$id" chunks_dead)"
contains "poison: error log says why" "dead list after 2 deliveries" "$(rcli LRANGE "$Q:job:$id:errors" 0 -1)"
contains "poison: logged" "went to the dead list" "$(cat "$D/p3.log")"
kill_workers "$pw"; kill "$HPID" 2>/dev/null

# ---- 429 with Retry-After honoured ----
ef_flush
ef_mock_start rl --catalog 100 --rate 1 --per 2 --burst 1
RP=$MOCK_PORT; RPID=$MOCK_PID
RECIPE_RETRIES=10 ef_items_recipe "$RP" "$D/rl.json"
printf '1\n2\n3\n' >"$D/ids3"
id=$("$ENQ" --provider items --chunk-size 3 "$D/ids3" 2>/dev/null)
t0=$(date +%s%3N)
ef_worker_start "$D/r.log" --providers "$D/rl.json" --concurrency 3; rw=$EF_LAST_PID
ef_wait_job "$id" completed 30
t1=$(date +%s%3N)
eq "429: all updated in the end" "3 0 0 0" "$(counts "$id")"
n429=$(mock_stat "$RP" responses_429)
check "429: the provider did answer 429" test "$n429" -ge 1
check "429: Retry-After honoured (few 429s, not a retry storm): $n429" test "$n429" -le 6
check "429: waited for the provider (>= 3.5 s): $((t1 - t0)) ms" test $((t1 - t0)) -ge 3500
kill_workers "$rw"; kill "$RPID" 2>/dev/null

# ---- classification ----
ef_flush
ef_mock_start cls --catalog 100
CP=$MOCK_PORT
ctl() { curl -s "http://127.0.0.1:$CP/control?$1" >/dev/null; }
RECIPE_RETRIES=2 RECIPE_TIMEOUT_MS=500 ef_items_recipe "$CP" "$D/cls.json" ', "max_body": 100000'
ef_worker_start "$D/c.log" --providers "$D/cls.json" --concurrency 8; cw=$EF_LAST_PID
classify() { # NAME CONTROL EXPECTED_COUNTS [ERROR_TEXT [FIRST LAST]]
  ctl "$2"
  local j
  j=$(seq "${5:-1}" "${6:-5}" | "$ENQ" --provider items --chunk-size 5 - 2>/dev/null)
  ef_wait_job "$j" completed 20
  eq "classify $1: outcome counts" "$3" "$(counts "$j")"
  if [ -n "${4:-}" ]; then contains "classify $1: error log" "$4" "$(rcli LRANGE "$Q:job:$j:errors" 0 0)"; fi
  ctl "p_500=0&p_reset=0&p_hang=0&p_malformed=0&p_huge=0&fail_first=0"
}
classify "200/404" "p_500=0" "4 1 0 0" "" 6 10
classify "5xx retried then error" "fail_first=1000" "0 0 0 5" "HTTP 503"
classify "5xx retried then success" "fail_first=1" "4 1 0 0" "" 6 10
classify "malformed JSON" "p_malformed=1" "0 0 0 5" "malformed JSON"
classify "oversized body" "p_huge=1&huge_bytes=200000" "0 0 0 5" "response over"
classify "timeout" "p_hang=1" "0 0 0 5" "gave up after 2 retries"
classify "connection reset" "p_reset=1" "0 0 0 5" "gave up after 2 retries"
kill_workers "$cw"
# conflicts and the two-step recipe: search by title+year, then details
"$BIN/mockprov" --dump-movies-csv --catalog 300 --rows 200 >"$D/movies.csv"
read -r m_upd m_conf m_nf < <("$BIN/mockprov" --expect movies --catalog 300 <"$D/movies.csv" | awk '{c[$2]++} END {printf "%d %d %d\n", c["updated"], c["conflicts"], c["not_found"]}')
ef_mock_start mov --catalog 300
MP=$MOCK_PORT
cat >"$D/movies.json" <<JSON
{"providers": {"movies": {
  "steps": [
    {"name": "search", "url": "http://127.0.0.1:$MP/3/search/movie?query={title}&year={year?}",
     "results": "/results", "match": {"title": "/title"}, "select": "unique", "as": {"movie_id": "/id"}},
    {"name": "details", "url": "http://127.0.0.1:$MP/3/movie/{movie_id}"}],
  "extract": {"runtime": "/runtime", "genres": "/genres/*/name", "director": "/director"},
  "results": {"key": "movie:{id}", "policy": "keep"},
  "timeout_ms": 5000, "retries": 3}}}
JSON
ef_worker_start "$D/m.log" --providers "$D/movies.json" --concurrency 8; mw=$EF_LAST_PID
ef_wait_for 10 '[ "$(rcli HEXISTS farm:providers movies)" = 1 ]'
id=$("$ENQ" --provider movies "$D/movies.csv" 2>/dev/null)
ef_wait_job "$id" completed 60
eq "two-step recipe: counts equal the truth" "$m_upd $m_nf $m_conf 0" "$(counts "$id")"
mid=$("$BIN/mockprov" --expect movies --catalog 300 <"$D/movies.csv" | awk '$2=="updated" {print $1; exit}')
echo "info: movie entity $mid: $(rcli HGETALL "$Q:movie:$mid" | tr "\n" " ") keys: $(rcli --scan --pattern "$Q:movie:*" | head -3 | tr "\n" " ")"
check "two-step recipe: extracted fields stored" test -n "$(rcli HGET "$Q:movie:$mid" director)"
contains "two-step recipe: array extracted as JSON" '["' "$(rcli HGET "$Q:movie:$mid" genres)"
# keep policy: a stored value that differs makes a conflict
rcli HSET "$Q:movie:$mid" runtime 1 >/dev/null
awk -F, -v m="$mid" 'NR==1 || $1==m' "$D/movies.csv" >"$D/one.csv"
id=$("$ENQ" --provider movies "$D/one.csv" 2>/dev/null)
ef_wait_job "$id" completed 20
eq "keep policy: differing stored value is a conflict" "0 0 1 0" "$(counts "$id")"
eq "keep policy: stored value kept" 1 "$(rcli HGET "$Q:movie:$mid" runtime)"
# dry run writes no result hash
rcli DEL "$Q:movie:$mid" >/dev/null
id=$("$ENQ" --provider movies --dry-run "$D/one.csv" 2>/dev/null)
ef_wait_job "$id" completed 20
eq "dry run: outcome computed" "1 0 0 0" "$(counts "$id")"
eq "dry run: no result hash written" 0 "$(rcli EXISTS "$Q:movie:$mid")"
contains "dry run: would-be fields kept with the job" director "$(rcli HGET "$Q:job:$id:results" 0)"
kill_workers "$mw"

# ---- pause, resume, cancel ----
ef_flush; curl -s "http://127.0.0.1:$P/control?latency_ms=20" >/dev/null
seq 1 1500 >"$D/ids1500"
id=$("$ENQ" --provider items --chunk-size 20 "$D/ids1500" 2>/dev/null)
ef_worker_start "$D/pr.log" --providers "$D/items.json" --concurrency 8; prw=$EF_LAST_PID
ef_wait_for 20 'test "$(job_field "$id" processed)" -gt 100'
"$ENQ" pause "$id" >/dev/null
sleep 2; p1=$(job_field "$id" processed); sleep 1.5; p2=$(job_field "$id" processed)
eq "pause: progress stops" "$p1" "$p2"
eq "pause: status paused" paused "$(job_field "$id" status)"
check "pause: chunks set aside, not spun on" test "$(rcli LLEN "$Q:job:$id:parked")" -ge 1
eq "pause: nothing held" 0 "$(rcli LLEN "$Q:processing")"
"$ENQ" resume "$id" >/dev/null
if ef_wait_job "$id" completed 60; then ok "resume: job completes"; else fail "resume: completes" "$(counts "$id")"; fi
eq "resume: exact counts" "1350 150 0 0" "$(counts "$id")"
id=$("$ENQ" --provider items --chunk-size 20 "$D/ids1500" 2>/dev/null)
ef_wait_for 20 'test "$(job_field "$id" processed)" -gt 100'
"$ENQ" cancel "$id" >/dev/null
sleep 2; c1=$(job_field "$id" processed); sleep 1.5; c2=$(job_field "$id" processed)
eq "cancel: status cancelled" cancelled "$(job_field "$id" status)"
eq "cancel: no more requests" "$c1" "$c2"
check "cancel: remaining entities not done" test "$c2" -lt 1500
eq "cancel: nothing held" 0 "$(rcli LLEN "$Q:processing")"
"$ENQ" pause >/dev/null
id=$(seq 1 100 | "$ENQ" --provider items - 2>/dev/null)
sleep 2.5
eq "queue pause: nothing taken" 0 "$(job_field "$id" processed)"
eq "queue pause: chunks wait in pending" 2 "$(rcli LLEN "$Q:pending")"
"$ENQ" resume >/dev/null
if ef_wait_job "$id" completed 20; then ok "queue resume: job completes"; else fail "queue resume" "$(counts "$id")"; fi
kill_workers "$prw"

# ---- SIGTERM drain ----
ef_flush; curl -s "http://127.0.0.1:$P/control?latency_ms=150" >/dev/null
seq 1 600 >"$D/ids600"
id=$("$ENQ" --provider items --chunk-size 20 "$D/ids600" 2>/dev/null)
ef_worker_start "$D/d.log" --providers "$D/items.json" --concurrency 16 --visibility-timeout 60 --grace 10; dw=$EF_LAST_PID
ef_wait_for 20 'test "$(job_field "$id" processed)" -gt 50'
t0=$(date +%s%3N)
kill -TERM "$dw"; wait "$dw"; rc=$?
t1=$(date +%s%3N)
eq "drain: exit 0" 0 "$rc"
check "drain: quick (in-flight requests only): $((t1 - t0)) ms" test $((t1 - t0)) -lt 5000
eq "drain: nothing left in processing (handed back at once)" 0 "$(rcli LLEN "$Q:processing")"
eq "drain: no lease left" 0 "$(rcli ZCARD "$Q:leases")"
check "drain: unfinished chunks back in pending" test "$(rcli LLEN "$Q:pending")" -ge 1
eq "drain: left the registry" 0 "$(rcli ZCARD farm:workers)"
contains "drain: logged" "draining" "$(cat "$D/d.log")"
curl -s "http://127.0.0.1:$P/control?latency_ms=0" >/dev/null
ef_worker_start "$D/d2.log" --providers "$D/items.json" --concurrency 16; dw2=$EF_LAST_PID
if ef_wait_job "$id" completed 30; then ok "drain: another worker finishes"; else fail "drain: finish" "$(counts "$id")"; fi
eq "drain: exact counts" "540 60 0 0" "$(counts "$id")"
kill_workers "$dw2"

# ---- Redis restarted mid-job (AOF, appendfsync always) ----
ef_redis_stop
rm -f "$EF_TMP"/*.aof "$EF_TMP"/appendonlydir -r 2>/dev/null
ef_redis_start --appendonly yes --appendfsync always
curl -s "http://127.0.0.1:$P/control?latency_ms=5" >/dev/null
seq 1 3000 >"$D/ids3000"
id=$("$ENQ" --provider items --chunk-size 50 "$D/ids3000" 2>/dev/null)
ef_worker_start "$D/rr.log" --providers "$D/items.json" --concurrency 16 --visibility-timeout 5; rw=$EF_LAST_PID
ef_wait_for 20 'test "$(job_field "$id" processed)" -gt 500'
ef_redis_stop
sleep 1.5
ef_redis_start --appendonly yes --appendfsync always
if ef_wait_job "$id" completed 60; then ok "redis restart: job completes"; else fail "redis restart: completes" "$(counts "$id") $(job_field "$id" status)"; fi
eq "redis restart: exact counts" "2700 300 0 0" "$(counts "$id")"
check "redis restart: every entity has an outcome" no_dots "$id"
contains "redis restart: connection loss logged" "connection lost" "$(cat "$D/rr.log")"
check "redis restart: the worker is alive" kill -0 "$rw"
kill_workers "$rw"

# ---- several queues in one worker, JSON logs ----
ef_flush
curl -s "http://127.0.0.1:$P/control?latency_ms=10" >/dev/null
seq 1 600 >"$D/ids600q"
ja=$("$ENQ" --queue qa --provider items --chunk-size 20 "$D/ids600q" 2>/dev/null)
jb=$("$ENQ" --queue qb --provider items --chunk-size 20 "$D/ids600q" 2>/dev/null)
ef_worker_start "$D/mq.log" --providers "$D/items.json" --concurrency 8 --queue qa,qb --log-format json; mq=$EF_LAST_PID
ef_wait_for 30 '[ "$(job_field "$ja" processed qa)" -ge 150 ] || [ "$(job_field "$jb" processed qb)" -ge 150 ]'
pa=$(job_field "$ja" processed qa); pb=$(job_field "$jb" processed qb)
check "two queues served side by side ($pa and $pb done when one passed 150)" test "$pa" -gt 30 -a "$pb" -gt 30
ef_wait_job "$ja" completed 60 qa; ef_wait_job "$jb" completed 60 qb
eq "queue qa: exact" "540 60" "$(job_field "$ja" updated qa) $(job_field "$ja" not_found qa)"
eq "queue qb: exact" "540 60" "$(job_field "$jb" updated qb) $(job_field "$jb" not_found qb)"
check "--log-format json: every line is a JSON object" python3 -c '
import json, sys
lines = [l for l in open(sys.argv[1]) if l.strip()]
assert lines
for l in lines:
    d = json.loads(l)
    assert {"ts", "level", "program", "pid", "msg"} <= d.keys()
' "$D/mq.log"
contains "--log-format json: lifecycle line" "job $ja starting" "$(cat "$D/mq.log")"
kill_workers "$mq"
curl -s "http://127.0.0.1:$P/control?latency_ms=0" >/dev/null

# ---- hostile Redis contents ----
ef_flush
ef_worker_start "$D/h.log" --providers "$D/items.json" --concurrency 8 --max-attempts 2; hw=$EF_LAST_PID
rcli SET "$Q:result:items:2" not-a-hash >/dev/null
id=$(seq 1 5 | "$ENQ" --provider items --chunk-size 5 - 2>/dev/null)
if ef_wait_job "$id" completed 20; then ok "wrong-type result key: job completes"; else fail "wrong-type result key" "$(counts "$id")"; fi
eq "wrong-type result key: only that entity errs" "4 0 0 1" "$(counts "$id")"
contains "wrong-type result key: error says why" "WRONGTYPE" "$(rcli LRANGE "$Q:job:$id:errors" 0 0)"
check "wrong-type result key: no ack storm in the log" test "$(grep -c 'ack of chunk' "$D/h.log")" -le 3
redis_eval() { rcli --eval "$EF_ROOT/scripts/$1.lua" "${@:2}"; }
redis_eval job_create "$Q:job:BAD1" "$Q:jobs" "$Q:enqueuing" "$Q:notify" "$Q:settings" farm:queues farm:providers , BAD1 default items item 50 0 normal 30000 >/dev/null
redis_eval job_append "$Q:job:BAD1" "$Q:job:BAD1:chunks" "$Q:enqueuing" , BAD1 30000 0 1 '{"id":"1"}' >/dev/null
rcli HSET "$Q:job:BAD1:chunks" 0 'not json' >/dev/null
redis_eval job_seal "$Q:job:BAD1" "$Q:pending" "$Q:enqueuing" , BAD1 1 1 "$Q:events" 0 >/dev/null
if ef_wait_job BAD1 completed 20; then ok "corrupt chunk: reaches the dead list, job completes"; else fail "corrupt chunk" "status $(job_field BAD1 status) attempts $(rcli HGET "$Q:job:BAD1:attempts" 0)"; fi
eq "corrupt chunk: its entity is an error" "0 0 0 1" "$(counts BAD1)"
id=$(seq 1 5 | "$ENQ" --provider items --chunk-size 5 - 2>/dev/null)
if ef_wait_job "$id" completed 20; then ok "corrupt chunk: the worker still takes work"; else fail "worker wedged after a corrupt chunk" "$(counts "$id")"; fi
kill_workers "$hw"

# ---- misuse ----
out=$("$BIN/worker" 2>&1); eq "worker without --providers: exit 1" 1 $?
contains "worker without --providers: message" "--providers FILE is required" "$out"
echo '{"providers": {"x": {"steps": []}}}' >"$D/bad.json"
out=$("$BIN/worker" --providers "$D/bad.json" 2>&1); eq "bad recipe: exit 1" 1 $?
contains "bad recipe: names the recipe" "'x'" "$out"
out=$("$BIN/worker" --providers "$D/items.json" --concurrency 0 2>&1); contains "bad concurrency" "--concurrency must be" "$out"
out=$("$BIN/worker" --providers "$D/items.json" --queue 'a{b' 2>&1); contains "bad queue" "not a valid queue name" "$out"

ef_finish
