#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# ef-test: parallel
# statusd's promises under faults: the event stream of a job deleted from
# Redis ends with "event: end"; a Redis error (an OOM) reaches the client in
# Redis's own words, not as the script's SHA; rate_per_s, eta_s and worker
# ages follow Redis's clock whatever statusd's own clock says (shifted ten
# minutes either way by libfaketime where installed, and by the test-only
# EF_STATUSD_TEST_CLOCK_SKEW_MS); and every connection past --max-connections
# gets a 503, not a silent close.
source "$(dirname "$0")/lib.sh"
ef_setup
D=$EF_TMP
Q='farm:{default}'

start_sd() { # start_sd NAME [ENV=V...] -- [statusd args]: sets U and SD_PID
  local name=$1; shift
  local envs=()
  while [ $# -gt 0 ] && [ "$1" != "--" ]; do envs+=("$1"); shift; done
  [ "${1:-}" = "--" ] && shift
  rm -f "$D/$name.port"
  ef_spawn "$D/$name.log" env "${envs[@]}" "$BIN/statusd" --listen 127.0.0.1:0 \
    --port-file "$D/$name.port" "$@"
  SD_PID=$EF_LAST_PID
  ef_wait_for 5 test -s "$D/$name.port" || { fail "statusd $name starts" "$(cat "$D/$name.log")"; return 1; }
  U="http://127.0.0.1:$(cat "$D/$name.port")"
  ef_wait_for 5 '[ "$(curl -s -o /dev/null -w %{http_code} "$U/health")" = 200 ]'
}
stop_sd() { kill "$SD_PID" 2>/dev/null; wait "$SD_PID" 2>/dev/null; }
jget() { python3 -c 'import json,sys
v=json.load(sys.stdin)
for k in sys.argv[1].split("."):
    v = v[int(k)] if isinstance(v, list) else v.get(k)
print(v)' "$1"; }
redis_ms() { rcli TIME | python3 -c 'import sys; s,u=sys.stdin.read().split(); print(int(s)*1000+int(u)//1000)'; }

# ---- the stream of a deleted job ends ----
start_sd A || ef_finish
now=$(redis_ms)
rcli HSET "$Q:job:GONE1" id GONE1 queue default provider items status running total 10 \
  processed 1 updated 1 conflicts 0 not_found 0 errors 0 created_at "$now" started_at "$now" \
  updated_at "$now" >/dev/null
t0=$SECONDS
curl -sN --max-time 12 "$U/jobs/GONE1/events" >"$D/sse.out" 2>/dev/null &
CURL=$!
ef_wait_for 5 'grep -q "event: job" "$D/sse.out"'
rcli DEL "$Q:job:GONE1" >/dev/null
wait "$CURL"
rc=$?
eq "sse: a deleted job's stream ends by itself (curl exit 0, not a timeout)" 0 "$rc"
contains "sse: ... with event: end" 'event: end' "$(cat "$D/sse.out")"
contains "sse: ... saying the job was deleted" '"status":"deleted"' "$(cat "$D/sse.out")"
check "sse: ... within a few seconds" test $((SECONDS - t0)) -le 8

# ---- Redis's own error text ----
rcli HSET "$Q:job:OOM1" id OOM1 queue default provider items status running total 10 \
  processed 0 updated 0 conflicts 0 not_found 0 errors 0 created_at "$now" >/dev/null
rcli CONFIG SET maxmemory 1 >/dev/null
body=$(curl -s -X POST "$U/jobs/OOM1/pause")
rcli CONFIG SET maxmemory 0 >/dev/null
contains "redis error: the OOM is told in Redis's words" "OOM command not allowed" "$body"
check "redis error: no script SHA in the answer" sh -c "! printf '%s' '$body' | grep -Eq '[0-9a-f]{40}'"
stop_sd

# ---- rates, ETAs and ages on Redis's clock ----
# 100 of 820 done in the 10 s since started_at: 10/s, 72 s to go
now=$(redis_ms)
rcli HSET "$Q:job:CLK1" id CLK1 queue default provider items status running total 820 \
  processed 100 updated 100 conflicts 0 not_found 0 errors 0 created_at $((now - 10000)) \
  started_at $((now - 10000)) updated_at "$now" >/dev/null
rcli HSET farm:worker:clockw id clockw host h pid 1 state running last_seen "$now" >/dev/null
rcli ZADD farm:workers "$now" clockw >/dev/null
# close: ACTUAL within SLACK of WANT (both numbers; "None" fails)
close() { python3 -c 'import sys
try: a=float(sys.argv[1])
except ValueError: sys.exit(1)
sys.exit(0 if abs(a-float(sys.argv[2])) <= float(sys.argv[3]) else 1)' "$@"; }
clock_checks() { # clock_checks LABEL
  local j w now
  now=$(redis_ms) # started 10 s ago by Redis's clock, whatever time it is now
  rcli HSET "$Q:job:CLK1" started_at $((now - 10000)) created_at $((now - 10000)) >/dev/null
  rcli ZADD farm:workers "$now" clockw >/dev/null
  rcli HSET farm:worker:clockw last_seen "$now" >/dev/null
  j=$(curl -s "$U/jobs/CLK1")
  w=$(curl -s "$U/workers")
  check "clock $1: rate_per_s about 10 (got $(jget rate_per_s <<<"$j"))" close "$(jget rate_per_s <<<"$j")" 10 1
  check "clock $1: eta_s about 72 (got $(jget eta_s <<<"$j"))" close "$(jget eta_s <<<"$j")" 72 10
  check "clock $1: worker age_ms under 5 s (got $(jget workers.0.age_ms <<<"$w"))" \
    close "$(jget workers.0.age_ms <<<"$w")" 0 5000
}
start_sd C0 && clock_checks "right" && stop_sd
for skew in -600000 600000; do
  start_sd "E$skew" "EF_STATUSD_TEST_CLOCK_SKEW_MS=$skew" && clock_checks "skewed by $skew ms (env)"
  stop_sd
done
if command -v faketime >/dev/null 2>&1 && faketime -f "-600s" true 2>/dev/null; then
  for skew in -600s +600s; do
    rm -f "$D/F.port"
    # (an ASan build must not insist on coming first: libfaketime is preloaded)
    ef_spawn "$D/F$skew.log" env FAKETIME_DONT_FAKE_MONOTONIC=1 \
      ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0" \
      faketime -f "$skew" "$BIN/statusd" \
      --listen 127.0.0.1:0 --port-file "$D/F.port"
    SD_PID=$EF_LAST_PID
    if ef_wait_for 5 test -s "$D/F.port"; then
      U="http://127.0.0.1:$(cat "$D/F.port")"
      ef_wait_for 5 '[ "$(curl -s -o /dev/null -w %{http_code} "$U/health")" = 200 ]'
      clock_checks "10 min off ($skew, libfaketime)"
    else
      fail "statusd starts under faketime" "$(cat "$D/F$skew.log")"
    fi
    stop_sd
  done
else
  skip "clock under libfaketime" "faketime not installed (Debian package faketime)"
fi

# ---- every connection past the cap gets a 503 ----
start_sd CAP -- --max-connections 8 --header-timeout-ms 20000 --idle-timeout-ms 20000 || ef_finish
cat >"$D/cap.py" <<'PY'
# Holds 8 connections (the cap), then opens N more, each sending a request;
# prints how many got a 503 and how many were closed with no byte.
import socket, sys, time
port, extra = int(sys.argv[1]), int(sys.argv[2])
hold = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(8)]
time.sleep(0.5)
socks = []
for _ in range(extra):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(b"GET /health HTTP/1.1\r\nHost: t\r\n\r\n")
    socks.append(s)
got503 = silent = other = 0
deadline = time.time() + 20
for s in socks:
    data = b""
    s.settimeout(max(0.1, deadline - time.time()))
    try:
        while True:
            c = s.recv(4096)
            if not c:
                break
            data += c
    except OSError:
        pass
    if data.startswith(b"HTTP/1.1 503"):
        got503 += 1
    elif not data:
        silent += 1
    else:
        other += 1
    s.close()
print(got503, silent, other)
PY
read -r n503 nsilent nother < <(python3 "$D/cap.py" "$(cat "$D/CAP.port")" 200)
eq "cap: 200 connections past the cap all get a 503" "200 0 0" "$n503 $nsilent $nother"
check "cap: statusd still serves once the holders leave" \
  ef_wait_for 5 '[ "$(curl -s -o /dev/null -w %{http_code} "$U/health")" = 200 ]'
contains "cap: rejected connections counted" "enrichfarm_statusd_rejected_total 200" "$(curl -s "$U/metrics")"
stop_sd

ef_finish
