#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# ef-test: parallel
# TLS to Redis (rediss://) with a redis-server that has no plain port
# (--port 0 --tls-port P) and a CA and certificates the test makes with
# openssl: a job through the enqueuer, two workers and statusd with exact
# counts; scripts/enqueue.sh over TLS; a wrong CA, a wrong server name and a
# plain server behind a rediss:// URL (clear TLS errors, nothing written in
# plain text); mutual TLS (tls-auth-clients yes): without a client
# certificate the enqueuer and the worker exit 1 and statusd answers 503,
# each saying TLS, and with one the counts are exact; Redis restarted
# mid-job over TLS (reconnect, handshake again): exact counts, statusd
# healthy again, `enqueuer wait` reconnects; a TLS sentinel that names the
# TLS master (rediss+sentinel://) to the enqueuer and a worker.
source "$(dirname "$0")/lib.sh"

ef_setup
D=$EF_TMP
ENQ="$BIN/enqueuer"
trap 'for p in "${EF_PIDS[@]}"; do kill -9 "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; ef_cleanup' EXIT

command -v openssl >/dev/null || { skip tls "no openssl command"; ef_finish; }

# ---- certificates: a CA, the server (localhost, 127.0.0.1), a client, another CA ----
mk_ca() { openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
  -keyout "$D/$1.key" -out "$D/$1.crt" -subj "/CN=enrichfarm test $1" 2>/dev/null; }
mk_cert() { # NAME CA SUBJECT [SAN]
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$D/$1.key" \
    -out "$D/$1.csr" -subj "/CN=$3" 2>/dev/null &&
  printf '%s\n' "${4:-basicConstraints=CA:FALSE}" >"$D/$1.ext" &&
  openssl x509 -req -in "$D/$1.csr" -CA "$D/$2.crt" -CAkey "$D/$2.key" -CAcreateserial \
    -days 2 -out "$D/$1.crt" -extfile "$D/$1.ext" 2>/dev/null
}
mk_ca ca && mk_ca otherca && mk_cert server ca localhost 'subjectAltName=DNS:localhost,IP:127.0.0.1' &&
  mk_cert client ca farm || { fail "tls: test certificates" "openssl failed"; ef_finish; }

# ---- a TLS-only redis-server on a free port ----
TP=$((30000 + RANDOM % 2000))
for _ in 1 2 3 4 5; do (exec 3<>"/dev/tcp/127.0.0.1/$TP") 2>/dev/null || break; TP=$((TP + 7)); done
tls_redis() { # [extra args]: (re)starts it; pid in TLS_PID
  redis-server --bind 127.0.0.1 --port 0 --tls-port "$TP" --tls-cert-file "$D/server.crt" \
    --tls-key-file "$D/server.key" --tls-ca-cert-file "$D/ca.crt" --save '' --dir "$D" \
    --logfile "$D/tls-redis.log" "$@" &
  TLS_PID=$!
  EF_PIDS+=("$TLS_PID")
  ef_wait_for 10 'tcli PING | grep -q PONG'
}
tls_redis_stop() { kill "$TLS_PID" 2>/dev/null; wait "$TLS_PID" 2>/dev/null; }
tcli() { redis-cli --tls --cacert "$D/ca.crt" --cert "$D/client.crt" --key "$D/client.key" -p "$TP" "$@"; }
rcli() { tcli "$@"; }
job_field() { tcli HGET "farm:{${3:-default}}:job:$1" "$2"; }
counts() { echo "$(job_field "$1" updated) $(job_field "$1" not_found) $(job_field "$1" conflicts) $(job_field "$1" errors)"; }
truth() { "$BIN/mockprov" --expect items --catalog 20000 <"$1" | awk '{c[$2]++} END {printf "%d %d 0 0\n", c["updated"], c["not_found"]}'; }
stop() { local p; for p in "$@"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; }
# exits_within SECONDS PID: 0 when PID has exited by then; its status in EXIT_RC
exits_within() {
  local end=$((SECONDS + $1))
  while kill -0 "$2" 2>/dev/null && [ $SECONDS -lt "$end" ]; do sleep 0.1; done
  kill -0 "$2" 2>/dev/null && return 1
  wait "$2"; EXIT_RC=$?
  return 0
}

tls_redis --tls-auth-clients no || { fail "tls: redis-server --tls-port starts" "$(tail -3 "$D/tls-redis.log")"; ef_finish; }
CA="cacert=$D/ca.crt"
URL="rediss://127.0.0.1:$TP/0?$CA"
ef_mock_start mock --catalog 20000
MP=$MOCK_PORT
ef_items_recipe "$MP" "$D/items.json"

# ---- a job through enqueuer, workers and statusd over TLS ----
seq 1 2000 >"$D/ids2k"
id=$("$ENQ" --redis "$URL" --provider items --chunk-size 50 "$D/ids2k" 2>"$D/enq.err")
check "tls: enqueuer submits over rediss://" test -n "$id"
ws=()
for i in 1 2; do
  ef_worker_start "$D/w$i.log" --redis "rediss://localhost:$TP?$CA" --providers "$D/items.json" --concurrency 16
  ws+=("$EF_LAST_PID")
done
# sd_start LOG STATUSD-ARGS...: statusd on a port the kernel picks (a port
# derived from TP could be taken by a test running alongside); sets SDP
sd_start() {
  local log=$1; shift
  rm -f "$D/sd.port"
  ef_spawn "$log" "$BIN/statusd" "$@" --listen 127.0.0.1:0 --port-file "$D/sd.port"
  ef_wait_for 10 test -s "$D/sd.port"; SDP=$(cat "$D/sd.port")
}
sd_start "$D/sd.log" --redis "$URL"; sd=$EF_LAST_PID
if ef_wait_job "$id" completed 40; then ok "tls: job completes"; else fail "tls: job completes" "$(counts "$id") $(cat "$D/w1.log" | tail -3)"; fi
eq "tls: exact counts" "$(truth "$D/ids2k")" "$(counts "$id")"
eq "tls: processed = total" "2000 2000" "$(job_field "$id" processed) $(job_field "$id" total)"
eq "tls: one provider request per entity" 2000 "$(mock_stat "$MP" requests)"
ef_wait_for 10 'curl -sf "http://127.0.0.1:$SDP/jobs/$id" | grep -q completed'
body=$(curl -s "http://127.0.0.1:$SDP/jobs/$id")
contains "tls: statusd serves the job" '"processed":2000' "$(printf '%s' "$body" | tr -d ' ')"
contains "tls: statusd healthy" '"redis":"up"' "$(curl -s "http://127.0.0.1:$SDP/health" | tr -d ' ')"
contains "tls: the worker says where (rediss://)" "connected to rediss://localhost:$TP/0?cacert=" "$(cat "$D/w1.log")"

# ---- scripts/enqueue.sh over TLS (redis-cli --tls) ----
seq 3001 3600 >"$D/ids600"
sid=$(bash scripts/enqueue.sh --redis "$URL" --provider items --chunk-size 40 "$D/ids600" 2>"$D/sh.err")
check "tls: enqueue.sh prints a job id" test -n "$sid"
if ef_wait_job "$sid" completed 30; then ok "tls: enqueue.sh job completes"; else fail "tls: enqueue.sh job completes" "$(cat "$D/sh.err") $(counts "$sid")"; fi
eq "tls: enqueue.sh job exact counts" "$(truth "$D/ids600")" "$(counts "$sid")"
out=$(bash scripts/enqueue.sh --redis "rediss://127.0.0.1:$TP/0?$CA&sni=wrong.name" --provider items "$D/ids600" 2>&1)
contains "tls: enqueue.sh checks the server's name" "hostname mismatch" "$out"
stop "$sd" "${ws[@]}"

# ---- wrong CA, wrong name, a plain server: clear errors, no plain text ----
for bad in "rediss://127.0.0.1:$TP/0?cacert=$D/otherca.crt" "rediss://127.0.0.1:$TP/0?$CA&sni=wrong.name"; do
  out=$("$ENQ" --redis "$bad" --provider items "$D/ids600" 2>&1); rc=$?
  eq "tls: enqueuer exits 1 ($bad)" 1 "$rc"
  contains "tls: enqueuer says why ($bad)" "TLS: certificate verify failed" "$out"
done
contains "tls: the wrong name is named" "hostname mismatch" "$out"
out=$("$ENQ" --redis "rediss://127.0.0.1:$TP/0" --provider items "$D/ids600" 2>&1)
contains "tls: no cacert: the system store does not know the test CA" "certificate verify failed" "$out"
out=$("$ENQ" --redis "redis://127.0.0.1:$TP/0?$CA" --provider items "$D/ids600" 2>&1)
contains "tls: TLS options on a plain URL are refused" "needs a TLS URL" "$out"
ef_worker_start "$D/wca.log" --redis "rediss://127.0.0.1:$TP?cacert=$D/otherca.crt" --providers "$D/items.json"
if exits_within 10 "$EF_LAST_PID"; then eq "tls: worker with a wrong CA exits 1" 1 "$EXIT_RC"; else fail "tls: worker with a wrong CA exits" "still running"; fi
contains "tls: worker says TLS" "TLS: certificate verify failed for '127.0.0.1'" "$(cat "$D/wca.log")"
# a plain redis-server behind a rediss:// URL: refused, and nothing reached it
PP=$((TP + 3)); mkdir -p "$D/plain"
redis-server --bind 127.0.0.1 --port "$PP" --save '' --dir "$D/plain" --logfile "$D/plain.log" &
EF_PIDS+=("$!")
ef_wait_for 10 'redis-cli -p '"$PP"' PING | grep -q PONG'
out=$("$ENQ" --redis "rediss://127.0.0.1:$PP/0?$CA" --provider items "$D/ids600" 2>&1)
contains "tls: a plain server is refused" "is it a TLS port?" "$out"
ef_worker_start "$D/wplain.log" --redis "rediss://127.0.0.1:$PP?$CA" --providers "$D/items.json"; wp=$EF_LAST_PID
ef_wait_for 8 'grep -q "is it a TLS port" "$D/wplain.log"'
contains "tls: a worker on a plain server says TLS" "TLS: no handshake within" "$(cat "$D/wplain.log")"
stop "$wp"
eq "tls: no fallback: the plain server holds nothing" 0 "$(redis-cli -p "$PP" DBSIZE)"

# ---- mutual TLS ----
tcli CONFIG SET tls-auth-clients yes >/dev/null
out=$("$ENQ" --redis "$URL" --provider items "$D/ids600" 2>&1); rc=$?
eq "mtls: enqueuer without a client certificate exits 1" 1 "$rc"
contains "mtls: enqueuer says TLS and what is missing" "TLS: the server " "$out"
contains "mtls: enqueuer names the client certificate" "client certificate" "$out"
contains "mtls: enqueuer names cert= and key=" "cert= and key=" "$out"
ef_worker_start "$D/wnc.log" --redis "$URL" --providers "$D/items.json"
if exits_within 10 "$EF_LAST_PID"; then eq "mtls: worker without a certificate exits 1" 1 "$EXIT_RC"; else fail "mtls: worker without a certificate exits" "still running"; fi
contains "mtls: worker says TLS" "TLS: the server " "$(cat "$D/wnc.log")"
contains "mtls: worker names the client certificate" "client certificate" "$(cat "$D/wnc.log")"
sd_start "$D/sdnc.log" --redis "$URL"; sd=$EF_LAST_PID
ef_wait_for 10 'grep -q "TLS" "$D/sdnc.log"'
eq "mtls: statusd without a certificate answers 503" 503 "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$SDP/health")"
contains "mtls: statusd logs the TLS error" "client certificate" "$(cat "$D/sdnc.log")"
check "mtls: statusd stays up" kill -0 "$sd"
stop "$sd"
MURL="rediss://127.0.0.1:$TP/0?$CA&cert=$D/client.crt&key=$D/client.key"
seq 5001 6500 >"$D/ids1500"
mid=$("$ENQ" --redis "$MURL" --provider items --chunk-size 50 "$D/ids1500" 2>"$D/enq.err")
check "mtls: enqueuer with a certificate submits" test -n "$mid"
ef_worker_start "$D/mw.log" --redis "$MURL" --providers "$D/items.json" --concurrency 16; mw=$EF_LAST_PID
if ef_wait_job "$mid" completed 30; then ok "mtls: job completes"; else fail "mtls: job completes" "$(counts "$mid") $(tail -3 "$D/mw.log")"; fi
eq "mtls: exact counts" "$(truth "$D/ids1500")" "$(counts "$mid")"
stop "$mw"

# ---- Redis restarted mid-job over TLS ----
tls_redis_stop
rm -rf "$D"/appendonlydir
tls_redis --tls-auth-clients yes --appendonly yes --appendfsync always || fail "restart: TLS redis with AOF starts" ""
curl -s "http://127.0.0.1:$MP/control?latency_ms=5" >/dev/null
seq 1 3000 >"$D/ids3k"
rid=$("$ENQ" --redis "$MURL" --provider items --chunk-size 50 "$D/ids3k" 2>/dev/null)
ef_worker_start "$D/rr.log" --redis "$MURL" --providers "$D/items.json" --concurrency 16 --visibility-timeout 5; rw=$EF_LAST_PID
sd_start "$D/rsd.log" --redis "$MURL"; rsd=$EF_LAST_PID
ef_spawn "$D/rwait.log" "$ENQ" --redis "$MURL" wait "$rid"; rwait=$EF_LAST_PID
ef_wait_for 20 'test "$(job_field "$rid" processed)" -gt 500'
tls_redis_stop
sleep 1.5
tls_redis --tls-auth-clients yes --appendonly yes --appendfsync always || fail "restart: TLS redis restarts" ""
if ef_wait_job "$rid" completed 60; then ok "restart: job completes over TLS"; else fail "restart: job completes" "$(counts "$rid") $(tail -3 "$D/rr.log")"; fi
if exits_within 15 "$rwait"; then eq "restart: enqueuer wait reconnects (sync TLS) and exits 0" 0 "$EXIT_RC"; else fail "restart: enqueuer wait exits" "$(tail -3 "$D/rwait.log")"; fi
contains "restart: enqueuer wait reconnected" "reconnected to redis" "$(cat "$D/rwait.log")"
ef_wait_for 10 'curl -s "http://127.0.0.1:$SDP/health" | grep -q "\"redis\": *\"up\""'
contains "restart: statusd is healthy again" '"redis":"up"' "$(curl -s "http://127.0.0.1:$SDP/health" | tr -d ' ')"
stop "$rsd"
eq "restart: exact counts" "$(truth "$D/ids3k")" "$(counts "$rid")"
contains "restart: connection loss logged" "connection lost" "$(cat "$D/rr.log")"
contains "restart: reconnected (handshake again)" "reconnected after" "$(cat "$D/rr.log")"
check "restart: the worker is alive" kill -0 "$rw"
stop "$rw"

# ---- Sentinel over TLS: a TLS sentinel names the TLS master ----
SP=$((TP + 5)); mkdir -p "$D/s1"
cat >"$D/s1.conf" <<CONF
bind 127.0.0.1
port 0
tls-port $SP
tls-cert-file $D/server.crt
tls-key-file $D/server.key
tls-ca-cert-file $D/ca.crt
tls-auth-clients no
tls-replication yes
dir $D/s1
logfile $D/s1.log
sentinel monitor m 127.0.0.1 $TP 1
CONF
redis-server "$D/s1.conf" --sentinel &
EF_PIDS+=("$!")
scli() { redis-cli --tls --cacert "$D/ca.crt" -p "$SP" "$@"; }
if ef_wait_for 10 'scli SENTINEL get-master-addr-by-name m | grep -q 127.0.0.1'; then
  SURL="rediss+sentinel://localhost:$SP/m/0?$CA&cert=$D/client.crt&key=$D/client.key"
  seq 7001 7500 >"$D/ids500"
  sid=$("$ENQ" --redis "$SURL" --provider items --chunk-size 50 "$D/ids500" 2>"$D/senq.err")
  check "sentinel tls: enqueuer resolves and submits" test -n "$sid"
  ef_worker_start "$D/sw.log" --redis "$SURL" --providers "$D/items.json" --concurrency 16; sw=$EF_LAST_PID
  if ef_wait_job "$sid" completed 30; then ok "sentinel tls: job completes"; else fail "sentinel tls: job completes" "$(cat "$D/senq.err") $(tail -3 "$D/sw.log")"; fi
  eq "sentinel tls: exact counts" "$(truth "$D/ids500")" "$(counts "$sid")"
  contains "sentinel tls: the worker found the master" "connected to master m at 127.0.0.1:$TP" "$(cat "$D/sw.log")"
  stop "$sw"
else
  skip "sentinel tls" "a TLS sentinel did not start here: $(tail -2 "$D/s1.log" 2>/dev/null)"
fi
check "no sanitizer report in any log" sh -c "! grep -l Sanitizer $D/*.log $D/*.err"
ef_finish
