#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Browser test of statusd's dashboard: installs what it needs at run time
# (Debian's chromium with apt-get, playwright-core from npm into
# tests/browser/node_modules, which git ignores), starts redis, statusd and a
# fake worker that moves a job, and lets dashboard.mjs look at the page.
# Screenshots go to tests/out/ (TEST_OUT).  Where chromium or npm cannot be
# had it prints "skip ..." and still ends with "N passed, N failed".
# EF_NO_INSTALL=1 uses only what is there already.
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$HERE/../integration/lib.sh"
OUT=${TEST_OUT:-$EF_ROOT/tests/out}
case "$OUT" in /*) ;; *) OUT="$EF_ROOT/$OUT" ;; esac
mkdir -p "$OUT"
Q='farm:{default}'

give_up() { skip "dashboard in a browser" "$1"; ef_finish; }

# ---- what the test needs ----
CHROME=${CHROME:-$(command -v chromium || command -v chromium-browser || true)}
if [ -z "$CHROME" ] && [ -z "${EF_NO_INSTALL:-}" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "installing chromium (apt-get)..."
  export DEBIAN_FRONTEND=noninteractive
  timeout 900 apt-get install -y -qq chromium >"$OUT/browser-apt.log" 2>&1 ||
    { timeout 300 apt-get update -qq >>"$OUT/browser-apt.log" 2>&1 &&
      timeout 900 apt-get install -y -qq chromium >>"$OUT/browser-apt.log" 2>&1; }
  CHROME=$(command -v chromium || true)
fi
[ -n "$CHROME" ] || give_up "chromium is not installed and cannot be installed here"
export CHROME
command -v node >/dev/null && command -v npm >/dev/null || give_up "node and npm are not available"
if [ ! -f "$HERE/node_modules/playwright-core/package.json" ]; then
  [ -z "${EF_NO_INSTALL:-}" ] || give_up "playwright-core is not installed (EF_NO_INSTALL)"
  echo "installing playwright-core (npm)..."
  (cd "$HERE" && timeout 300 npm install --no-audit --no-fund --no-package-lock --loglevel=error) \
    >"$OUT/browser-npm.log" 2>&1 || give_up "playwright-core cannot be installed (see $OUT/browser-npm.log)"
fi

# ---- the farm ----
ef_setup
D=$EF_TMP
ef_spawn "$D/sd.log" "$BIN/statusd" --listen 127.0.0.1:0 --port-file "$D/port"
SDPID=$EF_LAST_PID
ef_wait_for 5 test -s "$D/port" || { fail "statusd starts" "$(cat "$D/sd.log")"; ef_finish; }
U="http://127.0.0.1:$(cat "$D/port")"
now() { echo $(($(date +%s%N) / 1000000)); }
seq 1 200 >"$D/ids"
"$BIN/enqueuer" --provider items --chunk-size 20 --job-id WEB1 "$D/ids" >/dev/null 2>&1
rcli ZADD farm:workers "$(now)" w1 >/dev/null
rcli HSET farm:worker:w1 id w1 host host-a pid 7 version 0.1.0 queues default concurrency 8 \
  state running in_flight 4 processed 0 errors 0 started_at "$(now)" last_seen "$(now)" >/dev/null

# the fake worker: starts once the page is up, 10 steps of 20 entities
(
  for _ in $(seq 1 600); do [ -f "$D/ready" ] && break; sleep 0.05; done
  rcli ZADD farm:workers "$(now)" w1 >/dev/null
  start=$(now)
  for step in $(seq 1 10); do
    sleep 0.4
    rcli ZADD farm:workers "$(now)" w1 >/dev/null # its heartbeat, as a real worker beats
    rcli HSET "$Q:job:WEB1" status running started_at "$start" processed $((step * 20)) \
      updated $((step * 18)) errors $((step * 2)) chunks_done "$step" updated_at "$(now)" >/dev/null
    [ "$step" = 10 ] && rcli HSET "$Q:job:WEB1" status completed completed_at "$(now)" >/dev/null
    rcli PUBLISH "$Q:events" "{\"job\":\"WEB1\",\"processed\":$((step * 20))}" >/dev/null
  done
) & EF_PIDS+=("$!")

node "$HERE/dashboard.mjs" "$U/" WEB1 "$OUT/dashboard.png" "$D/ready" >"$D/node.out" 2>&1
cat "$D/node.out"
while IFS= read -r line; do
  case "$line" in ok\ *) EF_PASSED=$((EF_PASSED + 1)) ;; FAIL\ *) EF_FAILED=$((EF_FAILED + 1)) ;; esac
done <"$D/node.out"
grep -q -E '^(ok|FAIL) ' "$D/node.out" || fail "browser run" "no result from dashboard.mjs"
check "statusd alive after the browser" kill -0 "$SDPID"
kill -TERM "$SDPID"; wait "$SDPID"; eq "statusd exits 0" 0 $?
ef_finish
