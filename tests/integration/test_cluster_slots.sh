#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# ef-test: parallel
# The Cluster building blocks (lib/ef_cluster.c) against real redis-server
# nodes in cluster mode on private 127.0.0.1 ports: our key slot equals
# CLUSTER KEYSLOT for thousands of keys of every shape; two nodes sharing the
# slots give a CLUSTER SLOTS reply that our slot map reads right, and the
# MOVED and ASK errors they really send are parsed.  The programs on a real
# cluster: test_cluster.sh.
source "$(dirname "$0")/lib.sh"

KEYS_N=${EF_KEYSLOT_N:-5000}
ef_setup
# stop our servers by PID and reap them quietly, then the usual cleanup
trap 'for p in "${EF_PIDS[@]}"; do kill -9 "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; ef_cleanup' EXIT
D=$EF_TMP
HELPER="$BUILD/tests/cluster_check"
[ -x "$HELPER" ] || { fail "cluster_check helper" "build it: make $BUILD/tests/cluster_check"; ef_finish; }

# data ports 11000..14999, their bus ports (+10000) 21000..24999: below the
# ephemeral range, apart from test_sentinel.sh's 26000..29999
pick_ports() {
  base=$((11000 + (RANDOM % 400) * 10))
  PA=$base; PB=$((base + 1))
}
pick_ports
pcli() { redis-cli -h 127.0.0.1 -p "$1" "${@:2}"; }
cnode() {
  mkdir -p "$D/$1"
  redis-server --bind 127.0.0.1 --port "$2" --cluster-enabled yes --cluster-config-file "$D/$1/nodes.conf" \
    --cluster-node-timeout 2000 --save '' --appendonly no --dir "$D/$1" --logfile "$D/$1.log" &
  EF_PIDS+=("$!")
  ef_wait_for 10 'pcli '"$2"' PING | grep -q PONG'
}

started=0
for _ in 1 2 3; do
  if cnode a "$PA"; then started=1; break; fi
  grep -q "already in use" "$D/a.log" 2>/dev/null || break
  pick_ports # a port taken by someone else: another pair
done
if [ "$started" = 0 ]; then
  skip cluster "redis-server does not start in cluster mode here: $(tail -1 "$D/a.log" 2>/dev/null)"
  ef_finish
fi

# ---- key slots: ours against the server's ----
out=$("$HELPER" keyslot 127.0.0.1 "$PA" "$KEYS_N" 2>&1)
eq "keyslot: our slot equals CLUSTER KEYSLOT for $KEYS_N keys (tags, braces, binary)" "keys=$KEYS_N agree" "$out"

# ---- two nodes, the slots split between them ----
cnode b "$PB" || { fail "cluster: node b starts" ""; ef_finish; }
pcli "$PA" CLUSTER MEET 127.0.0.1 "$PB" >/dev/null
pcli "$PA" CLUSTER ADDSLOTSRANGE 0 8191 >/dev/null
pcli "$PB" CLUSTER ADDSLOTSRANGE 8192 16383 >/dev/null
if ef_wait_for 20 'pcli '"$PA"' CLUSTER INFO | grep -q "cluster_state:ok" &&
                   pcli '"$PB"' CLUSTER INFO | grep -q "cluster_state:ok" &&
                   [ "$(pcli '"$PA"' CLUSTER SLOTS | grep -c "^'"$PB"'$")" -ge 1 ]'; then
  ok "cluster: two nodes share the 16384 slots"
else
  fail "cluster: two nodes" "$(pcli "$PA" CLUSTER INFO | head -3 | tr '\r\n' '  ')"
  ef_finish
fi
out=$("$HELPER" slots 127.0.0.1 "$PA" 2>&1)
contains "slots: the map covers every slot with 2 primaries" "covered=16384 nodes=2" "$out"
contains "slots: slot 0 on node a" "slot 0 127.0.0.1:$PA" "$out"
contains "slots: slot 8000 on node a" "slot 8000 127.0.0.1:$PA" "$out"
contains "slots: slot 9000 on node b" "slot 9000 127.0.0.1:$PB" "$out"
contains "slots: slot 16000 on node b" "slot 16000 127.0.0.1:$PB" "$out"

out=$("$HELPER" redirect 127.0.0.1 "$PA" foo 2>&1)
eq "redirect: a real MOVED parsed (foo, slot 12182, on b)" "MOVED 12182 127.0.0.1:$PB keyslot=12182" "$out"
out=$("$HELPER" redirect 127.0.0.1 "$PB" '{farm}:x' 2>&1)
slot=$(pcli "$PB" CLUSTER KEYSLOT '{farm}:x')
if [ "$slot" -lt 8192 ]; then
  eq "redirect: a MOVED back to a" "MOVED $slot 127.0.0.1:$PA keyslot=$slot" "$out"
else
  check "redirect: a key of b is not redirected" sh -c "'$HELPER' redirect 127.0.0.1 $PB '{farm}:x' | grep -q FAIL"
fi
idb=$(pcli "$PB" CLUSTER MYID)
pcli "$PB" CLUSTER SETSLOT 5061 IMPORTING "$(pcli "$PA" CLUSTER MYID)" >/dev/null
pcli "$PA" CLUSTER SETSLOT 5061 MIGRATING "$idb" >/dev/null
out=$("$HELPER" redirect 127.0.0.1 "$PA" bar 2>&1)
eq "redirect: a real ASK parsed (bar, slot 5061 migrating to b)" "ASK 5061 127.0.0.1:$PB keyslot=5061" "$out"

ef_finish
