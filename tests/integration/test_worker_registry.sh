#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The worker registry: a SIGKILLed worker cannot unregister, so the live
# workers prune its farm:workers entry once it is older than the heartbeat
# TTL (10 s) on Redis's clock; a worker that stops cleanly leaves at once.
source "$(dirname "$0")/lib.sh"
ef_setup
D=$EF_TMP
TTL_S=10

ef_mock_start mock --catalog 100
ef_items_recipe "$MOCK_PORT" "$D/items.json"
ef_worker_start "$D/dead.log" --providers "$D/items.json" --id doomed; dead=$EF_LAST_PID
ef_worker_start "$D/live.log" --providers "$D/items.json" --id alive; live=$EF_LAST_PID
ef_wait_for 10 'test "$(rcli ZCARD farm:workers)" = 2'
eq "both workers registered" "alive doomed" "$(rcli ZRANGE farm:workers 0 -1 | sort | tr '\n' ' ' | sed 's/ $//')"
score=$(rcli ZSCORE farm:workers alive)
rtime=$(rcli TIME | head -1)
check "the registry is scored on Redis's clock" test $((rtime * 1000 - ${score%.*})) -lt 3000

kill -9 "$dead"; wait "$dead" 2>/dev/null
t0=$SECONDS
sleep 3
eq "a dead worker stays while younger than the TTL" 1 "$(rcli ZSCORE farm:workers doomed | grep -c .)"
# gone within TTL + a tick (+ 2 s of slack) of the kill: 3 s gone already
if ef_wait_for $TTL_S 'test -z "$(rcli ZSCORE farm:workers doomed)"'; then
  ok "a SIGKILLed worker leaves farm:workers within TTL + a tick ($((SECONDS - t0)) s)"
else
  fail "a SIGKILLed worker leaves farm:workers within TTL + a tick" "still there after $((SECONDS - t0)) s"
fi
eq "its heartbeat hash expired too" 0 "$(rcli EXISTS farm:worker:doomed)"
eq "the live worker stays" 1 "$(rcli ZSCORE farm:workers alive | grep -c .)"
contains "the pruning is logged" "removed 1 worker(s)" "$(cat "$D/live.log")"

kill -TERM "$live"; wait "$live"
eq "a worker that stops cleanly unregisters" 0 "$(rcli ZCARD farm:workers)"
ef_finish
