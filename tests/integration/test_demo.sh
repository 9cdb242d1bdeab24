#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# ef-test: parallel
# `make demo` end to end: scripts/demo.sh --quiet runs the movies sample and
# the ids sample and must end with the mock provider's truth, print three
# enriched records and leave no process or temp dir behind; it works
# against a given $REDIS_URL, twice in a row; and a Ctrl-C in the middle
# (SIGINT to its process group, as a terminal sends it) stops everything it
# started.
source "$(dirname "$0")/lib.sh"
ef_setup
ROOT=$EF_ROOT
DEMO="$ROOT/scripts/demo.sh"
CATALOG=1000

# truth KIND FILE -> "updated conflicts not_found"
truth() {
  "$BIN/mockprov" --expect "$1" --catalog "$CATALOG" <"$2" |
    awk '{c[$2]++} END {printf "%d %d %d\n", c["updated"], c["conflicts"], c["not_found"]}'
}
# field NAME LINE: the value of NAME=... in the demo's "got:" part
got_field() { printf '%s' "$2" | sed -n "s/.*got: .*$1=\([0-9]*\).*/\1/p"; }

# pids_of OUT: every "name=pid" the demo announced on its "pids" line
pids_of() { sed -n 's/^  pids *//p' "$1" | tr ' ' '\n' | sed -n 's/^[a-z0-9-]*=\([0-9]*\)$/\1/p'; }
tmp_of() { sed -n 's/^  logs *//p' "$1" | head -1 | cut -d' ' -f1; }

# leaves_nothing NAME OUT: the announced PIDs are gone and so is the temp dir
leaves_nothing() {
  local name=$1 out=$2 p alive="" dir
  dir=$(tmp_of "$out")
  local n
  n=$(pids_of "$out" | wc -l)
  if [ "$n" -lt 4 ]; then fail "$name: announces its pids" "only $n in: $(grep pids "$out")"; return; fi
  for p in $(pids_of "$out"); do kill -0 "$p" 2>/dev/null && alive="$alive $p"; done
  eq "$name: every process it started is gone" "" "$alive"
  if [ -n "$dir" ] && [ ! -e "$dir" ] && ! pgrep -f "$dir" >/dev/null; then
    ok "$name: temp dir removed, nothing runs from it"
  else
    fail "$name: temp dir removed, nothing runs from it" "$dir: $(pgrep -af "$dir" | head -3)"
  fi
}

# check_counts NAME OUT KIND FILE: the got: line equals the mock's truth (or
# differs only by entities that exhausted their retries on injected 5xx)
check_counts() {
  local name=$1 out=$2 line e_upd e_conf e_nf upd conf nf errs
  line=$(grep '^expected: ' "$out" | tail -1)
  read -r e_upd e_conf e_nf < <(truth "$3" "$4")
  upd=$(got_field updated "$line"); conf=$(got_field conflicts "$line")
  nf=$(got_field not_found "$line"); errs=$(got_field errors "$line")
  contains "$name: prints the expected counts" "expected: updated=$e_upd conflicts=$e_conf not_found=$e_nf errors=0" "$line"
  if [ "${errs:-x}" = 0 ]; then
    eq "$name: got the mock's truth" "$e_upd $e_conf $e_nf" "$upd $conf $nf"
  elif [ -n "$errs" ] && [ "$upd" -le "$e_upd" ] && [ "$conf" -le "$e_conf" ] && [ "$nf" -le "$e_nf" ] &&
       [ $((upd + conf + nf + errs)) = $((e_upd + e_conf + e_nf)) ]; then
    ok "$name: got the mock's truth but for $errs entities that exhausted their retries"
  else
    fail "$name: got the mock's truth" "$line"
  fi
}

# ---- the movies sample (the default), timed ----
t0=$SECONDS
env -u REDIS_URL bash "$DEMO" --quiet >"$EF_TMP/movies.out" 2>&1
rc=$?
eq "movies: exit 0" 0 $rc
[ $rc = 0 ] || tail -20 "$EF_TMP/movies.out"
check "movies: under 60 s" test $((SECONDS - t0)) -lt 60
check_counts movies "$EF_TMP/movies.out" movies "$ROOT/samples/movies.csv"
contains "movies: truth check line" "truth check: " "$(cat "$EF_TMP/movies.out")"
eq "movies: three enriched records shown" 3 "$(grep -c "^\$ redis-cli HGETALL 'farm:{demo}:movie:" "$EF_TMP/movies.out")"
eq "movies: the records have a director" 3 "$(grep -c '^  director ' "$EF_TMP/movies.out")"
contains "movies: prints the dashboard URL" "dashboard: http://127.0.0.1:" "$(cat "$EF_TMP/movies.out")"
contains "movies: says what it stopped" "stopped: " "$(tail -1 "$EF_TMP/movies.out")"
leaves_nothing movies "$EF_TMP/movies.out"

# ---- the ids sample through the one-step recipe ----
env -u REDIS_URL bash "$DEMO" --quiet --sample ids >"$EF_TMP/ids.out" 2>&1
eq "ids: exit 0" 0 $?
check_counts ids "$EF_TMP/ids.out" items "$ROOT/samples/ids.txt"
eq "ids: three enriched records shown" 3 "$(grep -c '^  title  *Item ' "$EF_TMP/ids.out")"
leaves_nothing ids "$EF_TMP/ids.out"

# ---- against a given REDIS_URL, twice (re-running works) ----
for run in 1 2; do
  bash "$DEMO" --quiet --sample ids --workers 2 >"$EF_TMP/ext$run.out" 2>&1
  eq "REDIS_URL run $run: exit 0" 0 $?
  check_counts "REDIS_URL run $run" "$EF_TMP/ext$run.out" items "$ROOT/samples/ids.txt"
done
contains "REDIS_URL: uses the given Redis" "$REDIS_URL (yours" "$(cat "$EF_TMP/ext1.out")"
eq "REDIS_URL: no redis-server of its own" "" "$(grep -o 'redis-server=[0-9]*' "$EF_TMP/ext1.out")"
eq "REDIS_URL: both jobs are in it" 2 "$(rcli ZCARD 'farm:{demo}:jobs')"
eq "REDIS_URL: the Redis it was given still runs" PONG "$(rcli PING)"

# ---- Ctrl-C in the middle ----
# A terminal's Ctrl-C is SIGINT to the foreground process group; start the
# demo as the leader of its own group with SIGINT at its default.
python3 -c '
import os, signal, sys
signal.signal(signal.SIGINT, signal.SIG_DFL)
os.setpgid(0, 0)
os.execvp("bash", ["bash"] + sys.argv[1:])' "$DEMO" >"$EF_TMP/int.out" 2>&1 </dev/null &
dpid=$!
if ef_wait_for 30 'grep -q "^\$ bin/enqueuer" "$EF_TMP/int.out"'; then
  sleep 1
  kill -INT -- "-$dpid" 2>/dev/null
  ef_wait_for 20 "! kill -0 $dpid"
  wait "$dpid"
  eq "Ctrl-C: exit 130" 130 $?
  contains "Ctrl-C: says so" "demo: interrupted" "$(cat "$EF_TMP/int.out")"
  leaves_nothing Ctrl-C "$EF_TMP/int.out"
else
  fail "Ctrl-C: the demo got to its enqueue" "$(tail -5 "$EF_TMP/int.out")"
  kill -TERM "$dpid" 2>/dev/null; wait "$dpid" 2>/dev/null
fi

ef_finish
