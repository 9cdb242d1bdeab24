#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# ef-test: parallel
# The event-loop Redis client (lib/ef_redis.c) against a real redis-server:
# runs each scenario of $BUILD/tests/redis_async_check on a private server,
# restarting the server by PID when a scenario prints "restart-me", and
# checks the client's log lines (one per state change, never the password).
# Every wait is bounded; only the PIDs started here are killed.
source "$(dirname "$0")/lib.sh"
HELPER="$BUILD/tests/redis_async_check"
HELPER_PID=""

cleanup() {
  [ -n "$HELPER_PID" ] && kill -9 "$HELPER_PID" 2>/dev/null
  ef_cleanup
}

EF_TMP=$(mktemp -d /tmp/eftest.XXXXXX)
trap cleanup EXIT
if [ ! -x "$HELPER" ]; then
  fail "helper" "$HELPER not built"
  ef_finish
fi
# DEBUG SLEEP needs the DEBUG command (Redis 7 disables it by default)
DEBUG_ARGS=()
major=$(redis-server --version | sed -n 's/.* v=\([0-9]*\)\..*/\1/p')
[ "${major:-0}" -ge 7 ] && DEBUG_ARGS=(--enable-debug-command local)
ef_redis_start "${DEBUG_ARGS[@]}" || { echo "0 passed, 1 failed"; exit 1; }
URL="unix://$EF_TMP/redis.sock"

# restart_redis SIGNAL: stops the server we started, by PID, and starts it again
restart_redis() {
  kill "-$1" "$EF_REDIS_PID" 2>/dev/null
  for _ in $(seq 1 100); do kill -0 "$EF_REDIS_PID" 2>/dev/null || break; sleep 0.05; done
  wait "$EF_REDIS_PID" 2>/dev/null
  EF_REDIS_PID=""
  sleep 0.4 # let the clients fail a few attempts: one log line, not one per retry
  ef_redis_start "${DEBUG_ARGS[@]}"
}

# scenario NAME [SIGNAL]: runs one scenario; with SIGNAL, restarts redis on request
scenario() {
  local name=$1 sig=${2:-} out="$EF_TMP/$1.out" err="$EF_TMP/$1.err" rc
  timeout 90 "$HELPER" "$URL" "$name" >"$out" 2>"$err" &
  HELPER_PID=$!
  if [ -n "$sig" ]; then
    for _ in $(seq 1 400); do
      grep -q '^restart-me$' "$out" && break
      kill -0 "$HELPER_PID" 2>/dev/null || break
      sleep 0.05
    done
    grep -q '^restart-me$' "$out" && restart_redis "$sig"
  fi
  wait "$HELPER_PID"
  rc=$?
  HELPER_PID=""
  if [ "$rc" -eq 0 ] && ! grep -q '^FAIL' "$out" && grep -q '^ok ' "$out"; then
    ok "$name ($(grep -c '^ok ' "$out") checks)"
  else
    fail "$name" "exit $rc"
    grep -v '^ok ' "$out" | sed 's/^/    /'
    tail -20 "$err" | sed 's/^/    /'
  fi
}

# count_lines NAME PATTERN FILE EXPECTED
count_lines() {
  eq "$1" "$4" "$(grep -c -- "$2" "$3")"
}

scenario basic
scenario pipeline
scenario script
scenario deadline
scenario reconnect KILL
scenario subscribe TERM
scenario close_in_cb
scenario close_connecting
scenario heartbeat
scenario auth_select
scenario failover_reply

E=$EF_TMP
count_lines "log: connected once" "redis cmd: connected to unix://$E/redis.sock" "$E/basic.err" 1
count_lines "log: one 'connection lost' line per outage" \
  "redis cmd: connection lost (.*), reconnecting" "$E/reconnect.err" 1
count_lines "log: one 'reconnected after N attempts' line" \
  "redis cmd: reconnected after [0-9]* attempts" "$E/reconnect.err" 1
count_lines "log: deadline names the cause" \
  "connection lost (command unanswered after 500 ms)" "$E/deadline.err" 1
count_lines "log: heartbeat names the cause" \
  "connection lost (heartbeat PING unanswered after 300 ms)" "$E/heartbeat.err" 1
count_lines "log: subscriber lost once" "redis sub: connection lost" "$E/subscribe.err" 1
count_lines "log: missing socket logged once, not per retry" \
  "cannot connect to unix:///nonexistent/ef-redis.sock" "$E/close_connecting.err" 1
count_lines "log: wrong password logged once" "redis bad: AUTH failed" "$E/auth_select.err" 1
count_lines "log: the password never appears" "secret" "$E/auth_select.err" 0
ef_finish
