#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# ef-test: parallel
# OAuth2 over mutual TLS (worker/auth.c): the token request uses the
# recipe's ca_file, client_cert and client_key, as the steps do.  nginx, run
# as this test's own process, serves HTTPS from certificates of a test CA
# made here, requires a client certificate, and proxies to a mockprov that
# refuses item requests without a bearer token.  Checks: exact counts with
# one token fetch through nginx; without the client certificate the token
# request is refused and the worker says so, naming the recipe.  Skips
# where nginx cannot be installed.
source "$(dirname "$0")/lib.sh"
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY no_proxy NO_PROXY
if ! command -v nginx >/dev/null 2>&1 && [ -x /usr/sbin/nginx ]; then PATH=$PATH:/usr/sbin; fi
if ! command -v nginx >/dev/null 2>&1 || ! command -v openssl >/dev/null 2>&1; then
  skip "oauth over TLS" "nginx (Debian nginx-light) or openssl is not installed (mk/deps.sh installs them)"
  echo "0 passed, 0 failed"
  exit 0
fi
ef_setup
ENQ="$BIN/enqueuer"
D=$EF_TMP
export OAUTH_CLIENT_ID=tls-client OAUTH_CLIENT_SECRET='tls-Secret-4k2w'

ef_test_certs "$D" || { fail "openssl makes the test CA" "$(tail -5 "$D/openssl.log")"; ef_finish; }

ef_mock_start mp --catalog 1000 --oauth 1 --client-id "$OAUTH_CLIENT_ID" \
  --client-secret "$OAUTH_CLIENT_SECRET" || { fail "mockprov starts"; ef_finish; }
MP=$MOCK_PORT
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$D/nginx/tmp"
cat >"$D/nginx/nginx.conf" <<CONF
worker_processes 1;
events { worker_connections 256; }
http {
  log_format req '\$request_method \$request_uri \$status \$ssl_client_verify';
  access_log $D/nginx/access.log req;
  client_body_temp_path $D/nginx/tmp/body;
  proxy_temp_path $D/nginx/tmp/proxy;
  fastcgi_temp_path $D/nginx/tmp/fastcgi;
  uwsgi_temp_path $D/nginx/tmp/uwsgi;
  scgi_temp_path $D/nginx/tmp/scgi;
  upstream mock { server 127.0.0.1:$MP; keepalive 8; }
  server {
    listen 127.0.0.1:$PORT ssl http2;
    ssl_certificate $D/server.pem;
    ssl_certificate_key $D/server.key;
    ssl_client_certificate $D/ca.pem;
    ssl_verify_client on;
    location / { proxy_pass http://mock; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}
CONF
ef_spawn "$D/nginx.log" nginx -p "$D/nginx" -c "$D/nginx/nginx.conf" \
  -g "daemon off; pid $D/nginx/nginx.pid; error_log stderr;"
NGINX_PID=$EF_LAST_PID
nginx_stop() { # TERM, so that the master stops its worker process too
  [ -n "$NGINX_PID" ] || return 0
  kill -TERM "$NGINX_PID" 2>/dev/null
  for _ in $(seq 1 100); do kill -0 "$NGINX_PID" 2>/dev/null || break; sleep 0.05; done
  NGINX_PID=""
}
trap 'nginx_stop; ef_cleanup' EXIT
if ! ef_wait_for 10 "curl -s -o /dev/null --cacert '$D/ca.pem' --cert '$D/client.pem' --key '$D/client.key' https://127.0.0.1:$PORT/stats"; then
  fail "nginx starts" "$(tail -5 "$D/nginx.log")"
  ef_finish
fi

# recipe FILE PROVIDER [extra members]: items and the token both through nginx
recipe() {
  cat >"$1" <<JSON
{"providers": {"$2": {
   "steps": [{"url": "https://127.0.0.1:$PORT/item/{id}"}], "extract": {"title": "/title"},
   "auth": {"type": "oauth2_client_credentials", "token_url": "https://127.0.0.1:$PORT/oauth/token",
            "client_id": "\${OAUTH_CLIENT_ID}", "client_secret": "\${OAUTH_CLIENT_SECRET}",
            "max_outage_s": 1},
   "timeout_ms": 5000, "retries": 1, "ca_file": "$D/ca.pem"${3:-}}}}
JSON
}
stat_oauth() { curl -s "http://127.0.0.1:$MP/stats" | python3 -c "import json,sys; print(json.load(sys.stdin)['oauth']['$1'])"; }

# ---- with the client certificate: the token and the items over mutual TLS ----
recipe "$D/mtls.json" items ", \"client_cert\": \"$D/client.pem\", \"client_key\": \"$D/client.key\""
seq 1 50 >"$D/ids"
ef_worker_start "$D/w1.log" --providers "$D/mtls.json" --concurrency 8
w1=$EF_LAST_PID
ef_wait_for 10 '[ -n "$(rcli HGET farm:providers items)" ]'
id=$("$ENQ" --provider items "$D/ids" 2>/dev/null)
if ef_wait_job "$id" completed 30; then ok "mtls: the job completed"; else
  fail "mtls: the job completes" "status $(job_field "$id" status); $(tail -3 "$D/w1.log")"; fi
eq "mtls: exact counts" "45 5 0" "$(job_field "$id" updated) $(job_field "$id" not_found) $(job_field "$id" errors)"
eq "mtls: one token fetch" 1 "$(stat_oauth token_fetches)"
contains "mtls: the token request went through nginx with the client certificate" \
  "POST /oauth/token 200 SUCCESS" "$(cat "$D/nginx/access.log")"
kill -TERM "$w1" 2>/dev/null; wait "$w1" 2>/dev/null

# ---- without it: the token request is refused, the worker says so ----
recipe "$D/nocert.json" nocert
seq 1 5 >"$D/ids5"
ef_worker_start "$D/w2.log" --providers "$D/nocert.json" --concurrency 4
ef_wait_for 10 '[ -n "$(rcli HGET farm:providers nocert)" ]'
id=$("$ENQ" --provider nocert "$D/ids5" 2>/dev/null)
ef_wait_job "$id" completed 20 || fail "no client certificate: the job ends" "status $(job_field "$id" status)"
eq "no client certificate: every entity an error after max_outage_s" 5 "$(job_field "$id" errors)"
contains "no client certificate: the worker names the recipe and the refusal" \
  "recipe 'nocert': auth: no OAuth2 token: the token endpoint answered HTTP 400" "$(cat "$D/w2.log")"
contains "no client certificate: nginx saw no certificate" "POST /oauth/token 400 NONE" "$(cat "$D/nginx/access.log")"
ef_finish
