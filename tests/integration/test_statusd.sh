#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# statusd against a real redis-server: every route and every error code,
# ETag/304, job creation through the same scripts as the enqueuer (same
# chunks), the results export equal to `enqueuer results`, Server-Sent
# Events while a fake worker moves a job, the token rule, and robustness:
# malformed requests, bad methods, huge headers, a slowloris client, clients
# that hang up mid-response, 10k keep-alive requests on one connection,
# 10k pipelined ones, the connection cap, and Redis stopped and restarted
# while clients poll.  statusd must survive all of it and exit 0 on SIGTERM.
source "$(dirname "$0")/lib.sh"
ef_setup
SD="$BIN/statusd"
ENQ="$BIN/enqueuer"
Q='farm:{default}'
D=$EF_TMP

# ---- helpers ----

# start_sd NAME ARGS...: starts statusd on a free port; sets PORT and PID
start_sd() {
  local name=$1; shift
  rm -f "$D/$name.port"
  ef_spawn "$D/$name.log" "$SD" --listen 127.0.0.1:0 --port-file "$D/$name.port" "$@"
  PID=$EF_LAST_PID
  if ! ef_wait_for 5 test -s "$D/$name.port"; then
    fail "statusd $name starts" "$(cat "$D/$name.log")"; ef_finish
  fi
  PORT=$(cat "$D/$name.port")
}
code() { curl -s -o /dev/null -w '%{http_code}' "$@"; }
# jget JSON PATH: a field of a JSON document (python3 is a test dependency)
jget() {
  python3 -c 'import json,sys
v=json.loads(sys.argv[1])
for k in sys.argv[2].split("."):
    v = v[int(k)] if isinstance(v, list) else v.get(k)
print(json.dumps(v) if isinstance(v,(dict,list,bool)) or v is None else v)' "$1" "$2" 2>/dev/null
}
jtype() { python3 -c 'import json,sys
v=json.loads(sys.argv[1])
for k in sys.argv[2].split("."):
    v = v[int(k)] if isinstance(v, list) else v.get(k)
print(type(v).__name__)' "$1" "$2" 2>/dev/null; }
alive() { kill -0 "$1" 2>/dev/null; }

cat >"$D/raw.py" <<'PY'
# Raw HTTP client for the robustness checks (no library would send these).
import socket, struct, sys, threading, time
cmd, port = sys.argv[1], int(sys.argv[2])
def conn():
    return socket.create_connection(("127.0.0.1", port), timeout=5)
def unesc(s):
    return s.encode("latin-1").decode("unicode_escape").encode("latin-1")
def read_until_close(s, limit):
    data, end = b"", time.time() + limit
    s.settimeout(0.1)
    while time.time() < end:
        try:
            c = s.recv(65536)
        except socket.timeout:
            continue
        except OSError:
            break
        if not c:
            break
        data += c
    return data
def read_response(f):
    line = f.readline()
    if not line:
        return None, b""
    status = int(line.split()[1])
    length, chunked = 0, False
    while True:
        h = f.readline()
        if h in (b"\r\n", b"\n", b""):
            break
        k, _, v = h.partition(b":")
        if k.strip().lower() == b"content-length":
            length = int(v.strip())
    return status, (f.read(length) if length and status not in (204, 304) else b"")
if cmd == "send":  # send DATA, print what comes back until the server closes
    s = conn()
    s.sendall(unesc(sys.argv[3]))
    sys.stdout.write(read_until_close(s, float(sys.argv[4]) if len(sys.argv) > 4 else 3).decode("latin-1"))
elif cmd == "slowloris":  # a header line every 100 ms; prints the answer and when it came
    s = conn(); t0 = time.time()
    s.sendall(b"GET /health HTTP/1.1\r\nHost: a\r\n")
    s.settimeout(0.1); got = b""
    while time.time() - t0 < float(sys.argv[3]):
        try:
            s.sendall(b"X-Slow: 1\r\n")
        except OSError:
            break
        try:
            c = s.recv(4096)
            if not c:
                break
            got += c
        except socket.timeout:
            pass
        except OSError:
            break
    print(got.split(b"\r\n")[0].decode(), "%.1f" % (time.time() - t0))
elif cmd == "sequential":  # N requests one after the other on one keep-alive connection
    n, path = int(sys.argv[3]), sys.argv[4]
    s = conn(); f = s.makefile("rb")
    ok = 0
    req = ("GET %s HTTP/1.1\r\nHost: a\r\n\r\n" % path).encode()
    for _ in range(n):
        s.sendall(req)
        st, _ = read_response(f)
        if st == 200:
            ok += 1
    print(ok)
elif cmd == "pipeline":  # N requests written at once, replies read as they come
    n, path = int(sys.argv[3]), sys.argv[4]
    s = conn(); f = s.makefile("rb")
    req = ("GET %s HTTP/1.1\r\nHost: a\r\n\r\n" % path).encode()
    t = threading.Thread(target=lambda: s.sendall(req * n)); t.start()
    ok = 0
    for _ in range(n):
        st, _ = read_response(f)
        if st is None:
            break
        if st == 200:
            ok += 1
    t.join(); print(ok)
elif cmd == "hangup":  # ask for PATH, read K bytes, reset the connection
    path, k, times = sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
    for _ in range(times):
        s = conn()
        s.sendall(("GET %s HTTP/1.1\r\nHost: a\r\n\r\n" % path).encode())
        got = 0
        while got < k:
            c = s.recv(min(65536, k - got))
            if not c:
                break
            got += len(c)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()
    print("done")
elif cmd == "cap":  # hold N idle connections, then one more request; prints its status
    n = int(sys.argv[3])
    held = [conn() for _ in range(n)]
    time.sleep(0.2)
    s = conn()
    s.sendall(b"GET /health HTTP/1.1\r\nHost: a\r\n\r\n")
    print(read_until_close(s, 2).split(b"\r\n")[0].decode())
    for h in held:
        h.close()
elif cmd == "idle":  # open a connection, say nothing; prints seconds until the server closes it
    s = conn(); t0 = time.time()
    read_until_close(s, float(sys.argv[3]))
    print("%.1f" % (time.time() - t0))
PY
raw() { python3 "$D/raw.py" "$@"; }
status_of() { head -1 | cut -d' ' -f2; }

# a fake worker's heartbeat, stats and rate-limit bucket
fake_farm() {
  local now; now=$(($(date +%s%N) / 1000000))
  # w-gone: a fresh registry entry whose hash is gone (listed, not alive);
  # w-dead: a heartbeat a minute old (past the TTL: neither listed nor counted)
  rcli ZADD farm:workers "$now" w1 "$((now - 2000))" w-gone "$((now - 60000))" w-dead >/dev/null
  rcli HSET farm:worker:w1 id w1 host h1 pid 4242 version 0.1.0 queues default concurrency 8 \
    state running in_flight 3 processed 120 errors 2 started_at "$((now - 5000))" last_seen "$now" >/dev/null
  rcli EXPIRE farm:worker:w1 60 >/dev/null
  rcli HSET "$Q:stats" updated 5 conflicts 1 not_found 2 errors 3 cached 4 requests 11 \
    responses_2xx 7 responses_4xx 2 responses_429 1 responses_5xx 1 transport_errors 1 ratelimit_waits 9 odd_counter 3 >/dev/null
  rcli HSET farm:providers items '{"rate":{"requests":200}}' >/dev/null
  rcli HSET 'farm:ratelimit:{items}' tokens 7.5 rate 200 burst 10 >/dev/null
}

# ==== start ====
start_sd A --header-timeout-ms 3000
A=$PORT; PA=$PID; U="http://127.0.0.1:$A"
contains "logs where it listens" "listening on 127.0.0.1:0 (port $A)" "$(cat "$D/A.log")"

# ---- flags ----
eq "--version" "statusd 0.1.0" "$("$SD" --version)"
contains "--help lists --listen" "--listen HOST:PORT" "$("$SD" --help)"
"$SD" --bogus >/dev/null 2>"$D/err"; eq "unknown flag exits 2" 2 $?
"$SD" --listen 0.0.0.0:0 --redis "$REDIS_URL" >/dev/null 2>"$D/err"; rc=$?
eq "refuses to listen beyond loopback without a token" 2 $rc
contains "says why" "without a token" "$(cat "$D/err")"
STATUSD_TOKEN=t "$SD" --listen "0.0.0.0:0" --port-file "$D/pub.port" >"$D/pub.log" 2>&1 & pub=$!
EF_PIDS+=("$pub")
ef_wait_for 5 test -s "$D/pub.port"; check "starts beyond loopback with \$STATUSD_TOKEN" alive $pub
kill -TERM $pub; wait $pub; eq "SIGTERM: exit 0" 0 $?
contains "SIGTERM: loop closed" "statusd stopped" "$(cat "$D/pub.log")"
"$SD" --listen "[::1]:0" --read-only --port-file "$D/ro.port" >"$D/ro.log" 2>&1 & ro=$!
EF_PIDS+=("$ro")
if ef_wait_for 5 test -s "$D/ro.port"; then
  eq "read-only: POST refused (403)" 403 "$(code -X POST "http://[::1]:$(cat "$D/ro.port")/jobs" -d '{}')"
else
  skip "read-only on ::1" "no IPv6 loopback here"
fi
kill -TERM $ro; wait $ro

# ---- static and health ----
ef_flush; fake_farm
r=$(curl -si "$U/")
contains "GET / is the dashboard" "text/html" "$r"
contains "dashboard names the farm" "enrichfarm" "$r"
eq "dashboard script" 200 "$(code "$U/dashboard.js")"
eq "dashboard style" 200 "$(code "$U/dashboard.css")"
h=$(curl -s "$U/health")
eq "health ok" ok "$(jget "$h" status)"
eq "health has the Redis round trip as a number" int "$(jtype "$h" redis_rtt_us)"
r=$(curl -sI "$U/health")
contains "HEAD: headers" "200 OK" "$r"
eq "HEAD: no body" 0 "$(curl -s -X HEAD --max-time 2 "$U/health" 2>/dev/null | wc -c)"

# ---- GET /jobs/ID ----
seq 1 120 >"$D/ids"
id=$("$ENQ" --provider items --chunk-size 50 --job-id J1 "$D/ids" 2>/dev/null)
eq "a job to look at" J1 "$id"
j=$(curl -s "$U/jobs/J1")
eq "job total is a number" int "$(jtype "$j" total)"
eq "job total" 120 "$(jget "$j" total)"
eq "dry_run is a boolean" bool "$(jtype "$j" dry_run)"
eq "progress_percent" 0 "$(jget "$j" progress_percent)"
eq "eta unknown before start" null "$(jget "$j" eta_s)"
contains "ISO time beside ms" "created_at_iso" "$j"
now=$(($(date +%s%N) / 1000000))
rcli HSET "$Q:job:J1" status running started_at $((now - 10000)) processed 30 updated 25 errors 5 updated_at "$now" >/dev/null
j=$(curl -s "$U/jobs/J1")
eq "progress_percent after progress" 25 "$(jget "$j" progress_percent)"
eq "rate_per_s is a number" number "$(jtype "$j" rate_per_s | sed "s/^int$/number/; s/^float$/number/")"
eq "eta_s is a number" int "$(jtype "$j" eta_s)"
etag=$(curl -sI "$U/jobs/J1" | tr -d '\r' | sed -n 's/^ETag: //Ip')
check "ETag present" test -n "$etag"
eq "If-None-Match: 304" 304 "$(code -H "If-None-Match: $etag" "$U/jobs/J1")"
eq "If-None-Match in a list: 304" 304 "$(code -H "If-None-Match: \"x\", W/$etag" "$U/jobs/J1")"
eq "If-None-Match other: 200" 200 "$(code -H 'If-None-Match: "nope"' "$U/jobs/J1")"
rcli HINCRBY "$Q:job:J1" processed 1 >/dev/null
eq "changed job: 200 again" 200 "$(code -H "If-None-Match: $etag" "$U/jobs/J1")"
eq "unknown job: 404" 404 "$(code "$U/jobs/NOPE")"
e=$(curl -s "$U/jobs/NOPE")
eq "error JSON: message" "job NOPE not found in queue default" "$(jget "$e" error)"
eq "error JSON: status is a number" int "$(jtype "$e" status)"
eq "bad job id: 400" 400 "$(code "$U/jobs/bad%7Bid%7D")"
eq "bad queue name: 400" 400 "$(code "$U/jobs/J1?queue=a%7Bb")"
eq "other queue: 404" 404 "$(code "$U/jobs/J1?queue=other")"

# ---- GET /jobs (list, filters, pagination) ----
for n in 2 3 4 5; do "$ENQ" --provider items --job-id "J$n" "$D/ids" >/dev/null 2>&1; done
rcli HSET "$Q:job:J3" status completed >/dev/null
l=$(curl -s "$U/jobs?limit=2")
eq "list: limit" 2 "$(jget "$l" count)"
eq "list: newest first" J5 "$(jget "$l" jobs.0.id)"
seen=""; cur=""; pages=0
while :; do
  l=$(curl -s "$U/jobs?limit=2${cur:+&cursor=$cur}")
  for i in 0 1; do v=$(jget "$l" "jobs.$i.id" 2>/dev/null); [ -n "$v" ] && [ "$v" != null ] && seen="$seen $v"; done
  cur=$(jget "$l" next_cursor); pages=$((pages + 1))
  [ "$cur" = null ] || [ $pages -gt 5 ] && break
done
eq "list: cursor pages through every job once" " J5 J4 J3 J2 J1" "$seen"
l=$(curl -s "$U/jobs?status=completed")
eq "list: status filter" "J3 1" "$(jget "$l" jobs.0.id) $(jget "$l" count)"
eq "list: limit 0 is 400" 400 "$(code "$U/jobs?limit=0")"
eq "list: bad status is 400" 400 "$(code "$U/jobs?status=bogus")"
eq "list: bad cursor is 400" 400 "$(code "$U/jobs?cursor=xyz")"
eq "list: empty queue" 0 "$(jget "$(curl -s "$U/jobs?queue=empty")" count)"

# ---- errors and results ----
rcli LPUSH "$Q:job:J1:errors" '{"id":"7","chunk":0,"index":6,"error":"HTTP 500","at":1}' \
  '{"id":"9","chunk":0,"index":8,"error":"timeout","at":2}' >/dev/null
e=$(curl -s "$U/jobs/J1/errors")
eq "errors: total" 2 "$(jget "$e" total)"
eq "errors: newest first, as JSON" timeout "$(jget "$e" errors.0.error)"
eq "errors: limit" 1 "$(jget "$(curl -s "$U/jobs/J1/errors?limit=1")" errors | python3 -c 'import json,sys;print(len(json.load(sys.stdin)))')"
eq "errors of an unknown job: 404" 404 "$(code "$U/jobs/NOPE/errors")"
rcli HSET "$Q:job:J1:outcomes" 0 "uuuuuuenec$(printf 'u%.0s' $(seq 1 40))" 1 "$(printf '.%.0s' $(seq 1 50))" >/dev/null
rcli HSET "$Q:job:J1:results" 0 $'0\t{"title":"One"}\n1\t{"title":"Two"}\n' >/dev/null
curl -s "$U/jobs/J1/results" >"$D/res.http"
"$ENQ" results J1 >"$D/res.enq" 2>/dev/null
eq "results: one line per entity" 120 "$(wc -l <"$D/res.http")"
check "results: the same lines as 'enqueuer results'" cmp "$D/res.http" "$D/res.enq"
eq "results: first line" '{"entity":{"id":"1"},"outcome":"updated","result":{"title":"One"}}' "$(head -1 "$D/res.http")"
eq "results: ?outcome=errors" 2 "$(curl -s "$U/jobs/J1/results?outcome=errors" | wc -l)"
eq "results: bad outcome 400" 400 "$(code "$U/jobs/J1/results?outcome=maybe")"
r=$(curl -si "$U/jobs/J1/results" | tr -d '\r')
contains "results: streamed (chunked)" "Transfer-Encoding: chunked" "$r"
contains "results: NDJSON type" "application/x-ndjson" "$r"
eq "results of an unknown job: 404" 404 "$(code "$U/jobs/NOPE/results")"
r=$(curl -s --http1.0 "$U/jobs/J1/results" | wc -l)
eq "results over HTTP/1.0 (close-delimited)" 120 "$r"

# ---- queues, workers, metrics ----
"$ENQ" --provider items --priority high --chunk-size 10 --job-id H1 "$D/ids" >/dev/null 2>&1
qs=$(curl -s "$U/queues")
eq "queues: name" default "$(jget "$qs" queues.0.name)"
eq "queues: pending" $((3 * 5 + 12)) "$(jget "$qs" queues.0.pending)"
eq "queues: high-priority chunks waiting" 12 "$(jget "$qs" queues.0.high_waiting)"
eq "queues: not paused" false "$(jget "$qs" queues.0.paused)"
rcli LPUSH "$Q:dead" J1:9 >/dev/null; rcli RPUSH "$Q:processing" J1:1 >/dev/null
rcli ZADD "$Q:leases" 99999999999999 J1:1 >/dev/null
qs=$(curl -s "$U/queues")
eq "queues: dead, processing, leased" "1 1 1" "$(jget "$qs" queues.0.dead) $(jget "$qs" queues.0.processing) $(jget "$qs" queues.0.leased)"
fake_farm # fresh heartbeats: a slow machine may have spent the TTL since the last
w=$(curl -s "$U/workers")
eq "workers: registered (a heartbeat past the TTL is not)" 2 "$(jget "$w" count)"
eq "workers: alive" 1 "$(jget "$w" alive)"
eq "workers: newest first" w1 "$(jget "$w" workers.0.id)"
eq "workers: numbers" "int 3" "$(jtype "$w" workers.0.pid) $(jget "$w" workers.0.in_flight)"
eq "workers: one whose hash expired is not alive" "w-gone false" "$(jget "$w" workers.1.id) $(jget "$w" workers.1.alive)"
m=$(curl -s "$U/metrics")
contains "metrics: queue depth" "enrichfarm_queue_pending{queue=\"default\"} 27" "$m"
contains "metrics: dead" "enrichfarm_queue_dead{queue=\"default\"} 1" "$m"
contains "metrics: jobs by status" "enrichfarm_jobs{queue=\"default\",status=\"completed\"} 1" "$m"
contains "metrics: entities by outcome" "enrichfarm_entities_total{queue=\"default\",outcome=\"not_found\"} 2" "$m"
contains "metrics: provider responses by class" "enrichfarm_provider_responses_total{queue=\"default\",class=\"429\"} 1" "$m"
contains "metrics: transport errors" "class=\"transport_error\"} 1" "$m"
contains "metrics: rate-limit waits" "enrichfarm_ratelimit_waits_total{queue=\"default\"} 9" "$m"
contains "metrics: rate-limit tokens" "enrichfarm_ratelimit_tokens{provider=\"items\"} 7.5" "$m"
contains "metrics: any other counter" "enrichfarm_queue_stat_total{queue=\"default\",field=\"odd_counter\"} 3" "$m"
contains "metrics: workers alive" "enrichfarm_workers_alive 1" "$m"
contains "metrics: TYPE lines" "# TYPE enrichfarm_entities_total counter" "$m"
contains "metrics: Prometheus content type" "text/plain; version=0.0.4" "$(curl -sI "$U/metrics")"

# ---- POST /jobs ----
r=$(curl -si -X POST "$U/jobs" -H 'Content-Type: application/json' \
  -d '{"provider":"items","entities":[{"title":"Up","id":"a1","year":2009},{"id":42}],"chunk_size":1,"job_id":"P1"}' | tr -d '\r')
contains "POST /jobs: 201" "201 Created" "$r"
contains "POST /jobs: Location" "Location: /jobs/P1?queue=default" "$r"
eq "POST /jobs: entity with id first, as the enqueuer stores it" '{"id":"a1","title":"Up","year":2009}' "$(rcli HGET "$Q:job:P1:chunks" 0)"
eq "POST /jobs: numeric id as a string" '{"id":"42"}' "$(rcli HGET "$Q:job:P1:chunks" 1)"
printf '{"title":"Up","id":"a1","year":2009}\n{"id":42}\n' >"$D/p.ndjson"
"$ENQ" --provider items --chunk-size 1 --job-id P2 "$D/p.ndjson" >/dev/null 2>&1
eq "POST /jobs: same chunks as the enqueuer" "$(rcli HGETALL "$Q:job:P2:chunks" | tr '\n' ' ')" "$(rcli HGETALL "$Q:job:P1:chunks" | tr '\n' ' ')"
for f in status total chunks_total chunk_size sealed priority dry_run entity_type provider; do
  [ "$(rcli HGET "$Q:job:P1" $f)" = "$(rcli HGET "$Q:job:P2" $f)" ] || fail "POST job field $f" "$(rcli HGET "$Q:job:P1" $f) vs $(rcli HGET "$Q:job:P2" $f)"
done
ok "POST /jobs: same job fields as the enqueuer"
eq "POST /jobs: chunk refs pending" 2 "$(rcli LRANGE "$Q:pending" 0 -1 | grep -c '^P1:')"
p=$(curl -s -X POST "$U/jobs" -d '{"provider":"items","queue":"other","ids":["x","y","z"],"priority":"high","dry_run":true}')
eq "POST /jobs: ids, queue, priority, dry run" "other 3 high true" "$(jget "$p" queue) $(jget "$p" total) $(jget "$p" priority) $(jget "$p" dry_run)"
check "POST /jobs: queue registered" sh -c "redis-cli -s '$EF_TMP/redis.sock' SISMEMBER farm:queues other | grep -q 1"
post() { code -X POST "$U/jobs" -d "$1"; }
eq "POST: not JSON 400" 400 "$(post 'nope')"
eq "POST: not an object 400" 400 "$(post '[1]')"
eq "POST: no provider 400" 400 "$(post '{"ids":["1"]}')"
eq "POST: unknown provider 400" 400 "$(post '{"provider":"nosuch","ids":["1"]}')"
eq "POST: empty ids 400" 400 "$(post '{"provider":"items","ids":[]}')"
eq "POST: both ids and entities 400" 400 "$(post '{"provider":"items","ids":["1"],"entities":[{"id":"2"}]}')"
eq "POST: entity without id 400" 400 "$(post '{"provider":"items","entities":[{"name":"x"}]}')"
eq "POST: bad chunk_size 400" 400 "$(post '{"provider":"items","ids":["1"],"chunk_size":0}')"
eq "POST: bad priority 400" 400 "$(post '{"provider":"items","ids":["1"],"priority":"urgent"}')"
eq "POST: bad queue 400" 400 "$(post '{"provider":"items","ids":["1"],"queue":"a:b"}')"
eq "POST: existing job id 409" 409 "$(post '{"provider":"items","ids":["1"],"job_id":"J1"}')"
eq "POST: nothing left of refused jobs" 0 "$(rcli --scan --pattern "$Q:job:*" | grep -vc -E ':(J[1-5]|H1|P1|P2)(:|$)')"
python3 -c 'import json;print(json.dumps({"provider":"items","ids":[str(i)*600 for i in range(2000)]}))' >"$D/big.json"
eq "POST: body over 1 MiB: 413" 413 "$(code -X POST "$U/jobs" --data-binary @"$D/big.json")"
eq "POST with Expect: 100-continue" 201 "$(code -X POST -H 'Expect: 100-continue' "$U/jobs" -d '{"provider":"items","ids":["e1"]}')"

# ---- control verbs ----
c=$(curl -s -X POST "$U/jobs/J2/pause")
eq "pause" paused "$(jget "$c" status)"
eq "resume" queued "$(jget "$(curl -s -X POST "$U/jobs/J2/resume")" status)"
eq "cancel" cancelled "$(jget "$(curl -s -X POST "$U/jobs/J2/cancel")" status)"
eq "pause a cancelled job: 409" 409 "$(code -X POST "$U/jobs/J2/pause")"
eq "cancel an unknown job: 404" 404 "$(code -X POST "$U/jobs/NOPE/cancel")"
eq "queue pause" paused "$(jget "$(curl -s -X POST "$U/queues/default/pause")" state)"
eq "queues: paused" true "$(jget "$(curl -s "$U/queues")" queues.0.paused)"
eq "queue resume" running "$(jget "$(curl -s -X POST "$U/queues/default/resume")" state)"
r=$(curl -s -X POST "$U/jobs/J1/retry-errors")
eq "retry-errors: a new job of the errored entities" "2 J1" "$(jget "$r" total) $(jget "$r" retry_of)"
nid=$(jget "$r" id)
eq "retry-errors: the errored entities" "$(printf '{"id":"7"}\n{"id":"9"}')" "$(rcli HGET "$Q:job:$nid:chunks" 0)"
eq "retry-errors: nothing to retry 409" 409 "$(code -X POST "$U/jobs/J4/retry-errors")"
eq "retry-errors: unknown job 404" 404 "$(code -X POST "$U/jobs/NOPE/retry-errors")"

# ---- methods and routes ----
r=$(curl -si -X PUT "$U/jobs" | tr -d '\r')
contains "PUT /jobs: 405" "405 Method Not Allowed" "$r"
contains "405 says what is allowed" "Allow: GET, HEAD, POST" "$r"
eq "DELETE /health: 405" 405 "$(code -X DELETE "$U/health")"
eq "GET on a POST route: 405" 405 "$(code "$U/jobs/J1/cancel")"
eq "POST on a GET route: 405" 405 "$(code -X POST "$U/metrics")"
eq "unknown method: 405" 405 "$(code -X BREW "$U/jobs")"
eq "unknown route: 404" 404 "$(code "$U/nope")"
eq "unknown job sub-route: 404" 404 "$(code "$U/jobs/J1/nope")"
eq "404 is JSON" '{"error":"no such route","status":404}' "$(curl -s "$U/nope")"

# ---- token rule ----
start_sd T --token s3cret
T="http://127.0.0.1:$PORT"; PT=$PID
r=$(curl -si -X POST "$T/jobs/J3/pause" | tr -d '\r')
contains "token: missing -> 401" "401 Unauthorized" "$r"
contains "token: WWW-Authenticate" "WWW-Authenticate: Bearer" "$r"
eq "token: wrong -> 401" 401 "$(code -X POST -H 'Authorization: Bearer nope' "$T/jobs/J4/pause")"
eq "token: right -> 200" 200 "$(code -X POST -H 'Authorization: Bearer s3cret' "$T/jobs/J4/pause")"
eq "token: POST /jobs with it -> 201" 201 "$(code -X POST -H 'Authorization: Bearer s3cret' "$T/jobs" -d '{"provider":"items","ids":["t"]}')"
eq "token: reads need none" 200 "$(code "$T/jobs/J4")"
kill -TERM $PT; wait $PT; eq "token instance exits 0" 0 $?

# ---- Server-Sent Events ----
ef_flush; fake_farm
"$ENQ" --provider items --chunk-size 10 --job-id S1 "$D/ids" >/dev/null 2>&1
timeout 8 curl -sN "$U/jobs/S1/events" >"$D/sse.job" 2>/dev/null & sse1=$!
timeout 8 curl -sN "$U/events?queue=default" >"$D/sse.queue" 2>/dev/null & sse2=$!
ef_wait_for 3 grep -q '"status":"queued"' "$D/sse.job"
eq "SSE: clients counted" 2 "$(jget "$(curl -s "$U/health")" event_streams)"
start=$(($(date +%s%N) / 1000000))
for n in 20 40 60 80 100; do
  rcli HSET "$Q:job:S1" status running processed $n updated $n started_at "$start" updated_at $(($(date +%s%N) / 1000000)) >/dev/null
  rcli PUBLISH "$Q:events" "{\"job\":\"S1\",\"processed\":$n}" >/dev/null
  sleep 0.25
done
rcli HSET "$Q:job:S1" status completed processed 120 updated 120 chunks_done 12 completed_at $(($(date +%s%N) / 1000000)) >/dev/null
rcli PUBLISH "$Q:events" '{"job":"S1","status":"completed"}' >/dev/null
curl -s -X POST "$U/queues/default/pause" >/dev/null
wait $sse1; rc=$?
eq "SSE: the job stream ends by itself when the job ends" 0 $rc
sleep 0.3; kill $sse2 2>/dev/null; wait $sse2 2>/dev/null
contains "SSE: text/event-stream snapshot first" 'event: job' "$(head -5 "$D/sse.job")"
got=$(grep -o '"processed":[0-9]*' "$D/sse.job" | cut -d: -f2 | tr '\n' ' ')
eq "SSE: progress as it happened" "0 20 40 60 80 100 120 " "$got"
contains "SSE: end event" 'event: end' "$(cat "$D/sse.job")"
contains "SSE: queue stream gets job progress" '"processed":60' "$(cat "$D/sse.queue")"
contains "SSE: queue stream gets queue messages" '{"queue_paused":true}' "$(cat "$D/sse.queue")"
eq "SSE: unknown job 404" 404 "$(code "$U/jobs/NOPE/events")"
timeout 3 curl -sN "$U/jobs/S1/events" >"$D/sse.done" 2>/dev/null
contains "SSE: a finished job: snapshot and end at once" 'event: end' "$(cat "$D/sse.done")"
curl -s -X POST "$U/queues/default/resume" >/dev/null

# ---- malformed requests ----
r=$(raw send "$A" 'GARBAGE\r\n\r\n')
eq "malformed request line: 400" 400 "$(status_of <<<"$r")"
contains "malformed: JSON error" '"status":400' "$r"
eq "TLS hello: 400" 400 "$(raw send "$A" '\x16\x03\x01\x00\xa5\x01\x00\x00' | status_of)"
eq "HTTP/2.0: 505" 505 "$(raw send "$A" 'GET / HTTP/2.0\r\nHost: a\r\n\r\n' | status_of)"
eq "HTTP/1.1 without Host: 400" 400 "$(raw send "$A" 'GET /health HTTP/1.1\r\n\r\n' | status_of)"
eq "HTTP/1.0 without Host: fine" 200 "$(raw send "$A" 'GET /health HTTP/1.0\r\n\r\n' | status_of)"
eq "chunked request body: 501" 501 "$(raw send "$A" 'POST /jobs HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n' | status_of)"
eq "bad Content-Length: 400" 400 "$(raw send "$A" 'POST /jobs HTTP/1.1\r\nHost: a\r\nContent-Length: x\r\n\r\n' | status_of)"
eq "folded header: 400" 400 "$(raw send "$A" 'GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n' | status_of)"
eq "path without slash: 400" 400 "$(raw send "$A" 'GET health HTTP/1.1\r\nHost: a\r\n\r\n' | status_of)"
big=$(head -c 10240 /dev/zero | tr '\0' a)
eq "10 KB header: 431" 431 "$(code -H "X-Big: $big" "$U/health")"
eq "10 KB request line: 431" 431 "$(code "$U/health?x=$big")"
many=(); for i in $(seq 1 80); do many+=(-H "X-$i: v"); done
eq "too many headers: 431" 431 "$(code "${many[@]}" "$U/health")"
check "alive after malformed input" alive $PA

# ---- keep-alive, pipelining, hang-ups ----
eq "10k keep-alive requests on one connection" 10000 "$(raw sequential "$A" 10000 /jobs/S1)"
eq "10k pipelined requests on one connection" 10000 "$(raw pipeline "$A" 10000 /health)"
seq 1 20000 >"$D/ids20k"
"$ENQ" --provider items --chunk-size 50 --job-id BIG "$D/ids20k" >/dev/null 2>&1
eq "a big export streams" 20000 "$(curl -s "$U/jobs/BIG/results" | wc -l)"
raw hangup "$A" /jobs/BIG/results 20000 20 >/dev/null
raw hangup "$A" /jobs/BIG/results 0 20 >/dev/null
raw hangup "$A" /metrics 0 50 >/dev/null
raw hangup "$A" /jobs/S1/events 100 20 >/dev/null
raw hangup "$A" /jobs/S1/events 0 30 >/dev/null
raw hangup "$A" "/events?queue=default" 0 30 >/dev/null
raw hangup "$A" /jobs/BIG 0 30 >/dev/null
timeout 5 curl -s --limit-rate 20k "$U/jobs/BIG/results" -o /dev/null --max-time 1 2>/dev/null
check "alive after clients hung up mid-response" alive $PA
eq "still answering" 200 "$(code "$U/health")"

# ---- deadlines and the connection cap ----
start_sd B --header-timeout-ms 700 --idle-timeout-ms 700 --max-connections 4
PB=$PID; B=$PORT
r=$(raw slowloris "$B" 5)
eq "slowloris: 408" 408 "$(cut -d' ' -f2 <<<"$r")"
t=$(awk "{print \$NF}" <<<"$r")
check "slowloris: cut off at the header deadline ($t s)" python3 -c "import sys; sys.exit(0 if float('$t') < 2.5 else 1)"
t=$(raw idle "$B" 5)
check "idle connection closed after the idle timeout ($t s)" python3 -c "import sys; sys.exit(0 if 0.5 <= float('$t') < 2.5 else 1)"
r=$(raw cap "$B" 4)
eq "connection cap: 503" 503 "$(cut -d' ' -f2 <<<"$r")"
eq "after the cap frees: 200" 200 "$(code "http://127.0.0.1:$B/health")"
contains "metrics count the rejection" "enrichfarm_statusd_rejected_total 1" "$(curl -s "http://127.0.0.1:$B/metrics")"
kill -TERM $PB; wait $PB; eq "B exits 0" 0 $?

# ---- Redis stopped and started while clients poll ----
ef_flush; fake_farm
"$ENQ" --provider items --job-id R1 "$D/ids" >/dev/null 2>&1
rcli SAVE >/dev/null
( while :; do code "$U/jobs/R1"; echo; sleep 0.05; done ) >"$D/poll" 2>/dev/null & poller=$!
EF_PIDS+=("$poller")
sleep 0.3
ef_redis_stop
sleep 0.5
eq "redis down: health 503" 503 "$(code "$U/health")"
e=$(curl -s "$U/jobs/R1")
eq "redis down: jobs 503 JSON" "redis unavailable 503" "$(jget "$e" error) $(jget "$e" status)"
eq "redis down: metrics 503" 503 "$(code "$U/metrics")"
eq "redis down: POST 503" 503 "$(code -X POST "$U/jobs" -d '{"provider":"items","ids":["1"]}')"
ef_redis_start
check "redis back: health 200 within 5 s" ef_wait_for 5 sh -c "[ \$(curl -s -o /dev/null -w '%{http_code}' $U/health) = 200 ]"
check "redis back: the job again" ef_wait_for 5 sh -c "[ \$(curl -s -o /dev/null -w '%{http_code}' $U/jobs/R1) = 200 ]"
sleep 0.2; kill $poller; wait $poller 2>/dev/null
seq_codes=$(uniq <"$D/poll" | tr '\n' ' ')
contains "poller saw 200, then 503, then 200" "200 503 200" "$seq_codes"
check "poller never lost statusd" sh -c "! grep -qv -E '^(200|503)$' '$D/poll'"
timeout 5 curl -sN "$U/jobs/R1/events" >"$D/sse.after" 2>/dev/null & sse3=$!
ef_wait_for 3 grep -q 'event: job' "$D/sse.after"
rcli HSET "$Q:job:R1" status completed >/dev/null
rcli PUBLISH "$Q:events" '{"job":"R1","status":"completed"}' >/dev/null
wait $sse3
contains "SSE works after the restart" 'event: end' "$(cat "$D/sse.after")"

# ---- shutdown ----
check "A alive at the end" alive $PA
kill -TERM $PA; wait $PA; rc=$?
eq "SIGTERM: exit 0 with every handle closed" 0 $rc
contains "stopped cleanly" "statusd stopped" "$(cat "$D/A.log")"
if grep -q -E 'ERROR: (Address|Leak)Sanitizer|runtime error' "$D"/*.log; then
  fail "sanitizers quiet" "$(grep -h -A5 -E 'Sanitizer|runtime error' "$D"/*.log | head -30)"
else
  ok "sanitizers quiet"
fi
ef_finish
