#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The demo behind `make demo`: the whole farm on this machine, end to end.
# Starts a private redis-server on a unix socket in a temp dir (or uses
# $REDIS_URL when set), the mock provider (bin/mockprov) with a rate limit,
# latency and a few 5xx, statusd, and three workers; enqueues a sample
# through a provider recipe of examples/demo.json with `enqueuer --wait`;
# then prints the final counts next to the mock's truth, the dashboard URL
# and three enriched records.  With --postgres it also starts a private
# PostgreSQL server (initdb in the temp dir), loads the sample into a
# `movies` table and lets the workers write the enriched columns into it
# (the recipe's sink, docs/sinks.md), then shows rows with psql.
# Everything it started is stopped by PID on exit, error or Ctrl-C.  Run `scripts/demo.sh --help` for the options.
set -u

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${BIN:-bin}
case "$BIN" in /*) ;; *) BIN="$ROOT/$BIN" ;; esac

SAMPLE=movies
QUIET=0
WORKERS=3
CONCURRENCY=8
HOLD=0
CATALOG=1000                        # samples/ were made from this catalogue
STATUSD_PORT=${DEMO_STATUSD_PORT:-8080}
TIMEOUT_S=${DEMO_TIMEOUT_S:-300}
QUEUE=${DEMO_QUEUE:-demo}
POSTGRES=0
PROVIDERS_FILE="$ROOT/examples/demo.json"

usage() {
  cat <<EOF
usage: scripts/demo.sh [--sample movies|ids] [--workers N] [--postgres] [--quiet] [--hold]

Runs the farm end to end on this machine and stops everything it started.

  --sample movies   samples/movies.csv (title, year) through the 'movies'
                    recipe: search by title and year, then details (default)
  --sample ids      samples/ids.txt (plain ids) through the one-step 'items' recipe
  --workers N       workers to start (default 3)
  --postgres        also a private PostgreSQL server: the sample goes into a
                    'movies' table first, the workers write the enriched
                    columns into it (examples/demo-postgres.json), psql shows
                    rows at the end (movies sample only; needs the Debian
                    postgresql package: make deps)
  --quiet           no progress bar (for scripts and tests)
  --hold            keep everything running after the summary until Ctrl-C
                    (to look at the dashboard)

Environment: REDIS_URL (use that Redis instead of a private one),
DEMO_STATUSD_PORT (first port tried for statusd, default 8080),
DEMO_QUEUE (default demo), DEMO_TIMEOUT_S (give up after, default 300).
EOF
}

while [ $# -gt 0 ]; do
  case "$1" in
    --sample) SAMPLE=${2:-}; shift; [ $# -gt 0 ] && shift ;;
    --sample=*) SAMPLE=${1#*=}; shift ;;
    --workers) WORKERS=${2:-}; shift; [ $# -gt 0 ] && shift ;;
    --workers=*) WORKERS=${1#*=}; shift ;;
    --quiet|-q) QUIET=1; shift ;;
    --hold) HOLD=1; shift ;;
    --postgres) POSTGRES=1; PROVIDERS_FILE="$ROOT/examples/demo-postgres.json"; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "demo: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
done
case "$SAMPLE" in
  movies) INPUT="$ROOT/samples/movies.csv"; PROVIDER=movies; ENTITY=movie; FORMAT=csv
          RESULT_KEY=movie ;;
  ids)    INPUT="$ROOT/samples/ids.txt"; PROVIDER=items; ENTITY=item; FORMAT=lines
          RESULT_KEY=result:items ;;
  *) echo "demo: --sample wants movies or ids, got '$SAMPLE'" >&2; exit 2 ;;
esac
case "$WORKERS" in ''|*[!0-9]*|0) echo "demo: --workers wants a number from 1" >&2; exit 2 ;; esac
PGBIN=""
if [ "$POSTGRES" = 1 ]; then
  [ "$SAMPLE" = movies ] || { echo "demo: --postgres goes with --sample movies" >&2; exit 2; }
  PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
  if [ -z "$PGBIN" ] || [ ! -x "$PGBIN/initdb" ] || ! command -v psql >/dev/null; then
    echo "demo: --postgres needs the PostgreSQL server (Debian postgresql; run 'make deps')" >&2
    exit 1
  fi
  # postgres refuses to run as root: as root, the server runs as Debian's
  # 'postgres' user
  if [ "$(id -u)" = 0 ] && ! id postgres >/dev/null 2>&1; then
    echo "demo: --postgres as root needs the 'postgres' user (Debian postgresql creates it)" >&2
    exit 1
  fi
fi

for p in enqueuer worker statusd mockprov; do
  if [ ! -x "$BIN/$p" ]; then
    echo "demo: $BIN/$p is missing; building" >&2
    make -C "$ROOT" --no-print-directory all >&2 || exit 1
    break
  fi
done
for c in redis-cli curl; do
  command -v "$c" >/dev/null || { echo "demo: '$c' not found (run 'make deps')" >&2; exit 1; }
done

# ---- process bookkeeping: every PID we start, stopped in reverse order ----
TMP=$(mktemp -d "${TMPDIR:-/tmp}/enrichfarm-demo.XXXXXX")
PIDS=()
NAMES=()
ENQ_PID=""
started() { PIDS+=("$1"); NAMES+=("$2"); }

cleanup() {
  local i pid stopped=""
  trap - EXIT INT TERM
  [ -n "$ENQ_PID" ] && kill -TERM "$ENQ_PID" 2>/dev/null
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
    pid=${PIDS[$i]}
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null
      for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
      kill -KILL "$pid" 2>/dev/null
    fi
    wait "$pid" 2>/dev/null
    stopped="$stopped ${NAMES[$i]}=$pid"
  done
  [ -n "$stopped" ] && echo "stopped:$stopped"
  if [ "${KEEP_TMP:-0}" = 1 ]; then
    echo "logs kept in $TMP"
  else
    rm -rf "$TMP"
  fi
}
trap cleanup EXIT
trap 'echo; echo "demo: interrupted"; exit 130' INT TERM

die() { echo "demo: $*" >&2; KEEP_TMP=1; exit 1; }

# wait_for SECONDS 'CONDITION': polls every 50 ms
wait_for() {
  local end=$((SECONDS + $1))
  while [ $SECONDS -le $end ]; do eval "$2" >/dev/null 2>&1 && return 0; sleep 0.05; done
  return 1
}

# rcli ARGS...: redis-cli against $REDIS_URL (redis://, unix:///path[?db=N],
# or rediss:// whose cacert, cert, key and sni become redis-cli's TLS flags)
rcli() {
  case "$REDIS_URL" in
    rediss://*)
      local q="" p flags=()
      [[ $REDIS_URL == *\?* ]] && q=${REDIS_URL#*\?}
      IFS='&' read -r -a ps <<<"$q"
      for p in "${ps[@]}"; do
        case "$p" in cacert=*|cert=*|key=*|sni=*) flags+=("--${p%%=*}" "${p#*=}") ;; esac
      done
      redis-cli -u "${REDIS_URL%%\?*}" "${flags[@]}" --no-auth-warning "$@" ;;
    unix://*)
      local rest=${REDIS_URL#unix://} db=0
      case "$rest" in *'?db='*) db=${rest##*\?db=}; rest=${rest%%\?*} ;; esac
      redis-cli -s "$rest" -n "$db" "$@" ;;
    *) redis-cli -u "$REDIS_URL" --no-auth-warning "$@" ;;
  esac
}

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# ---- Redis ----
if [ -n "${REDIS_URL:-}" ]; then
  rcli PING 2>/dev/null | grep -q PONG || die "REDIS_URL=$REDIS_URL does not answer PING"
  redis_line="$REDIS_URL (yours; queue '$QUEUE')"
else
  redis-server --port 0 --unixsocket "$TMP/redis.sock" --unixsocketperm 700 \
    --save '' --appendonly no --dir "$TMP" --logfile "$TMP/redis.log" &
  started $! redis-server
  REDIS_URL="unix://$TMP/redis.sock"
  wait_for 10 'rcli PING | grep -q PONG' || die "redis-server did not start (see $TMP/redis.log)"
  redis_line="$REDIS_URL (private, pid ${PIDS[-1]})"
fi
export REDIS_URL

# ---- PostgreSQL (--postgres): a private server, the sample as a table ----
pg_line=""
if [ "$POSTGRES" = 1 ]; then
  PGDIR=$TMP/pg
  mkdir -p "$PGDIR/sock"
  as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
  if [ "$(id -u)" = 0 ]; then chmod 711 "$TMP"; chown -R postgres "$PGDIR"; fi
  as_pg "$PGBIN/initdb" -D "$PGDIR/data" -U enrich --auth=trust -E UTF8 --no-instructions \
    >"$TMP/initdb.log" 2>&1 || die "initdb failed (see $TMP/initdb.log)"
  # no TCP: a unix socket in the temp dir only
  as_pg "$PGBIN/pg_ctl" -D "$PGDIR/data" -l "$PGDIR/postgres.log" -w -t 30 \
    -o "-c listen_addresses= -k $PGDIR/sock -p 5432" start >"$TMP/pg_ctl.log" 2>&1 ||
    die "postgres did not start (see $PGDIR/postgres.log)"
  started "$(head -1 "$PGDIR/data/postmaster.pid")" postgres
  export PG_URL="postgresql:///postgres?host=$PGDIR/sock&port=5432&user=enrich"
  psqld() { psql -X -q -d "$PG_URL" -v ON_ERROR_STOP=1 "$@"; }
  psqld -c "CREATE TABLE movies (id integer PRIMARY KEY, title text NOT NULL, year integer,
              release_date date, runtime integer, genres jsonb, director text)" \
    -c "\\copy movies (id, title, year) FROM '$INPUT' WITH (FORMAT csv, HEADER true)" \
    >"$TMP/psql.log" 2>&1 || die "cannot create the movies table (see $TMP/psql.log)"
  pg_line="a private server (pid ${PIDS[-1]}, socket in $PGDIR/sock): table movies, $(psqld -At -c 'SELECT count(*) FROM movies') rows (id, title, year) from the sample"
fi

# ---- the mock provider: 40 requests/s, 20-40 ms, 2% 5xx ----
"$BIN/mockprov" --listen 127.0.0.1:0 --port-file "$TMP/mock.port" --catalog "$CATALOG" \
  --rate 40 --per 1 --burst 40 --latency-ms 20 --jitter-ms 20 --p-500 0.02 \
  >"$TMP/mockprov.log" 2>&1 &
MOCK_PID=$!
started "$MOCK_PID" mockprov
wait_for 10 'test -s "$TMP/mock.port"' || die "mockprov did not start (see $TMP/mockprov.log)"
export MOCK_HOST=127.0.0.1 MOCK_PORT
MOCK_PORT=$(cat "$TMP/mock.port")

# ---- statusd on 8080 or the next free port ----
DASHBOARD=""
if "$BIN/statusd" --help 2>&1 | grep -q -- '--port-file'; then
  for port in $(seq "$STATUSD_PORT" $((STATUSD_PORT + 19))); do
    port_busy "$port" && continue
    rm -f "$TMP/statusd.port"
    "$BIN/statusd" --listen "127.0.0.1:$port" --port-file "$TMP/statusd.port" \
      >"$TMP/statusd.log" 2>&1 &
    spid=$!
    if wait_for 5 'test -s "$TMP/statusd.port" || ! kill -0 '"$spid"; then
      if [ -s "$TMP/statusd.port" ]; then
        started "$spid" statusd
        STATUSD_PID=$spid
        DASHBOARD="http://127.0.0.1:$(cat "$TMP/statusd.port")/"
        break
      fi
    fi
    kill "$spid" 2>/dev/null; wait "$spid" 2>/dev/null
  done
  [ -n "$DASHBOARD" ] || echo "note: statusd did not start (see $TMP/statusd.log); going on without the dashboard"
else
  echo "note: this bin/statusd has no --port-file; going on without the dashboard"
fi

# ---- workers ----
wpids=""
for i in $(seq 1 "$WORKERS"); do
  "$BIN/worker" --providers "$PROVIDERS_FILE" --queue "$QUEUE" \
    --concurrency "$CONCURRENCY" --grace 5 --visibility-timeout 30 \
    >"$TMP/worker$i.log" 2>&1 &
  started $! "worker$i"
  wpids="$wpids ${PIDS[-1]}"
done
wait_for 10 '[ "$(rcli HEXISTS farm:providers '"$PROVIDER"')" = 1 ]' ||
  die "the workers did not register (see $TMP/worker1.log)"
for pid in $wpids; do kill -0 "$pid" 2>/dev/null || die "worker $pid exited (see $TMP/worker*.log)"; done

# ---- the truth, from the mock's own catalogue ----
rows=$(wc -l <"$INPUT")
[ "$FORMAT" = csv ] && rows=$((rows - 1))
EXPECT=items
[ "$SAMPLE" = movies ] && EXPECT=movies
"$BIN/mockprov" --expect "$EXPECT" \
  --catalog "$CATALOG" <"$INPUT" >"$TMP/truth"
read -r e_upd e_conf e_nf < <(awk '{c[$2]++} END {printf "%d %d %d\n", c["updated"], c["conflicts"], c["not_found"]}' "$TMP/truth")

if [ "$SAMPLE" = movies ]; then
  what="$rows movies (${INPUT#"$ROOT"/}: id,title,year) through the 'movies' recipe: search by title+year, then details"
else
  what="$rows ids (${INPUT#"$ROOT"/}) through the one-step 'items' recipe: GET /item/{id}"
fi
echo "enrichfarm demo: $what"
echo "  redis     $redis_line"
echo "  provider  bin/mockprov on http://127.0.0.1:$MOCK_PORT (pid $MOCK_PID): catalogue $CATALOG, 40 req/s, 20-40 ms, 2% 5xx"
if [ -n "$DASHBOARD" ]; then
  echo "  statusd   $DASHBOARD (pid $STATUSD_PID): dashboard; JSON at ${DASHBOARD}jobs/ID, metrics at ${DASHBOARD}metrics"
fi
echo "  workers   $WORKERS x --concurrency $CONCURRENCY, pids$wpids"
[ -n "$pg_line" ] && echo "  postgres  $pg_line; the workers write the enriched columns into it (${PROVIDERS_FILE#"$ROOT"/})"
pidlist=$(for i in "${!PIDS[@]}"; do printf '%s=%s ' "${NAMES[$i]}" "${PIDS[$i]}"; done)
echo "  pids      ${pidlist% }"
echo "  logs      $TMP (removed at exit)"
echo

# ---- enqueue and follow ----
qflag=()
[ "$QUIET" = 1 ] && qflag=(-q)
ENQ_ARGS=(--queue "$QUEUE" --provider "$PROVIDER" --entity-type "$ENTITY" --format "$FORMAT")
echo "\$ bin/enqueuer ${ENQ_ARGS[*]} --wait ${INPUT#"$ROOT"/}"
t0=$(date +%s%N)
"$BIN/enqueuer" "${ENQ_ARGS[@]}" "${qflag[@]}" --wait "$INPUT" >"$TMP/job.id" &
ENQ_PID=$!
deadline=$((SECONDS + TIMEOUT_S))   # a stuck farm cannot hang the demo
while kill -0 "$ENQ_PID" 2>/dev/null; do
  if [ $SECONDS -ge $deadline ]; then
    echo "demo: no result after ${TIMEOUT_S}s; giving up" >&2
    kill -TERM "$ENQ_PID" 2>/dev/null
  fi
  sleep 0.2
done
wait "$ENQ_PID"
rc=$?
ENQ_PID=""
t1=$(date +%s%N)
JOB=$(head -n 1 "$TMP/job.id")
[ -n "$JOB" ] || die "enqueuer failed (exit $rc)"
[ "$rc" = 0 ] || die "job $JOB did not complete (enqueuer exit $rc)"

# ---- summary ----
JK="farm:{$QUEUE}:job:$JOB"
read -r status total upd conf nf errs < <(rcli HMGET "$JK" status total updated conflicts not_found errors | tr '\n' ' ')
secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.1f", (b - a) / 1e9}')
stats=$(curl -s "http://127.0.0.1:$MOCK_PORT/stats")
m_req=$(printf '%s' "$stats" | grep -o '"requests":[0-9]*' | head -1 | cut -d: -f2)
m_429=$(printf '%s' "$stats" | grep -o '"responses_429":[0-9]*' | cut -d: -f2)
echo
echo "job $JOB $status in ${secs}s: total=$total updated=$upd conflicts=$conf not_found=$nf errors=$errs"
echo "the mock provider counted ${m_req:-?} requests, ${m_429:-?} of them answered 429 (over its rate limit)"
echo "expected: updated=$e_upd conflicts=$e_conf not_found=$e_nf errors=0, got: updated=$upd conflicts=$conf not_found=$nf errors=$errs"
verdict=0
if [ "$upd $conf $nf $errs" = "$e_upd $e_conf $e_nf 0" ]; then
  echo "truth check: exact (bin/mockprov --expect $EXPECT --catalog $CATALOG)"
elif [ "$errs" -gt 0 ] && [ "$upd" -le "$e_upd" ] && [ "$conf" -le "$e_conf" ] && [ "$nf" -le "$e_nf" ] &&
     [ $((upd + conf + nf + errs)) = $((e_upd + e_conf + e_nf)) ]; then
  echo "truth check: matches but for $errs entities that kept failing through their retries (the mock's injected faults); see 'enqueuer --queue $QUEUE retry-errors $JOB'"
else
  echo "truth check: MISMATCH"
  verdict=1
fi

echo
n=0
while read -r eid outcome; do
  [ "$outcome" = updated ] || continue
  key="farm:{$QUEUE}:$RESULT_KEY:$eid"
  echo "\$ redis-cli HGETALL '$key'"
  rcli HGETALL "$key" | paste - - | awk -F'\t' '{printf "  %-13s %s\n", $1, $2}'
  n=$((n + 1))
  [ $n -ge 3 ] && break
done <"$TMP/truth"

if [ "$POSTGRES" = 1 ]; then
  echo
  q="SELECT id, title, year, release_date, runtime, director, genres FROM movies WHERE runtime IS NOT NULL ORDER BY id LIMIT 5"
  echo "\$ psql -c \"$q\""
  psqld -c "$q"
  echo "\$ psql -c \"SELECT count(*) AS rows, count(runtime) AS enriched FROM movies\""
  psqld -c "SELECT count(*) AS rows, count(runtime) AS enriched FROM movies"
  enriched=$(psqld -At -c "SELECT count(runtime) FROM movies")
  if [ "$enriched" != "$upd" ]; then
    echo "postgres check: MISMATCH: $enriched rows enriched, $upd entities updated"
    verdict=1
  else
    echo "postgres check: exact: every updated movie's row is enriched, no other"
  fi
fi

echo
if [ "$HOLD" = 1 ]; then
  [ -n "$DASHBOARD" ] && echo "dashboard: $DASHBOARD  (this job: ${DASHBOARD}jobs/$JOB)"
  echo "all results: REDIS_URL=$REDIS_URL bin/enqueuer --queue $QUEUE results $JOB"
  echo "holding: everything stays up; Ctrl-C to stop"
  while :; do sleep 1; done
fi
[ -n "$DASHBOARD" ] && echo "dashboard: $DASHBOARD was up while the job ran; 'scripts/demo.sh --hold' keeps it up"
exit "$verdict"
