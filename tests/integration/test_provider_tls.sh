#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# ef-test: parallel
# TLS to providers (lib/ef_http.c, the recipe's ca_file / client_cert /
# client_key): nginx, run as this test's own process from a config in the
# temp dir, serves HTTPS with HTTP/2 from certificates of a test CA made
# here with openssl, and proxies to a mockprov.  Its access log records
# $connection and $server_protocol, so the test counts the connections the
# worker opened and sees HTTP/2.  Checks: exact counts through https with
# ca_file; 64 requests in flight over at most 4 connections; POSTs over
# HTTP/2 (each one resets its curl handle); without ca_file the private CA
# is not trusted (a clear verification error in the job's error log and the
# worker's log, no fallback); mutual TLS refused without the client
# certificate (nginx's error page, or openssl s_server's TLS alert, named
# in the error log) and exact counts with it (examples/https-mtls.json),
# also from one worker serving a recipe with and one without the
# certificate; a key that is not the certificate's and a handshake with a
# plain-HTTP server named; a missing or non-PEM ca_file refused at load;
# http_proxy and no_proxy from the environment honoured.  Skips where nginx
# cannot be installed.
source "$(dirname "$0")/lib.sh"
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY no_proxy NO_PROXY
if ! command -v nginx >/dev/null 2>&1 && [ -x /usr/sbin/nginx ]; then PATH=$PATH:/usr/sbin; fi
if ! command -v nginx >/dev/null 2>&1 || ! command -v openssl >/dev/null 2>&1; then
  skip "provider TLS" "nginx (Debian nginx-light) or openssl is not installed (mk/deps.sh installs them)"
  echo "0 passed, 0 failed"
  exit 0
fi
ef_setup
ENQ="$BIN/enqueuer"
D=$EF_TMP
N=400

# ---- a test CA, a server certificate for 127.0.0.1, a client certificate ----
ef_test_certs "$D" || { fail "openssl makes the test CA and certificates" "$(tail -5 "$D/openssl.log")"; ef_finish; }

ef_mock_start mp --catalog 1000 || { fail "mockprov starts"; ef_finish; }
MP=$MOCK_PORT

# free_port: a port nothing listens on now
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
TLS_PORT=$(free_port); MTLS_PORT=$(free_port); PLAIN_PORT=$(free_port)
mkdir -p "$D/nginx/tmp"
# nginx 1.22 syntax: "listen ... ssl http2" (the "http2 on" directive is 1.25.1's)
cat >"$D/nginx/nginx.conf" <<CONF
worker_processes 1;
events { worker_connections 1024; }
http {
  log_format conn '\$connection \$server_port \$server_protocol \$status \$request_uri';
  access_log $D/nginx/access.log conn;
  client_body_temp_path $D/nginx/tmp/body;
  proxy_temp_path $D/nginx/tmp/proxy;
  fastcgi_temp_path $D/nginx/tmp/fastcgi;
  uwsgi_temp_path $D/nginx/tmp/uwsgi;
  scgi_temp_path $D/nginx/tmp/scgi;
  http2_max_concurrent_streams 128;
  upstream mock { server 127.0.0.1:$MP; keepalive 32; }
  server {
    listen 127.0.0.1:$TLS_PORT ssl http2;
    ssl_certificate $D/server.pem;
    ssl_certificate_key $D/server.key;
    location / { proxy_pass http://mock; proxy_http_version 1.1; proxy_set_header Connection ""; }
    # a POST endpoint: /post/item/ID is mockprov's GET /item/ID
    location /post/ {
      proxy_method GET; proxy_pass_request_body off; proxy_set_header Content-Length "";
      proxy_pass http://mock/; proxy_http_version 1.1; proxy_set_header Connection "";
    }
  }
  server {
    listen 127.0.0.1:$MTLS_PORT ssl http2;
    ssl_certificate $D/server.pem;
    ssl_certificate_key $D/server.key;
    ssl_client_certificate $D/ca.pem;
    ssl_verify_client on;
    location / { proxy_pass http://mock; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
  server {
    listen 127.0.0.1:$PLAIN_PORT;
    location / { proxy_pass http://mock; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}
CONF
ef_spawn "$D/nginx.log" nginx -p "$D/nginx" -c "$D/nginx/nginx.conf" \
  -g "daemon off; pid $D/nginx/nginx.pid; error_log stderr;"
NGINX_PID=$EF_LAST_PID
# a TERM first, so that the master stops its worker process (a KILL would
# leave that one running)
nginx_stop() {
  [ -n "$NGINX_PID" ] || return 0
  kill -TERM "$NGINX_PID" 2>/dev/null
  for _ in $(seq 1 100); do kill -0 "$NGINX_PID" 2>/dev/null || break; sleep 0.05; done
  NGINX_PID=""
}
trap 'nginx_stop; ef_cleanup' EXIT
if ! ef_wait_for 10 "curl -s -o /dev/null --cacert '$D/ca.pem' https://127.0.0.1:$TLS_PORT/stats"; then
  fail "nginx starts with TLS and HTTP/2" "$(tail -5 "$D/nginx.log")"
  ef_finish
fi
ok "nginx starts with TLS and HTTP/2"

# recipe FILE PORT [extra json members]: the items recipe over https
recipe() {
  cat >"$1" <<JSON
{"providers": {"items": {
   "steps": [{"method": "GET", "url": "https://127.0.0.1:$2/item/{id}"}],
   "extract": {"title": "/title"},
   "timeout_ms": 5000, "retries": 2${3:-}}}}
JSON
}
counts() { echo "$(job_field "$1" updated) $(job_field "$1" not_found) $(job_field "$1" conflicts) $(job_field "$1" errors)"; }
# expected "updated not_found 0 0" for ids file $1, from mockprov's own catalogue
expected() { "$BIN/mockprov" --expect items --catalog 1000 <"$1" | awk '{c[$2]++} END {printf "%d %d 0 0\n", c["updated"], c["not_found"]}'; }
# log_lines PORT: access-log lines of requests to that nginx port so far
log_lines() { awk -v p="$1" '$2 == p' "$D/nginx/access.log"; }
# last_error ID: the newest entry of the job's error log, JSON slashes unescaped
last_error() { rcli LRANGE "farm:{default}:job:$1:errors" 0 0 | sed 's|\\/|/|g'; }
stop_worker() { kill -TERM "$WPID" 2>/dev/null; wait "$WPID" 2>/dev/null; }
seq 1 $N >"$D/ids"
want=$(expected "$D/ids")

# ---- https with ca_file: exact counts, HTTP/2, 64 in flight over <= 4 connections ----
# mockprov answers after 20 ms, so that 64 requests are in flight at once
curl -s "http://127.0.0.1:$MP/control?latency_ms=20" >/dev/null
recipe "$D/ca.json" "$TLS_PORT" ", \"ca_file\": \"$D/ca.pem\""
id=$("$ENQ" --provider items --chunk-size 100 "$D/ids" 2>"$D/enq.err")
ef_worker_start "$D/w1.log" --providers "$D/ca.json" --concurrency 64; WPID=$EF_LAST_PID
if ef_wait_job "$id" completed 40; then ok "ca_file: the job completed over https"; else
  fail "ca_file: the job completes over https" "status $(job_field "$id" status); $(rcli LRANGE "farm:{default}:job:$id:errors" 0 2)"; fi
eq "ca_file: exact counts (updated not_found conflicts errors)" "$want" "$(counts "$id")"
stop_worker
lines=$(log_lines "$TLS_PORT")
eq "ca_file: nginx saw every request once" "$N" "$(printf '%s\n' "$lines" | grep -c '/item/')"
eq "ca_file: every request was HTTP/2" "$N" "$(printf '%s\n' "$lines" | grep '/item/' | grep -c ' HTTP/2.0 ')"
conns=$(printf '%s\n' "$lines" | awk '/\/item\// {print $1}' | sort -u | wc -l)
check "http2: $N requests, 64 in flight, over at most 4 connections (saw $conns)" test "$conns" -ge 1 -a "$conns" -le 4

# ---- POST over HTTP/2, 64 in flight: every request reconfigures its handle ----
# (curl keeps the receive buffer of a transfer that ends while others still
# share its connection, and then refuses the buffer size a reset handle needs)
cat >"$D/post.json" <<JSON
{"providers": {"items": {
   "steps": [{"method": "POST", "url": "https://127.0.0.1:$TLS_PORT/post/item/{id}", "body": "id={id}"}],
   "extract": {"title": "/title"}, "timeout_ms": 5000, "retries": 2, "ca_file": "$D/ca.pem"}}}
JSON
id=$("$ENQ" --provider items --chunk-size 100 "$D/ids" 2>/dev/null)
ef_worker_start "$D/wp.log" --providers "$D/post.json" --concurrency 64; WPID=$EF_LAST_PID
ef_wait_job "$id" completed 40 || fail "POST over HTTP/2: the job ends" "status $(job_field "$id" status)"
eq "POST over HTTP/2: exact counts" "$want" "$(counts "$id")"
eq "POST over HTTP/2: nginx saw every POST once" "$N" "$(log_lines "$TLS_PORT" | grep -c '/post/item/')"
stop_worker

# ---- without ca_file: the private CA is not trusted, no fallback ----
recipe "$D/noca.json" "$TLS_PORT"
seq 1 5 >"$D/ids5"
before=$(log_lines "$TLS_PORT" | wc -l)
id=$("$ENQ" --provider items "$D/ids5" 2>/dev/null)
ef_worker_start "$D/w2.log" --providers "$D/noca.json" --concurrency 8; WPID=$EF_LAST_PID
ef_wait_job "$id" completed 20 || fail "no ca_file: the job ends" "status $(job_field "$id" status)"
eq "no ca_file: every entity is an error" "0 0 0 5" "$(counts "$id")"
err=$(last_error "$id")
contains "no ca_file: the error log names a verification failure" "failed verification against the system's CAs" "$err"
contains "no ca_file: the error log gives OpenSSL's reason" "unable to get local issuer certificate" "$err"
eq "no ca_file: no request reached nginx" "$before" "$(log_lines "$TLS_PORT" | wc -l)"
ef_wait_for 5 'grep -q "TLS with 127.0.0.1 port" "$D/w2.log"'
contains "no ca_file: the worker log names the peer and the cause" "TLS with 127.0.0.1 port $TLS_PORT: TLS: the provider's certificate failed verification" "$(cat "$D/w2.log")"
check "no ca_file: the worker log does not repeat it per entity" test "$(grep -c 'TLS with' "$D/w2.log")" -eq 1
stop_worker

# ---- mutual TLS: refused without the client certificate, exact counts with it ----
recipe "$D/nocert.json" "$MTLS_PORT" ", \"ca_file\": \"$D/ca.pem\""
id=$("$ENQ" --provider items "$D/ids5" 2>/dev/null)
ef_worker_start "$D/w3.log" --providers "$D/nocert.json" --concurrency 8; WPID=$EF_LAST_PID
ef_wait_job "$id" completed 20 || fail "mtls without a client certificate: the job ends" "status $(job_field "$id" status)"
eq "mtls without a client certificate: every entity is an error" "0 0 0 5" "$(counts "$id")"
contains "mtls without a client certificate: the error log says so" "No required SSL certificate was sent" \
  "$(last_error "$id")"
stop_worker
# examples/https-mtls.json with this test's port and files
sed -e "s|127.0.0.1:8443|127.0.0.1:$MTLS_PORT|" -e "s|/etc/enrichfarm/provider-ca.pem|$D/ca.pem|" \
  -e "s|/etc/enrichfarm/worker-cert.pem|$D/client.pem|" -e "s|/etc/enrichfarm/worker-key.pem|$D/client.key|" \
  -e 's|"requests": 200|"requests": 2000|' "$EF_ROOT/examples/https-mtls.json" >"$D/mtls.json"
id=$("$ENQ" --provider items --chunk-size 100 "$D/ids" 2>/dev/null)
ef_worker_start "$D/w4.log" --providers "$D/mtls.json" --concurrency 64; WPID=$EF_LAST_PID
if ef_wait_job "$id" completed 40; then ok "mtls with the client certificate: the job completed"; else
  fail "mtls with the client certificate: the job completes" "status $(job_field "$id" status); $(rcli LRANGE "farm:{default}:job:$id:errors" 0 2)"; fi
eq "mtls with the client certificate: exact counts" "$want" "$(counts "$id")"
stop_worker
# a server that ends the handshake without a client certificate (openssl
# s_server, TLS 1.3: the "certificate required" alert): the alert is named
SS_PORT=$(free_port)
ef_spawn "$D/s_server.log" openssl s_server -accept "127.0.0.1:$SS_PORT" -cert "$D/server.pem" \
  -key "$D/server.key" -CAfile "$D/ca.pem" -Verify 1 -verify_return_error -www -quiet
SS_PID=$EF_LAST_PID
recipe "$D/alert.json" "$SS_PORT" ", \"ca_file\": \"$D/ca.pem\""
sed -i 's/"retries": 2/"retries": 0/' "$D/alert.json"
if ef_wait_for 5 "curl -s -o /dev/null --max-time 1 --cacert '$D/ca.pem' https://127.0.0.1:$SS_PORT/; [ \$? -ne 7 ]"; then
  id=$("$ENQ" --provider items "$D/ids5" 2>/dev/null)
  ef_worker_start "$D/w10.log" --providers "$D/alert.json" --concurrency 1; WPID=$EF_LAST_PID
  ef_wait_job "$id" completed 20 || fail "mtls alert: the job ends" "status $(job_field "$id" status)"
  eq "mtls alert: every entity is an error" "0 0 0 5" "$(counts "$id")"
  contains "mtls alert: the error log names the alert" "alert certificate required" "$(last_error "$id")"
  stop_worker
  contains "mtls alert: the worker log names it too" "alert certificate required" "$(grep 'TLS with' "$D/w10.log")"
else
  fail "mtls alert: openssl s_server starts" "$(tail -3 "$D/s_server.log")"
fi
kill "$SS_PID" 2>/dev/null

# one worker, two recipes to the same host, with and without the client
# certificate: a connection made with it never carries a request without it
cat >"$D/two.json" <<JSON
{"providers": {
  "withcert": {"steps": [{"method": "GET", "url": "https://127.0.0.1:$MTLS_PORT/item/{id}"}],
    "extract": {"title": "/title"}, "retries": 0, "ca_file": "$D/ca.pem",
    "client_cert": "$D/client.pem", "client_key": "$D/client.key"},
  "nocert": {"steps": [{"method": "GET", "url": "https://127.0.0.1:$MTLS_PORT/item/{id}"}],
    "extract": {"title": "/title"}, "retries": 0, "ca_file": "$D/ca.pem"}}}
JSON
seq 1 50 >"$D/ids50"
want50=$(expected "$D/ids50")
ef_worker_start "$D/w8.log" --providers "$D/two.json" --concurrency 16 --log-level debug; WPID=$EF_LAST_PID
ef_wait_for 10 '[ "$(rcli HEXISTS farm:providers nocert)" = 1 ]'
id1=$("$ENQ" --provider withcert --chunk-size 5 "$D/ids50" 2>/dev/null)
id2=$("$ENQ" --provider nocert --chunk-size 5 "$D/ids50" 2>/dev/null)
ef_wait_job "$id1" completed 20 && ef_wait_job "$id2" completed 20 || fail "two recipes: the jobs end" "$(job_field "$id1" status) $(job_field "$id2" status)"
eq "two recipes: exact counts with the client certificate" "$want50" "$(counts "$id1")"
rcli LRANGE "farm:{default}:job:$id1:errors" 0 3 >&2
eq "two recipes: every entity an error without it, on the same worker" "0 0 0 50" "$(counts "$id2")"
stop_worker
# a key that is not the certificate's: a clear error naming the certificate
recipe "$D/badkey.json" "$MTLS_PORT" \
  ", \"ca_file\": \"$D/ca.pem\", \"client_cert\": \"$D/client.pem\", \"client_key\": \"$D/server.key\""
id=$("$ENQ" --provider items "$D/ids5" 2>/dev/null)
ef_worker_start "$D/w5.log" --providers "$D/badkey.json" --concurrency 8; WPID=$EF_LAST_PID
ef_wait_job "$id" completed 20 || fail "mtls with the wrong key: the job ends" "status $(job_field "$id" status)"
contains "mtls with the wrong key: the error log names the client certificate" "cannot use client_cert $D/client.pem" \
  "$(last_error "$id")"
stop_worker

# ---- https:// to a server that speaks plain HTTP: the handshake error is named ----
recipe "$D/plain.json" "$PLAIN_PORT" ", \"ca_file\": \"$D/ca.pem\""
sed -i 's/"retries": 2/"retries": 0/' "$D/plain.json"
id=$("$ENQ" --provider items "$D/ids5" 2>/dev/null)
ef_worker_start "$D/w9.log" --providers "$D/plain.json" --concurrency 8; WPID=$EF_LAST_PID
ef_wait_job "$id" completed 20 || fail "handshake: the job ends" "status $(job_field "$id" status)"
eq "handshake: every entity is an error" "0 0 0 5" "$(counts "$id")"
contains "handshake: the error log names the TLS handshake" "TLS handshake failed: " "$(last_error "$id")"
stop_worker

# ---- a recipe whose ca_file is missing or not PEM is refused at load ----
recipe "$D/missing.json" "$TLS_PORT" ", \"ca_file\": \"$D/nope.pem\""
out=$(timeout 10 "$BIN/worker" --providers "$D/missing.json" --concurrency 1 2>&1); rc=$?
check "missing ca_file: the worker refuses to start" test "$rc" -ne 0 -a "$rc" -ne 124
contains "missing ca_file: the error names the field and the file" "ca_file: cannot read $D/nope.pem" "$out"
recipe "$D/notpem.json" "$TLS_PORT" ", \"ca_file\": \"$D/ids5\""
out=$(timeout 10 "$BIN/worker" --providers "$D/notpem.json" --concurrency 1 2>&1)
contains "ca_file without PEM: refused at load" "holds no PEM block" "$out"
recipe "$D/keyonly.json" "$TLS_PORT" ", \"client_key\": \"$D/client.key\""
out=$(timeout 10 "$BIN/worker" --providers "$D/keyonly.json" --concurrency 1 2>&1)
contains "client_key without client_cert: refused at load" "client_key: needs client_cert" "$out"

# ---- proxies from the environment ----
# http_proxy: a host name nobody can resolve reaches the mock through nginx
cat >"$D/proxied.json" <<JSON
{"providers": {"items": {
   "steps": [{"method": "GET", "url": "http://provider.invalid/item/{id}"}],
   "extract": {"title": "/title"}, "timeout_ms": 5000, "retries": 1}}}
JSON
want5=$(expected "$D/ids5")
id=$("$ENQ" --provider items "$D/ids5" 2>/dev/null)
ef_spawn "$D/w6.log" env http_proxy="http://127.0.0.1:$PLAIN_PORT" \
  "$BIN/worker" --providers "$D/proxied.json" --concurrency 4; WPID=$EF_LAST_PID
ef_wait_job "$id" completed 20 || fail "http_proxy: the job ends" "status $(job_field "$id" status)"
eq "http_proxy: exact counts through the proxy" "$want5" "$(counts "$id")"
eq "http_proxy: the proxy carried every request" 5 "$(log_lines "$PLAIN_PORT" | grep -c '/item/')"
stop_worker
# no_proxy: a listed host goes direct (the proxy here is a port nobody serves)
ef_items_recipe "$MP" "$D/direct.json"
id=$("$ENQ" --provider items "$D/ids5" 2>/dev/null)
ef_spawn "$D/w7.log" env http_proxy="http://127.0.0.1:$(free_port)" no_proxy=127.0.0.1 \
  "$BIN/worker" --providers "$D/direct.json" --concurrency 4; WPID=$EF_LAST_PID
ef_wait_job "$id" completed 20 || fail "no_proxy: the job ends" "status $(job_field "$id" status)"
eq "no_proxy: exact counts, straight to the provider" "$want5" "$(counts "$id")"
stop_worker

nginx_stop
eq "no sanitizer report in a worker's log" "" \
  "$(grep -l -E 'ERROR: AddressSanitizer|runtime error:|ERROR: LeakSanitizer' "$D"/w*.log 2>/dev/null | xargs -r -n1 basename)"
ef_finish
