#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Three hosts on one machine (network namespaces on a bridge that lives in
# its own namespace): redis-server, statusd and the provider on host R,
# workers on hosts W1 and W2.  A job finishes with exact counts; then W1 is
# cut off silently (its bridge port detached: packets dropped, link up) for
# longer than the visibility timeout: W2 finishes W1's chunks, and when the
# link comes back W1's late writes change nothing.
source "$(dirname "$0")/lib.sh"
ef_setup
ENQ="$BIN/enqueuer"
D=$EF_TMP
NET=10.232.$(( $$ % 200 + 20 ))
if ! ef_netns_bridge "$NET" R W1 W2; then
  skip "multi-host" "network namespaces cannot be made here (needs root and iproute2)"
  ef_netns_cleanup
  ef_finish
fi
ok "three hosts on a bridge"
R=(ip netns exec "$(ef_ns R)"); W1=(ip netns exec "$(ef_ns W1)"); W2=(ip netns exec "$(ef_ns W2)")
RA=$NET.1
# redis moves to host R: TCP for the other hosts, the socket for the test
ef_redis_stop
"${R[@]}" redis-server --bind "$RA" --port 6390 --protected-mode no --unixsocket "$EF_TMP/redis.sock" \
  --unixsocketperm 700 --save '' --appendonly no --dir "$EF_TMP" --logfile "$EF_TMP/redis.log" &
EF_REDIS_PID=$!
ef_wait_for 10 '[ "$(rcli PING 2>/dev/null)" = PONG ]' || { fail "redis on host R" "did not start"; ef_finish; }
RURL="redis://$RA:6390/0"
ef_spawn "$D/mock.log" "${R[@]}" "$BIN/mockprov" --listen "$RA:0" --port-file "$D/mock.port" --catalog 20000 --latency-ms 10
ef_wait_for 10 test -s "$D/mock.port"
MP=$(cat "$D/mock.port")
cat >"$D/items.json" <<JSON
{"providers": {"items": {
   "steps": [{"method": "GET", "url": "http://$RA:$MP/item/{id}"}],
   "extract": {"title": "/title"}, "timeout_ms": 2000, "retries": 5}}}
JSON
ef_spawn "$D/statusd.log" "${R[@]}" "$BIN/statusd" --redis "$RURL" --listen "$RA:0" --port-file "$D/sd.port" --token t0k3n
ef_wait_for 10 test -s "$D/sd.port"
SD="http://$RA:$(cat "$D/sd.port")"
start_worker() { # HOST NAME
  local host=$1 name=$2; local -n run=$host
  ef_spawn "$D/$name.log" "${run[@]}" "$BIN/worker" --redis "$RURL" --providers "$D/items.json" \
    --concurrency 8 --visibility-timeout 3 --id "$name"
}
start_worker W1 w1a; start_worker W1 w1b; start_worker W2 w2a; start_worker W2 w2b
truth() { "$BIN/mockprov" --expect items --catalog 20000 <"$1" | awk '{c[$2]++} END {printf "%d 0 %d 0", c["updated"], c["not_found"]}'; }
counts() { echo "$(job_field "$1" updated) $(job_field "$1" conflicts) $(job_field "$1" not_found) $(job_field "$1" errors)"; }

# ---- a job across the hosts ----
seq 1 3000 >"$D/ids3k"
id=$("${R[@]}" "$ENQ" --redis "$RURL" --provider items --chunk-size 25 "$D/ids3k" 2>/dev/null)
if ef_wait_job "$id" completed 60; then ok "job across hosts completed"; else fail "job across hosts" "$(counts "$id")"; fi
eq "job across hosts: exact counts" "$(truth "$D/ids3k")" "$(counts "$id")"
hosts_busy=$(for w in w1a w1b w2a w2b; do rcli HGET "farm:worker:$w" processed; done | paste - - | awk '($1 + $2) > 0' | wc -l)
sleep 2.2
w1p=$(( $(rcli HGET farm:worker:w1a processed) + $(rcli HGET farm:worker:w1b processed) ))
w2p=$(( $(rcli HGET farm:worker:w2a processed) + $(rcli HGET farm:worker:w2b processed) ))
check "both worker hosts did work (W1 $w1p, W2 $w2p)" test "$w1p" -gt 0 -a "$w2p" -gt 0
js=$("${R[@]}" curl -s "$SD/jobs/$id")
contains "statusd on host R serves the job" '"status":"completed"' "$(echo "$js" | tr -d ' ')"
: "$hosts_busy"

# ---- host W1 cut off silently, longer than the visibility timeout ----
seq 1 6000 >"$D/ids6k"
"${R[@]}" curl -s "http://$RA:$MP/control?latency_ms=25" >/dev/null
id=$("${R[@]}" "$ENQ" --redis "$RURL" --provider items --chunk-size 25 "$D/ids6k" 2>/dev/null)
ef_wait_for 30 '[ "$(job_field "$id" processed)" -gt 600 ]'
held=$(rcli HGETALL 'farm:{default}:owners' | paste - - | grep -c 'w1')
ef_netns_cut W1
t_cut=$SECONDS
echo "info: W1 held $held chunk(s) when it was cut off"
if ef_wait_job "$id" completed 90; then ok "W1 cut: W2 finished the job"; else fail "W1 cut: job" "$(counts "$id") processed $(job_field "$id" processed)"; fi
snap="$(counts "$id") $(job_field "$id" processed) $(job_field "$id" chunks_done)"
eq "W1 cut: exact counts" "$(truth "$D/ids6k") 6000 240" "$snap"
ef_wait_for 15 'grep -q "connection lost" "$D/w1a.log"'
contains "W1 noticed the partition (PING deadline)" "connection lost" "$(cat "$D/w1a.log" "$D/w1b.log")"
sleep 1
cut_for=$((SECONDS - t_cut))
check "W1 was cut off longer than the visibility timeout (${cut_for} s > 3 s)" test "$cut_for" -gt 3
ef_netns_heal W1
ef_wait_for 30 'grep -q "reconnected" "$D/w1a.log" && grep -q "reconnected" "$D/w1b.log"'
contains "W1 reconnected after the link came back" "reconnected" "$(cat "$D/w1a.log")"
sleep 4
eq "W1's late writes changed nothing" "$snap" "$(counts "$id") $(job_field "$id" processed) $(job_field "$id" chunks_done)"
eq "nothing left in processing" 0 "$(rcli LLEN 'farm:{default}:processing')"
check "W1 workers alive after the partition" kill -0 "${EF_PIDS[2]}"

# ---- after healing, W1 works again ----
seq 1 500 >"$D/ids500"
id=$("${R[@]}" "$ENQ" --redis "$RURL" --provider items --chunk-size 10 "$D/ids500" 2>/dev/null)
if ef_wait_job "$id" completed 30; then ok "after healing: another job completes"; else fail "after healing" "$(counts "$id")"; fi

ef_finish
