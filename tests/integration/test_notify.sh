#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# ef-test: parallel
# Completion webhooks (docs/webhooks.md): when a job ends, ONE signed POST
# of its summary, retried with backoff by one sender at a time, the duty
# taken over when its holder dies, a recorded failure once the give-up time
# has passed.  A receiver on 127.0.0.1 (python3 http.server) plays each
# part by its path: /fail3 answers 503 three times then 200, /hang2 answers
# 503, then hangs, then 200, /never never answers, /ok answers 200.  It
# checks every signature with hmac and logs every request.
source "$(dirname "$0")/lib.sh"
ef_setup
ENQ="$BIN/enqueuer"
Q='farm:{default}'
D=$EF_TMP
SECRET='whsec-7f3a9c-only-in-env'
export EF_NOTIFY_SECRET=$SECRET

cat >"$D/recv.py" <<'PY'
import hashlib, hmac, http.server, json, os, sys, threading, time
SECRET = os.environ["EF_NOTIFY_SECRET"].encode()
LOG = sys.argv[1] + ".log"
lock = threading.Lock()
seen, inflight, peak = {}, {}, {}
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        path = self.path
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        want = "sha256=" + hmac.new(SECRET, body, hashlib.sha256).hexdigest()
        sig = self.headers.get("X-Enrichfarm-Signature", "")
        with lock:
            n = seen[path] = seen.get(path, 0) + 1
            inflight[path] = inflight.get(path, 0) + 1
            peak[path] = max(peak.get(path, 0), inflight[path])
        code = 200
        if path == "/fail3" and n <= 3: code = 503
        if path == "/hang2" and n == 1: code = 503
        if path == "/hang2" and n == 2 or path == "/never":
            with open(LOG, "a") as f:
                f.write(json.dumps({"path": path, "n": n, "hanging": True}) + "\n")
            time.sleep(30)
            code = 0
        rec = {"path": path, "n": n, "code": code, "valid": hmac.compare_digest(sig, want),
               "key": self.headers.get("Idempotency-Key"), "body": body.decode(),
               "peak": peak[path]}
        with lock:
            inflight[path] -= 1
            with open(LOG, "a") as f:
                f.write(json.dumps(rec) + "\n")
        if code == 0:
            return
        self.send_response(code)
        self.send_header("Content-Length", "0")
        self.end_headers()
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer.daemon_threads = True
s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write(str(s.server_address[1]))
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
s.serve_forever()
PY
ef_spawn "$D/recv.out" python3 "$D/recv.py" "$D/recv"
ef_wait_for 10 test -s "$D/recv" || { fail "receiver starts" "$(cat "$D/recv.out")"; ef_finish; }
R="http://127.0.0.1:$(cat "$D/recv")"
touch "$D/recv.log"

# rq PATH EXPR: EXPR over the list `r` of finished requests to PATH
rq() {
  python3 -c 'import json,sys
r=[json.loads(l) for l in open(sys.argv[1]) if l.strip()]
r=[x for x in r if x["path"]==sys.argv[2] and not x.get("hanging")]
print(eval(sys.argv[3]))' "$D/recv.log" "$1" "$2" 2>&1
}

ef_mock_start mock || { fail "mockprov starts"; ef_finish; }
cat >"$D/p.json" <<JSON
{"providers": {
  "items": {"steps": [{"method": "GET", "url": "http://127.0.0.1:$MOCK_PORT/item/{id}"}],
            "extract": {"title": "/title"}, "notify": "$R/ok?from=recipe"},
  "plain": {"steps": [{"method": "GET", "url": "http://127.0.0.1:$MOCK_PORT/item/{id}"}],
            "extract": {"title": "/title"}}}}
JSON
NOTIFY_FLAGS=(--notify-timeout 1 --notify-give-up 30)
ef_worker_start "$D/w1.log" --id w1 --queue default,q2 --providers "$D/p.json" "${NOTIFY_FLAGS[@]}"
W1=$EF_LAST_PID
ef_worker_start "$D/w2.log" --id w2 --queue default,q2 --providers "$D/p.json" "${NOTIFY_FLAGS[@]}"
W2=$EF_LAST_PID
# the never-answering receiver's queue: a short give-up time
ef_worker_start "$D/w3.log" --id w3 --queue slow --providers "$D/p.json" --notify-timeout 1 \
  --notify-give-up 3
W3=$EF_LAST_PID
ef_wait_for 10 '[ "$(rcli HEXISTS farm:providers plain)" = 1 ]' || fail "workers register" "$(cat "$D/w1.log")"

printf '1\n2\n3\n' >"$D/ids"
# started first: it takes the longest
nid=$("$ENQ" --queue slow --provider plain --notify "$R/never" "$D/ids" 2>/dev/null)

# ---- fails 3 times, then accepts: exactly one accepted, signed delivery ----
fid=$("$ENQ" --provider items --notify "$R/fail3" "$D/ids" 2>/dev/null)
eq "the job carries its webhook" "$R/fail3 pending" "$(job_field "$fid" notify_url) $(job_field "$fid" notify_status)"
if ef_wait_for 25 '[ "$(job_field "$fid" notify_status)" = delivered ]'; then ok "fail3: delivered"
else fail "fail3: delivered" "$(rcli HGETALL "$Q:job:$fid" | tr '\n' ' ')"; fi
eq "fail3: 4 attempts, 3 refused then 1 accepted" "[503, 503, 503, 200]" "$(rq /fail3 '[x["code"] for x in r]')"
eq "fail3: notify_attempts" 4 "$(job_field "$fid" notify_attempts)"
eq "fail3: every signature valid (hmac in python)" "True" "$(rq /fail3 'len(r) == 4 and all(x["valid"] for x in r)')"
eq "fail3: idempotency key = job id and final status" "$fid:completed" "$(rq /fail3 'sorted(set(x["key"] for x in r))[0]')"
eq "fail3: one sender at a time (never two requests at once)" 1 "$(rq /fail3 'max(x["peak"] for x in r)')"
eq "fail3: the body is the job's summary" "$fid completed 3 3" \
  "$(rq /fail3 '" ".join(str(json.loads(r[-1]["body"])[k]) for k in ("id", "status", "total", "updated"))')"
eq "fail3: the same bytes at every attempt" 1 "$(rq /fail3 'len(set(x["body"] for x in r))')"
contains "fail3: the last failure kept" "HTTP 503" "$(job_field "$fid" notify_error)"
sleep 1.5
eq "fail3: no second delivery later" 4 "$(rq /fail3 'len(r)')"

# ---- a cancelled job notifies too ----
"$ENQ" --queue q2 pause >/dev/null
cid=$("$ENQ" --queue q2 --provider items --notify "$R/ok?c=1" "$D/ids" 2>/dev/null)
"$ENQ" --queue q2 cancel "$cid" >/dev/null
if ef_wait_for 10 '[ "$(job_field "$cid" notify_status q2)" = delivered ]'; then ok "cancelled: delivered"
else fail "cancelled: delivered" "$(rcli HGETALL "farm:{q2}:job:$cid" | tr '\n' ' ')"; fi
eq "cancelled: key and status" "$cid:cancelled cancelled True" \
  "$(rq '/ok?c=1' 'r[0]["key"] + " " + json.loads(r[0]["body"])["status"] + " " + str(r[0]["valid"])')"
"$ENQ" --queue q2 resume >/dev/null

# ---- defaults: the recipe's, else the queue's ----
rid=$("$ENQ" --provider items "$D/ids" 2>/dev/null)
eq "recipe default" "$R/ok?from=recipe" "$(job_field "$rid" notify_url)"
out=$("$ENQ" --queue q2 queue-notify "$R/ok?from=queue")
eq "queue-notify sets" "queue q2 notify $R/ok?from=queue" "$out"
eq "queue-notify shows" "queue q2 notify $R/ok?from=queue" "$("$ENQ" --queue q2 queue-notify)"
qid=$("$ENQ" --queue q2 --provider plain "$D/ids" 2>/dev/null)
eq "queue default (provider without one)" "$R/ok?from=queue" "$(job_field "$qid" notify_url q2)"
pid=$("$ENQ" --queue q2 --provider plain --notify "$R/ok?from=flag" "$D/ids" 2>/dev/null)
eq "--notify wins over the defaults" "$R/ok?from=flag" "$(job_field "$pid" notify_url q2)"
"$ENQ" --queue q2 queue-notify off >/dev/null
nn=$("$ENQ" --queue q2 --provider plain "$D/ids" 2>/dev/null)
eq "no webhook: no notify fields, no entry" "0 0" "$(rcli HEXISTS "farm:{q2}:job:$nn" notify_status) $(rcli ZSCORE 'farm:{q2}:notify' "$nn" | wc -w)"
out=$("$ENQ" --provider items --notify 'ftp://x/' "$D/ids" 2>&1); rc=$?
eq "--notify ftp:// refused" "1" "$rc"
contains "--notify says why" "http:// or https://" "$out"

# ---- POST /jobs with notify; /jobs/ID shows the delivery ----
rm -f "$D/sd.port"
ef_spawn "$D/sd.log" "$BIN/statusd" --listen 127.0.0.1:0 --port-file "$D/sd.port"
if ef_wait_for 5 test -s "$D/sd.port"; then
  S="http://127.0.0.1:$(cat "$D/sd.port")"
  out=$(curl -s -X POST "$S/jobs" -d "{\"provider\": \"plain\", \"ids\": [\"1\", \"2\"], \"notify\": \"$R/ok?via=post\"}")
  sid=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["id"])' "$out" 2>/dev/null)
  if ef_wait_for 10 '[ "$(job_field "$sid" notify_status)" = delivered ]'; then ok "POST /jobs notify: delivered"
  else fail "POST /jobs notify: delivered" "$out $(rcli HGETALL "$Q:job:$sid" | tr '\n' ' ')"; fi
  eq "POST /jobs notify: signed, keyed" "True $sid:completed" "$(rq '/ok?via=post' 'str(r[0]["valid"]) + " " + r[0]["key"]')"
  js=$(curl -s "$S/jobs/$sid")
  eq "/jobs/ID: notify_status, notify_attempts as a number" "delivered 1" \
    "$(python3 -c 'import json,sys; j=json.loads(sys.argv[1]); print(j["notify_status"], json.dumps(j["notify_attempts"]))' "$js")"
  eq "POST /jobs: a bad notify URL is a 400" 400 \
    "$(curl -s -o /dev/null -w '%{http_code}' -X POST "$S/jobs" -d '{"provider": "plain", "ids": ["1"], "notify": "nope"}')"
  check "dashboard shows the webhook" bash -c "curl -s '$S/' '$S/dashboard.js' | grep -q notify_status"
else
  fail "statusd starts" "$(cat "$D/sd.log")"
fi

# ---- the sender SIGKILLed mid-attempt: another takes the duty over ----
hid=$("$ENQ" --provider plain --notify "$R/hang2" "$D/ids" 2>/dev/null)
if ef_wait_for 15 'grep -q "\"/hang2\", \"n\": 2, \"hanging\"" "$D/recv.log"'; then
  owner=$(job_field "$hid" notify_owner)
  case "$owner" in w1) kill -9 "$W1"; other=w2 ;; w2) kill -9 "$W2"; other=w1 ;; *) other="" ;; esac
  check "hang2: the attempt in flight has an owner" test -n "$other"
  if ef_wait_for 20 '[ "$(job_field "$hid" notify_status)" = delivered ]'; then ok "hang2: delivered after the sender died"
  else fail "hang2: delivered after the sender died" "$(rcli HGETALL "$Q:job:$hid" | tr '\n' ' ')"; fi
  eq "hang2: 3 attempts, one accepted" "3 1" "$(job_field "$hid" notify_attempts) $(rq /hang2 'sum(1 for x in r if x["code"] == 200)')"
  check "hang2: the survivor delivered it" grep -q "job $hid webhook delivered" "$D/$other.log"
else
  fail "hang2: the second attempt starts" "$(cat "$D/recv.log")"
fi

# ---- a receiver that never answers: failed after the give-up time ----
if ef_wait_for 20 '[ "$(job_field "$nid" notify_status slow)" = failed ]'; then ok "never: failed"
else fail "never: failed" "$(rcli HGETALL "farm:{slow}:job:$nid" | tr '\n' ' ')"; fi
err=$(job_field "$nid" notify_error slow)
contains "never: the error recorded" "gave up after" "$err"
contains "never: the reason is the timeout" "timed out" "$err"
check "never: at least one attempt" test "$(job_field "$nid" notify_attempts slow)" -ge 1
eq "never: the entry left farm:{slow}:notify" "" "$(rcli ZSCORE 'farm:{slow}:notify' "$nid")"

# ---- scripts/enqueue.sh --notify: the same webhook through redis-cli ----
eid=$("$EF_ROOT/scripts/enqueue.sh" --provider plain --notify "$R/ok?via=sh" "$D/ids" 2>"$D/sh.err")
if ef_wait_for 10 '[ "$(job_field "$eid" notify_status)" = delivered ]'; then ok "enqueue.sh --notify: delivered"
else fail "enqueue.sh --notify: delivered" "$eid $(cat "$D/sh.err")"; fi
out=$("$EF_ROOT/scripts/enqueue.sh" --provider plain --notify 'nope' "$D/ids" 2>&1); rc=$?
eq "enqueue.sh --notify nope: refused by job_create" "1" "$rc"
contains "enqueue.sh --notify nope: says why" "notify url must be" "$out"

# ---- SIGTERM while an attempt is in flight: the worker exits cleanly ----
before=$(grep -c '"/never", "n": [0-9]*, "hanging"' "$D/recv.log")
tid=$("$ENQ" --queue slow --provider plain --notify "$R/never" "$D/ids" 2>/dev/null)
if ef_wait_for 10 '[ "$(grep -c "\"/never\", \"n\": [0-9]*, \"hanging\"" "$D/recv.log")" -gt "$before" ]'; then
  kill -TERM "$W3"
  if ef_wait_for 10 '! kill -0 "$W3"'; then ok "drain with a webhook in flight: exits"
  else fail "drain with a webhook in flight: exits" "$(tail -5 "$D/w3.log")"; fi
  wait "$W3"; eq "drain with a webhook in flight: exit status 0" 0 "$?"
else
  fail "drain: the attempt starts" "$(tail -3 "$D/recv.log")"
fi

# ---- the secret appears nowhere but in the environment ----
dump=$(for k in $(rcli --scan); do
  case $(rcli TYPE "$k") in
    hash) rcli HGETALL "$k" ;; list) rcli LRANGE "$k" 0 -1 ;; zset) rcli ZRANGE "$k" 0 -1 ;;
    set) rcli SMEMBERS "$k" ;; string) rcli GET "$k" ;;
  esac; done)
check "secret: not in Redis" bash -c "! printf '%s' \"\$1\" | grep -q -- '$SECRET'" _ "$dump"
check "secret: not in any log" bash -c "! grep -l -- '$SECRET' '$D'/w*.log '$D'/sd.log"
check "sanitizers quiet" bash -c "! grep -l 'runtime error\|ERROR: AddressSanitizer\|LeakSanitizer' '$D'/*.log"
ef_finish
