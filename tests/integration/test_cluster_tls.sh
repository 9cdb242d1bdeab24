#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# ef-test: parallel
# Redis Cluster over TLS (rediss+cluster://): three TLS-only primaries
# (--port 0 --tls-port P --tls-cluster yes, so the slot map names the TLS
# ports) with a CA and a server certificate for 127.0.0.1 the test makes.
# Checks: the enqueuer submits to a queue whose primary is not the seed
# (its sync client follows MOVED over TLS), a worker routes by slot over TLS
# to that primary and to the seed's, with exact counts; statusd serves the
# job and is healthy; scripts/enqueue.sh (redis-cli --tls -c) submits a job
# that completes; a plain redis+cluster:// URL to the TLS nodes gets
# nowhere; no sanitizer report in any log.
source "$(dirname "$0")/lib.sh"

ef_setup
D=$EF_TMP
ENQ="$BIN/enqueuer"
trap 'for p in "${EF_PIDS[@]}"; do kill -9 "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; ef_cleanup' EXIT
command -v openssl >/dev/null || { skip cluster-tls "no openssl command"; ef_finish; }
command -v redis-cli >/dev/null || { skip cluster-tls "no redis-cli"; ef_finish; }

# ---- a CA and the nodes' certificate (127.0.0.1) ----
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
  -keyout "$D/ca.key" -out "$D/ca.crt" -subj "/CN=enrichfarm test ca" 2>/dev/null &&
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$D/node.key" \
    -out "$D/node.csr" -subj "/CN=localhost" 2>/dev/null &&
  printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >"$D/node.ext" &&
  openssl x509 -req -in "$D/node.csr" -CA "$D/ca.crt" -CAkey "$D/ca.key" -CAcreateserial \
    -days 2 -out "$D/node.crt" -extfile "$D/node.ext" 2>/dev/null ||
  { fail "cluster-tls: test certificates" "openssl failed"; ef_finish; }

# ---- three TLS-only cluster primaries ----
start_nodes() {
  local p
  for i in 0 1 2; do
    p=$((BASE + i))
    mkdir -p "$D/n$p"
    redis-server --bind 127.0.0.1 --port 0 --tls-port "$p" --tls-cluster yes --tls-replication yes \
      --tls-cert-file "$D/node.crt" --tls-key-file "$D/node.key" --tls-ca-cert-file "$D/ca.crt" \
      --tls-auth-clients no --cluster-enabled yes --cluster-config-file "$D/n$p/nodes.conf" \
      --cluster-node-timeout 1000 --save '' --appendonly no --dir "$D/n$p" --logfile "$D/n$p.log" &
    EF_PIDS+=("$!")
  done
  for i in 0 1 2; do
    ef_wait_for 10 "tc $((BASE + i)) PING | grep -q PONG" || return 1
  done
}
tc() { redis-cli --tls --cacert "$D/ca.crt" -h 127.0.0.1 -p "$1" "${@:2}"; }
started=0
for _ in 1 2 3; do
  BASE=$((21000 + (RANDOM % 300) * 10))
  if start_nodes; then started=1; break; fi
  grep -q "already in use" "$D"/n*.log 2>/dev/null || break
done
[ "$started" = 1 ] || { skip cluster-tls "TLS cluster nodes do not start here: $(tail -1 "$D"/n*.log 2>/dev/null | tail -1)"; ef_finish; }
PORTS=("$BASE" $((BASE + 1)) $((BASE + 2)))
if ! redis-cli --tls --cacert "$D/ca.crt" --cluster create 127.0.0.1:"${PORTS[0]}" 127.0.0.1:"${PORTS[1]}" \
  127.0.0.1:"${PORTS[2]}" --cluster-yes >"$D/create.log" 2>&1; then
  skip cluster-tls "redis-cli --cluster create over TLS failed: $(tail -2 "$D/create.log" | tr '\n' ' ')"
  ef_finish
fi
all_ok() { for p in "${PORTS[@]}"; do tc "$p" CLUSTER INFO | grep -q cluster_state:ok || return 1; done; }
if ef_wait_for 30 all_ok; then ok "cluster-tls: 3 TLS primaries, state ok"; else
  fail "cluster-tls: state ok" "$(tc "$BASE" CLUSTER INFO | head -1)"; ef_finish; fi
rcli() { redis-cli --tls --cacert "$D/ca.crt" -c -h 127.0.0.1 -p "$BASE" "$@"; } # job_field, ef_wait_job
owner_of() { # QUEUE: the TLS port of its primary
  local s; s=$(tc "$BASE" CLUSTER KEYSLOT "{$1}")
  tc "$BASE" CLUSTER NODES | awk -v s="$s" '$3 ~ /master/ {
    for (i = 9; i <= NF; i++) { n = split($i, r, "-"); lo = r[1]; hi = n > 1 ? r[2] : r[1];
      if (s + 0 >= lo + 0 && s + 0 <= hi + 0) { split($2, a, "[:@]"); print a[2]; exit } } }'
}
QF=""; QS=""
for c in $(seq 1 40); do
  o=$(owner_of "t$c")
  [ -z "$QF" ] && [ "$o" != "$BASE" ] && QF="t$c"
  [ -z "$QS" ] && [ "$o" = "$BASE" ] && QS="t$c"
  [ -n "$QF" ] && [ -n "$QS" ] && break
done
check "cluster-tls: a queue away from the seed ($QF) and one on it ($QS)" test -n "$QF" -a -n "$QS"

URL="rediss+cluster://127.0.0.1:$BASE?cacert=$D/ca.crt"
ef_mock_start mock --catalog 20000
ef_items_recipe "$MOCK_PORT" "$D/items.json"
truth() { "$BIN/mockprov" --expect items --catalog 20000 <"$1" | awk '{c[$2]++} END {printf "%d %d 0 0\n", c["updated"], c["not_found"]}'; }
counts() { echo "$(job_field "$1" updated "$2") $(job_field "$1" not_found "$2") $(job_field "$1" conflicts "$2") $(job_field "$1" errors "$2")"; }

# ---- enqueuer, a worker and statusd over rediss+cluster:// ----
seq 1 600 >"$D/ids600"
ja=$("$ENQ" --redis "$URL" --queue "$QF" --provider items --chunk-size 50 "$D/ids600" 2>"$D/enq-a.err")
check "cluster-tls: the enqueuer submits to $QF (its primary is not the seed)" test -n "$ja"
jb=$("$ENQ" --redis "$URL" --queue "$QS" --provider items --chunk-size 50 "$D/ids600" 2>"$D/enq-b.err")
check "cluster-tls: the enqueuer submits to $QS" test -n "$jb"
ef_worker_start "$D/w1.log" --redis "$URL" --queue "$QF,$QS" --providers "$D/items.json" --concurrency 16
SDP=$((BASE + 7))
ef_spawn "$D/sd.log" "$BIN/statusd" --redis "$URL" --listen "127.0.0.1:$SDP"
for q in "$QF:$ja" "$QS:$jb"; do
  if ef_wait_job "${q#*:}" completed 30 "${q%%:*}"; then ok "cluster-tls: job on ${q%%:*} completes"; else
    fail "cluster-tls: job on ${q%%:*} completes" "$(counts "${q#*:}" "${q%%:*}") $(tail -3 "$D/w1.log")"; fi
  eq "cluster-tls: job on ${q%%:*}: exact counts" "$(truth "$D/ids600")" "$(counts "${q#*:}" "${q%%:*}")"
done
ef_wait_for 10 'curl -sf "http://127.0.0.1:$SDP/health" | grep -q "\"redis\": *\"up\""'
contains "cluster-tls: statusd healthy" '"redis":"up"' "$(curl -s "http://127.0.0.1:$SDP/health" | tr -d ' ')"
contains "cluster-tls: statusd serves the job on $QF" '"processed":600' \
  "$(curl -s "http://127.0.0.1:$SDP/jobs/$ja?queue=$QF" | tr -d ' ')"

# ---- scripts/enqueue.sh: redis-cli --tls -c ----
seq 1001 1300 >"$D/ids300"
sid=$(bash "$EF_ROOT/scripts/enqueue.sh" --redis "$URL" --queue "$QF" --provider items --chunk-size 40 "$D/ids300" 2>"$D/sh.err")
check "cluster-tls: enqueue.sh prints a job id" test -n "$sid"
if ef_wait_job "$sid" completed 30 "$QF"; then
  eq "cluster-tls: enqueue.sh job exact counts" "$(truth "$D/ids300")" "$(counts "$sid" "$QF")"
else
  fail "cluster-tls: enqueue.sh job completes" "$(cat "$D/sh.err") $(counts "$sid" "$QF")"
fi

# ---- no plain text to TLS nodes ----
"$ENQ" --redis "redis+cluster://127.0.0.1:$BASE" --queue "$QF" --provider items "$D/ids300" >/dev/null 2>&1; rc=$?
eq "cluster-tls: a plain cluster URL to TLS nodes exits 1" 1 "$rc"

bad=$(grep -l -E "AddressSanitizer|runtime error:|LeakSanitizer" "$D"/w*.log "$D"/sd.log "$D"/*.err 2>/dev/null)
eq "cluster-tls: no sanitizer report in the logs" "" "$bad"
ef_finish
