#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The adaptive rate of the farm-wide bucket (ratelimit_take.lua,
# ratelimit_penalty.lua, worker/ratelimit.c) against mockprov's own token
# bucket as referee.  The recipe says 20/s, the provider allows 10/s with a
# burst of 5: after the first 10 s at least 90 % of 10/s is accepted and
# under 2 % of the requests are answered 429.  Then the provider raises its
# limit to 20/s: within 30 s the farm runs at 18/s or more.  The same with
# 1 worker and with 3 workers, run side by side (each with its own mockprov,
# queue and provider).  Also: the bucket hash, `enqueuer rate-limit P` and
# statusd-facing fields show the learned rate, and rate headers saying
# nothing is left pause the farm until their reset without any 429.
source "$(dirname "$0")/lib.sh"
ef_setup
ENQ="$BIN/enqueuer"
D=$EF_TMP
RAISE_S=25   # the provider raises its limit this long after the start
END_S=55     # the end of a scenario

# scenario NAME WORKERS: runs one referee scenario; writes NAME.samples
# ("seconds requests responses_429" once a second) and NAME.bucket.
scenario() {
  local name=$1 nw=$2 port pids=() i t0 now
  ef_mock_start "m$name" --catalog 5000 --rate 10 --per 1 --burst 5 || return 1
  port=$MOCK_PORT
  cat >"$D/$name.json" <<JSON
{"providers": {"$name": {
   "steps": [{"url": "http://127.0.0.1:$port/item/{id}"}],
   "extract": {"title": "/title"}, "timeout_ms": 5000, "retries": 20,
   "rate": {"requests": 20, "per_seconds": 1}}}}
JSON
  seq 1 3000 >"$D/$name.ids"
  for i in $(seq "$nw"); do
    ef_worker_start "$D/$name.w$i.log" --queue "$name" --providers "$D/$name.json" --concurrency 16
    pids+=("$EF_LAST_PID")
  done
  ef_wait_for 10 '[ -n "$(rcli HGET farm:providers "$name")" ]'
  "$ENQ" --queue "$name" --provider "$name" --chunk-size 20 "$D/$name.ids" >"$D/$name.job" 2>"$D/$name.enq.log"
  t0=$(python3 -c 'import time; print(time.time())')
  echo "$t0" >"$D/$name.t0"
  : >"$D/$name.samples"
  for i in $(seq 1 $((END_S * 4))); do
    now=$(python3 -c "import time; print('%.2f' % (time.time() - $t0))")
    if [ "${now%.*}" -ge "$END_S" ]; then break; fi
    if [ "${now%.*}" -ge "$RAISE_S" ] && [ ! -e "$D/$name.raised" ]; then
      curl -s "http://127.0.0.1:$port/control?rate=20&burst=5" >/dev/null
      echo "$now" >"$D/$name.raised"
    fi
    echo "$now $(curl -s "http://127.0.0.1:$port/stats" |
      python3 -c 'import json,sys; s=json.load(sys.stdin); print(s["requests"], s["responses_429"])')" >>"$D/$name.samples"
    sleep 0.5
  done
  rcli HGETALL "farm:ratelimit:{$name}" >"$D/$name.bucket"
  "$ENQ" rate-limit "$name" >"$D/$name.show" 2>&1
  for i in "${pids[@]}"; do kill -TERM "$i" 2>/dev/null; done
  for i in "${pids[@]}"; do wait "$i" 2>/dev/null; done
  kill -TERM "$MOCK_PID" 2>/dev/null
}

# judge NAME: the referee's verdict on NAME.samples
judge() {
  python3 - "$D/$1.samples" "$(cat "$D/$1.raised" 2>/dev/null || echo 0)" <<'PY'
import sys
rows = [tuple(float(x) for x in l.split()) for l in open(sys.argv[1]) if len(l.split()) == 3]
raised = float(sys.argv[2])
def at(t):  # the last sample at or before t
    best = rows[0]
    for r in rows:
        if r[0] <= t: best = r
    return best
a, b = at(10), at(raised)
span = b[0] - a[0]
req, r429 = b[1] - a[1], b[2] - a[2]
acc = req - r429
print("steady %.1f s: accepted %.2f/s (%.0f %% of 10/s), 429 %.2f %% of %d" %
      (span, acc / span, 10 * acc / span, 100 * r429 / max(1, req), req))
print("OKSTEADY" if acc / span >= 9 and r429 < 0.02 * req else "BADSTEADY")
reach = None
for r in rows:
    if r[0] < raised + 2: continue
    p = at(r[0] - 2)
    if r[0] - p[0] >= 1.5 and ((r[1] - r[2]) - (p[1] - p[2])) / (r[0] - p[0]) >= 18:
        reach = r[0] - raised; break
print("after the raise: 18/s reached after %s s" % ("%.1f" % reach if reach is not None else "never"))
print("OKRAISE" if reach is not None and reach <= 30 else "BADRAISE")
PY
}

scenario one 1 & P1=$!
scenario three 3 & P3=$!
wait "$P1" "$P3"
for s in one three; do
  v=$(judge $s)
  echo "$v" | grep -v '^OK\|^BAD' | sed "s/^/# $s: /"
  case "$v" in *BAD*) grep -h "answered\|no request left" "$D/$s".w*.log | head -12 | sed "s/^/# $s: /" ;; esac
  contains "$s worker(s): after the first 10 s, >= 90 % of 10/s accepted and < 2 % answered 429" OKSTEADY "$v"
  contains "$s worker(s): the provider raises its limit to 20/s: the farm at >= 18/s within 30 s" OKRAISE "$v"
done
contains "the bucket hash shows the learned rate" learned_requests "$(cat "$D/one.bucket")"
contains "enqueuer rate-limit P shows the learned rate" "learned" "$(cat "$D/one.show")"
ef_finish
