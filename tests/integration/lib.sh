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
  declare -F ef_netns_cleanup >/dev/null && ef_netns_cleanup
  # EF_KEEP_TMP=1 keeps the test's directory (logs, samples) for a post-mortem
  if [ -n "$EF_TMP" ] && [ -z "${EF_KEEP_TMP:-}" ]; then rm -rf "$EF_TMP"; fi
  [ -n "${EF_KEEP_TMP:-}" ] && echo "# kept $EF_TMP" >&2
  return 0
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

# ef_wait_for SECONDS 'SHELL CONDITION'  or  ef_wait_for SECONDS CMD ARGS...
# polls every 50 ms until it succeeds.  A single argument is evaluated anew
# each time (quote it so $(...) inside is re-run); several arguments are run
# as a command.
ef_wait_for() {
  local secs=$1; shift
  local end=$((SECONDS + secs))
  while [ $SECONDS -le $end ]; do
    if [ $# -eq 1 ]; then
      eval "$1" >/dev/null 2>&1 && return 0
    else
      "$@" >/dev/null 2>&1 && return 0
    fi
    sleep 0.05
  done
  return 1
}

ef_finish() {
  echo "$EF_PASSED passed, $EF_FAILED failed"
  [ "$EF_FAILED" -eq 0 ]
  exit $?
}

# ef_mock_start NAME [mockprov flags]: starts the mock provider on 127.0.0.1
# with a port it picks; sets MOCK_PORT and MOCK_PID.
ef_mock_start() {
  local name=$1; shift
  rm -f "$EF_TMP/$name.port"
  ef_spawn "$EF_TMP/$name.log" "$BIN/mockprov" --listen 127.0.0.1:0 --port-file "$EF_TMP/$name.port" "$@"
  MOCK_PID=$EF_LAST_PID
  ef_wait_for 10 'test -s "$EF_TMP/$name.port"' || { echo "mockprov did not start" >&2; return 1; }
  MOCK_PORT=$(cat "$EF_TMP/$name.port")
}

# ef_pyhttp_start NAME BODY [ARGS...]: a small Python HTTP server on
# 127.0.0.1 with a port it picks, for what the mock provider does not do.
# BODY is Python that defines the handler class H (a subclass of
# http.server.BaseHTTPRequestHandler; http.server, os and sys are already
# imported); ARGS reach it as sys.argv[1:].  The scaffold around it (a
# threaded server with daemon threads, the port file written atomically,
# serve_forever) is the same for every test.  The script is
# $EF_TMP/NAME.py, its output $EF_TMP/NAME.log; sets EF_LAST_PID and
# PYHTTP_PORT; returns 1 when no port is written within 10 s.
ef_pyhttp_start() {
  local name=$1 body=$2; shift 2
  local py="$EF_TMP/$name.py" port="$EF_TMP/$name.port"
  rm -f "$port"
  {
    printf 'import http.server, os, sys\nPORT_FILE = sys.argv.pop(1)\n'
    printf '%s\n' "$body"
    cat <<'PY'
http.server.ThreadingHTTPServer.daemon_threads = True
s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
with open(PORT_FILE + ".tmp", "w") as f:
    f.write(str(s.server_address[1]))
os.rename(PORT_FILE + ".tmp", PORT_FILE)
s.serve_forever()
PY
  } >"$py"
  ef_spawn "$EF_TMP/$name.log" python3 "$py" "$port" "$@"
  PYHTTP_PORT=""
  ef_wait_for 10 'test -s "$EF_TMP/$name.port"' || return 1
  PYHTTP_PORT=$(cat "$port")
}

# mock_stat PORT FIELD: one number from the mock provider's /stats
mock_stat() {
  curl -s "http://127.0.0.1:$1/stats" | python3 -c "import json,sys; print(json.load(sys.stdin).get('$2', 0))"
}

# ef_items_recipe PORT FILE [extra json members]: the minimal recipe for /item/{id}
ef_items_recipe() {
  cat >"$2" <<JSON
{"providers": {"items": {
   "steps": [{"method": "GET", "url": "http://127.0.0.1:$1/item/{id}"}],
   "extract": {"title": "/title"},
   "timeout_ms": ${RECIPE_TIMEOUT_MS:-5000}, "retries": ${RECIPE_RETRIES:-3}${3:-}}}}
JSON
}

# ef_worker_start LOG [worker flags]: starts a worker; pid in EF_LAST_PID
ef_worker_start() {
  local log=$1; shift
  ef_spawn "$log" "$BIN/worker" "$@"
}

# job_field ID FIELD [QUEUE]
job_field() { rcli HGET "farm:{${3:-default}}:job:$1" "$2"; }

# ef_wait_job ID STATUS SECONDS [QUEUE]: waits until the job has STATUS
ef_wait_job() {
  local end=$((SECONDS + $3))
  while [ $SECONDS -le $end ]; do
    [ "$(job_field "$1" status "${4:-default}")" = "$2" ] && return 0
    sleep 0.05
  done
  return 1
}

# ---- network namespaces ("hosts") ----
# ef_netns_pair A B ADDR_A ADDR_B: creates namespaces A and B (names are
# prefixed with ef$$ so parallel runs do not collide) joined by a veth pair
# with the given /24 addresses, loopback up in both.  Returns 1 (and the
# caller skips) where the machine does not allow it.  ef_cleanup removes
# them.
EF_NETNS=()
ef_netns_pair() {
  local a="ef$$$1" b="ef$$$2"
  command -v ip >/dev/null 2>&1 || return 1
  ip netns add "$a" 2>/dev/null || return 1
  EF_NETNS+=("$a")
  ip netns add "$b" 2>/dev/null || return 1
  EF_NETNS+=("$b")
  ip link add "v$$a" type veth peer name "v$$b" 2>/dev/null || return 1
  ip link set "v$$a" netns "$a" && ip link set "v$$b" netns "$b" || return 1
  ip -n "$a" addr add "$3/24" dev "v$$a" && ip -n "$b" addr add "$4/24" dev "v$$b" || return 1
  ip -n "$a" link set lo up && ip -n "$b" link set lo up || return 1
  ip -n "$a" link set "v$$a" up && ip -n "$b" link set "v$$b" up || return 1
  return 0
}
ef_ns() { echo "ef$$$1"; }

ef_netns_cleanup() {
  local n
  for n in "${EF_NETNS[@]}"; do ip netns del "$n" 2>/dev/null; done
  EF_NETNS=()
}

# ef_netns_bridge PREFIX NAME...: "hosts" NAME... as network namespaces on
# one bridge that lives in its own namespace; host i gets PREFIX.i/24
# (i from 1).  Returns 1 where namespaces cannot be made (callers skip).
# ef_netns_cut NAME / ef_netns_heal NAME detach / reattach a host's bridge
# port: its packets are dropped silently, its link stays up.
ef_netns_bridge() {
  local prefix=$1; shift
  local br i=1 h
  br=$(ef_ns BR)
  command -v ip >/dev/null 2>&1 || return 1
  ip netns add "$br" 2>/dev/null || return 1
  EF_NETNS+=("$br")
  ip -n "$br" link add br0 type bridge && ip -n "$br" link set br0 up || return 1
  for h in "$@"; do
    local ns; ns=$(ef_ns "$h")
    ip netns add "$ns" 2>/dev/null || return 1
    EF_NETNS+=("$ns")
    ip link add "e$$h$i" type veth peer name "b$$h$i" 2>/dev/null || return 1
    ip link set "e$$h$i" netns "$ns" && ip link set "b$$h$i" netns "$br" || return 1
    ip -n "$br" link set "b$$h$i" master br0 && ip -n "$br" link set "b$$h$i" up || return 1
    ip -n "$ns" addr add "$prefix.$i/24" dev "e$$h$i" || return 1
    ip -n "$ns" link set lo up && ip -n "$ns" link set "e$$h$i" up || return 1
    eval "EF_PORT_$h=b$$h$i"
    i=$((i + 1))
  done
  return 0
}
ef_netns_cut() { local v="EF_PORT_$1"; ip -n "$(ef_ns BR)" link set dev "${!v}" nomaster; }
ef_netns_heal() { local v="EF_PORT_$1"; ip -n "$(ef_ns BR)" link set dev "${!v}" master br0; }

# ef_test_certs DIR: the test CA and certificates (tests/certs.sh)
source "$(dirname "${BASH_SOURCE[0]}")/../certs.sh"
