# SPDX-License-Identifier: MIT
# Scenario 13, CPU per entity over HTTPS with HTTP/2: nginx (one worker
# process, bench/nginx-tls.conf.in) serves the static /item/* body over TLS
# with HTTP/2 offered, with a certificate of a test CA made here with
# openssl.  In each repetition, against that same nginx, the same request
# count C for all three: wrk -t1 -c64 over HTTPS (HTTP/1.1: wrk has no
# HTTP/2) for HS_WRK_S s (wrk stops on time, not on a count: C is the
# count it made); one worker (--concurrency $CONC, the recipe's ca_file
# the test CA) enriching C entities; h2load -n C -c 4 -m 16 -t 1 (HTTP/2,
# 64 streams in flight over 4 connections, what the worker opens).  CPU = user + system of the client process: wrk and h2load from
# /usr/bin/time, the worker (and nginx, Redis) from /proc ticks.  nginx's
# access log gives the connections and the protocol of each client's
# requests.  The worker over plain HTTP against the plain nginx of
# section 1, with wrk there, gives what TLS adds.  Sourced by bench/run.

scn_https() {
  local d="$B_TMP/https" rep base pbase hpid n ids="$B_TMP/ids.hs"
  command -v openssl >/dev/null || { note "https: openssl is missing: section 13 skipped"; return 1; }
  command -v nginx >/dev/null || { note "https: nginx is missing: section 13 skipped"; return 1; }
  mkdir -p "$d/tmp"
  ef_test_certs "$d" || { note "https: openssl could not make the test CA (see the log)"; return 1; }
  HS_PORT=$(b_free_port)
  sed -e "s|@PORT@|$HS_PORT|g" -e "s|@DIR@|$d|g" -e "s|@CERT@|$d/server.pem|g" -e "s|@KEY@|$d/server.key|g" \
    "$B_ROOT/bench/nginx-tls.conf.in" >"$d/nginx.conf"
  nginx -p "$d" -e "$d/error.log" -c "$d/nginx.conf" -g 'daemon off;' 2>>"$d/error.log" &
  HS_NPID=$!
  b_track "$HS_NPID"
  base="https://127.0.0.1:$HS_PORT"
  b_wait_for 10 curl -sf --cacert "$d/ca.pem" "$base/item/1" ||
    { note "https: nginx with TLS did not start (see $d/error.log)"; return 1; }
  hpid=$(pgrep -P "$HS_NPID" | head -1)
  cat >"$B_TMP/r.hs.json" <<EOF
{"providers": {"items": {
   "steps": [{"method": "GET", "url": "$base/item/{id}"}],
   "extract": {"title": "/title"}, "ca_file": "$d/ca.pem",
   "timeout_ms": 5000, "retries": 3}}}
EOF
  if [ -n "${NGINX_PORT:-}" ]; then
    pbase="http://127.0.0.1:$NGINX_PORT"
    b_recipe "$B_TMP/r.hs.plain.json" "$pbase"
  fi
  hs_log_reset
  for rep in $(seq 1 "$HS_REPS"); do
    # wrk over HTTPS (HTTP/1.1); its count is the count of the others
    B_PROV_PID=$hpid
    b_wrk "$base/item/42" "$HS_WRK_S" || { b_log "https: wrk failed (see $B_TMP/wrk.out)"; continue; }
    n=$(awk '/requests in/ {print $1}' "$B_TMP/wrk.out")
    [ "${n:-0}" -gt 0 ] 2>/dev/null || continue
    b_put hs.wrk.cpu "$WRK_CPU_US"
    b_put hs.wrk.pcpu "$WRK_PCPU_US"
    b_put hs.wrk.rps "$WRK_RPS"
    b_put hs.wrk.n "$n"
    hs_log_count wrk
    seq 1 "$n" >"$ids"
    # the worker over HTTPS (HTTP/2), as many entities
    if b_farm_run "$B_TMP/r.hs.json" 1 "$CONC" "$ids"; then
      b_put hs.w.cpu "$FR_WCPU_US"
      b_put hs.w.pcpu "$FR_PCPU_US"
      b_put hs.w.rcpu "$(b_div "$FR_CPU_US" "$FR_N")"
      b_put hs.w.eps "$FR_EPS"
      b_put hs.w.n "$FR_N"
    fi
    hs_log_count w
    # h2load over HTTPS (HTTP/2), the same count
    if hs_h2load "$base/item/42" "$hpid" "$n"; then
      b_put hs.h2l.cpu "$H2_CPU_US"
      b_put hs.h2l.pcpu "$H2_PCPU_US"
      b_put hs.h2l.rps "$H2_RPS"
      b_put hs.h2l.n "$H2_N"
    fi
    hs_log_count h2l
    b_put hs.ratio.wrk "$(b_div "$(tail -1 "$B_RES/v.hs.w.cpu" 2>/dev/null)" "$(tail -1 "$B_RES/v.hs.wrk.cpu" 2>/dev/null)")"
    b_put hs.ratio.h2l "$(b_div "$(tail -1 "$B_RES/v.hs.w.cpu" 2>/dev/null)" "$(tail -1 "$B_RES/v.hs.h2l.cpu" 2>/dev/null)")"
    # the same over plain HTTP (the plain nginx), what TLS adds
    if [ -n "${pbase:-}" ]; then
      B_PROV_PID=$(pgrep -P "$NGINX_PID" | head -1)
      b_farm_run "$B_TMP/r.hs.plain.json" 1 "$CONC" "$ids" && b_put hs.pw.cpu "$FR_WCPU_US"
      b_wrk "$pbase/item/42" "$HS_WRK_S" && b_put hs.pwrk.cpu "$WRK_CPU_US"
    fi
    B_PROV_PID=""
    b_log "https rep $rep: worker $(tail -1 "$B_RES/v.hs.w.cpu" 2>/dev/null) µs/entity," \
      "wrk $(tail -1 "$B_RES/v.hs.wrk.cpu" 2>/dev/null), h2load $(tail -1 "$B_RES/v.hs.h2l.cpu" 2>/dev/null) µs/request"
  done
  b_stop "$HS_NPID"
  hs_section >"$B_RES/md/99-https.md"
  return 0
}

# hs_h2load URL NGINX_WORKER_PID N: h2load -n N -c 4 -m 16 -t 1; sets H2_N
# (requests that succeeded), H2_RPS, H2_CPU_US (h2load's user + sys µs per
# request) and H2_PCPU_US (nginx's).
hs_h2load() {
  local p0 p1
  H2_N="" H2_RPS="" H2_CPU_US=n/a H2_PCPU_US=n/a
  command -v h2load >/dev/null || return 1
  p0=$(b_cpu_ticks "$2")
  /usr/bin/time -f '%U %S' -o "$B_TMP/h2load.time" h2load -n "$3" -c 4 -m 16 -t 1 "$1" \
    >"$B_TMP/h2load.out" 2>&1 || return 1
  p1=$(b_cpu_ticks "$2")
  H2_N=$(awk '/^requests:/ {print $8}' "$B_TMP/h2load.out")
  H2_RPS=$(awk '/^finished in/ {printf "%.0f\n", $4}' "$B_TMP/h2load.out")
  [ "${H2_N:-0}" -gt 0 ] 2>/dev/null || return 1
  H2_CPU_US=$(awk -v n="$H2_N" '{ printf "%.2f\n", ($1 + $2) * 1e6 / n }' "$B_TMP/h2load.time")
  H2_PCPU_US=$(b_div "$(((p1 - p0) * 1000000 / B_HZ))" "$H2_N")
}

# hs_log_count WHO: connections and HTTP/2 share of the requests nginx
# logged since the last count (the log is flushed every second), then
# starts the log afresh.
hs_log_count() {
  local f="$B_TMP/https/access.log" n c h
  sleep 1.2
  awk '{ t[$4]++ } END { for (k in t) print t[k], k }' "$f" | sort -n -r | head -1 | cut -d' ' -f2 >"$B_RES/hs.$1.tls"
  read -r n c h < <(awk '{ if (!($1 in s)) { s[$1] = 1; c++ }; n++; if ($2 == "HTTP/2.0") h++ }
    END { print n + 0, c + 0, h + 0 }' "$f")
  b_put "hs.$1.conns" "$c"
  b_put "hs.$1.h2pct" "$(awk -v n="$n" -v h="$h" 'BEGIN { if (n > 0) printf "%.1f", 100 * h / n; else print "n/a" }')"
  hs_log_reset
}
hs_log_reset() { : >"$B_TMP/https/access.log"; }

hs_v() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || echo n/a; }

hs_section() {
  echo "## 13. CPU per request over HTTPS with HTTP/2"
  echo
  echo "nginx (one worker process, \`bench/nginx-tls.conf.in\`) serves the static \`/item/*\` body over"
  echo "TLS (a certificate of a test CA made by the scenario with openssl, EC P-256) with HTTP/2"
  echo "offered by ALPN. In each of $HS_REPS repetitions, against that same nginx, one after the"
  echo "other and with the same request count C: \`wrk -t1 -c64 -d${HS_WRK_S}s\` over HTTPS, HTTP/1.1 (wrk"
  echo "has no HTTP/2, and stops on time, not on a count: C is the count it made); one worker"
  echo "(\`--concurrency $CONC\`, the recipe's \`ca_file\` the test CA) enriching C entities (chunk size"
  echo "50); \`h2load -n C -c 4 -m 16 -t 1\` (HTTP/2, 64 streams in flight over 4 connections, as"
  echo "the worker multiplexes). CPU = user + system time of the client process per request:"
  echo "wrk and h2load from \`/usr/bin/time\`, the worker (and nginx, redis-server) from"
  echo "\`/proc/PID/stat\` (10 ms ticks). The worker's CPU is that of a whole enrichment (Redis"
  echo "claims and acks, JSON parsing, the result written), the load generators' that of a"
  echo "request whose answer they discard. Connections and protocol are counted from nginx's"
  echo "access log. Ratios are worker / load generator of the same repetition. Versions: nginx $(hs_v nginx-light), wrk $(hs_v wrk), h2load $(hs_v nghttp2-client),"
  echo "libcurl $(hs_v libcurl4), OpenSSL $(hs_v openssl)."
  echo
  echo "| figure | median | min | max | runs |"
  echo "|---|---|---|---|---|"
  b_row "worker (HTTP/2): **client CPU µs per entity**" hs.w.cpu
  b_row "wrk (HTTP/1.1): **client CPU µs per request**" hs.wrk.cpu
  b_row "h2load (HTTP/2): **client CPU µs per request**" hs.h2l.cpu
  b_row "**ratio worker / wrk**" hs.ratio.wrk
  b_row "**ratio worker / h2load**" hs.ratio.h2l
  b_row "requests (C, wrk's count)" hs.wrk.n
  b_row "worker: entities" hs.w.n
  b_row "h2load: requests" hs.h2l.n
  b_row "worker: entities/s" hs.w.eps
  b_row "wrk: requests/s" hs.wrk.rps
  b_row "h2load: requests/s" hs.h2l.rps
  b_row "worker: connections nginx saw" hs.w.conns
  b_row "wrk: connections nginx saw" hs.wrk.conns
  b_row "h2load: connections nginx saw" hs.h2l.conns
  b_row "worker: % of requests over HTTP/2" hs.w.h2pct
  b_row "wrk: % of requests over HTTP/2" hs.wrk.h2pct
  b_row "h2load: % of requests over HTTP/2" hs.h2l.h2pct
  echo "| worker: TLS version / cipher (most requests, last repetition) | $(cat "$B_RES/hs.w.tls" 2>/dev/null) | | | |"
  echo "| wrk: TLS version / cipher | $(cat "$B_RES/hs.wrk.tls" 2>/dev/null) | | | |"
  echo "| h2load: TLS version / cipher | $(cat "$B_RES/hs.h2l.tls" 2>/dev/null) | | | |"
  b_row "nginx CPU µs per request, worker" hs.w.pcpu
  b_row "nginx CPU µs per request, wrk" hs.wrk.pcpu
  b_row "nginx CPU µs per request, h2load" hs.h2l.pcpu
  b_row "redis-server CPU µs per entity, worker" hs.w.rcpu
  if [ -s "$B_RES/v.hs.pw.cpu" ]; then
    b_row "plain HTTP (nginx of section 1): worker CPU µs per entity" hs.pw.cpu
    b_row "plain HTTP (nginx of section 1): wrk CPU µs per request" hs.pwrk.cpu
  fi
  echo
  if [ -s "$B_RES/v.hs.pw.cpu" ]; then
    echo "What TLS adds, client CPU per request (medians, HTTPS minus plain HTTP): the worker"
    echo "$(b_fmt "$(awk -v a="$(b_med hs.w.cpu)" -v b="$(b_med hs.pw.cpu)" 'BEGIN { print a - b }')") µs (HTTP/2 on one connection, against HTTP/1.1 on up to $CONC), wrk"
    echo "$(b_fmt "$(awk -v a="$(b_med hs.wrk.cpu)" -v b="$(b_med hs.pwrk.cpu)" 'BEGIN { print a - b }')") µs. The rest of the worker's cost is the enrichment itself (section 8 names it)."
    echo
  fi
}
