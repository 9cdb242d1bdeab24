# SPDX-License-Identifier: MIT
# Shared helpers for integration tests (bash).  Source it, call ef_setup,
# use the checks, end with ef_finish.  ef_setup starts a private
# redis-server on a unix socket in a temp dir (no persistence) and exports
# REDIS_URL; every process started with ef_spawn is killed by PID at exit.
# Checks print "ok NAME" or "FAIL NAME: why"; ef_finish prints the closing
# "N passed, N failed" line and exits non-zero on failure.

EF_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BIN=${BIN:-bin}
BUILD=${BUILD:-build}
case "$BIN" in /*) ;; *) BIN="$EF_ROOT/$BIN" ;; esac
case "$BUILD" in /*) ;; *) BUILD="$EF_ROOT/$BUILD" ;; esac
EF_PASSED=0
EF_FAILED=0
EF_PIDS=()
EF_TMP=""
EF_REDIS_PID=""

ok() { EF_PASSED=$((EF_PASSED + 1)); echo "ok $1"; }
fail() { EF_FAILED=$((EF_FAILED + 1)); echo "FAIL $1: ${2:-}"; }
skip() { echo "skip $1: ${2:-}"; }
# check NAME COMMAND...: passes when the command succeeds
check() { local n=$1; shift; if "$@" >/dev/null 2>&1; then ok "$n"; else fail "$n" "command failed: $*"; fi; }
# eq NAME EXPECTED ACTUAL
eq() { if [ "$2" == "$3" ]; then ok "$1"; else fail "$1" "expected '$2', got '$3'"; fi; }
# contains NAME NEEDLE HAYSTACK
contains() { case "$3" in *"$2"*) ok "$1" ;; *) fail "$1" "'$2' not found in: $(printf '%s' "$3" | head -c 600)" ;; esac; }

rcli() { redis-cli -s "$EF_TMP/redis.sock" "$@"; }

# ef_redis_start [extra redis-server args]: (re)starts redis on the socket
ef_redis_start() {
  redis-server --port 0 --unixsocket "$EF_TMP/redis.sock" --unixsocketperm 700 \
    --save '' --appendonly no --dir "$EF_TMP" --logfile "$EF_TMP/redis.log" "$@" &
  EF_REDIS_PID=$!
  for _ in $(seq 1 100); do
    rcli PING 2>/dev/null | grep -q PONG && return 0
    sleep 0.05
  done
  echo "redis-server did not start" >&2
  return 1
}

ef_redis_stop() {
  if [ -n "$EF_REDIS_PID" ]; then
    kill "$EF_REDIS_PID" 2>/dev/null
    for _ in $(seq 1 100); do kill -0 "$EF_REDIS_PID" 2>/dev/null || break; sleep 0.05; done
    kill -9 "$EF_REDIS_PID" 2>/dev/null
    wait "$EF_REDIS_PID" 2>/dev/null
    EF_REDIS_PID=""
  fi
}

ef_cleanup() {
  local p
  for p in "${EF_PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
  ef_redis_stop
  [ -n "$EF_TMP" ] && rm -rf "$EF_TMP"
}

ef_setup() {
  EF_TMP=$(mktemp -d /tmp/eftest.XXXXXX)
  trap ef_cleanup EXIT
  ef_redis_start || { echo "0 passed, 1 failed"; exit 1; }
  export REDIS_URL="unix://$EF_TMP/redis.sock"
}

ef_flush() { rcli FLUSHALL >/dev/null; }

# ef_spawn LOGFILE CMD...: starts CMD in the background; its pid in EF_LAST_PID
ef_spawn() {
  local log=$1; shift
  "$@" >"$log" 2>&1 &
  EF_LAST_PID=$!
  EF_PIDS+=("$EF_LAST_PID")
}

# ef_wait_for SECONDS COMMAND...: polls every 50 ms until COMMAND succeeds
ef_wait_for() {
  local secs=$1; shift
  local end=$((SECONDS + secs))
  while [ $SECONDS -le $end ]; do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.05
  done
  return 1
}

ef_finish() {
  echo "$EF_PASSED passed, $EF_FAILED failed"
  [ "$EF_FAILED" -eq 0 ]
  exit $?
}
