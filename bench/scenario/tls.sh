# SPDX-License-Identifier: MIT
# Scenario 10, TLS to Redis: one redis-server listening on a plain TCP
# port and on a TLS port (a CA and a server certificate made here with
# openssl, as tests/integration/test_redis_tls.sh does; no client
# certificate), and in each repetition the same farm on both: a
# TLS_N-entity job (chunk size 50) through the enqueuer and one worker
# (--concurrency 64, mockprov), given redis:// or rediss://.  Per run:
# entities/s, redis-server CPU, the worker's CPU and Redis commands per
# entity; a smaller MONITOR run of each counts the round trips.  Ratios
# TLS / plain within a repetition.  Sourced by bench/run.

scn_tls() {
  local ids="$B_TMP/ids.tls" rtids="$B_TMP/ids.tlsrt" d="$B_TMP/tls" rep kind order url
  command -v openssl >/dev/null || { note "tls skipped: no openssl command"; return 0; }
  seq 1 "$TLS_N" >"$ids"
  seq 1 "$TLS_RT_N" >"$rtids"
  b_recipe "$B_TMP/r.tls.json" "http://127.0.0.1:$MOCK_PORT"
  mkdir -p "$d"
  # a CA and the server's certificate for 127.0.0.1 (tests/certs.sh)
  if ! ef_test_certs "$d"; then
    note "tls skipped: openssl could not make the test certificates (see $d/openssl.log)"
    return 0
  fi
  local tport
  tport=$(b_free_port)
  b_node_start tlsnode --tls-port "$tport" --tls-cert-file "$d/server.pem" \
    --tls-key-file "$d/server.key" --tls-ca-cert-file "$d/ca.pem" --tls-auth-clients no || {
    note "tls skipped: redis-server does not start with --tls-port (see $B_TMP/tlsnode.log)"
    return 0
  }
  local pport=$NODE_PORT npid=$NODE_PID
  local url_plain="redis://127.0.0.1:$pport/0"
  local url_tls="rediss://127.0.0.1:$tport/0?cacert=$d/ca.pem"
  MF_SOCKS=("$B_TMP/tlsnode.sock")
  MF_QSOCK=([default]="$B_TMP/tlsnode.sock")
  b_log "tls: redis-server plain :$pport, TLS :$tport"

  local -A r_eps=() r_cpu=() r_wcpu=() r_cmds=()
  for rep in $(seq 1 "$REPS"); do
    order="plain tls"; [ $((rep % 2)) = 0 ] && order="tls plain"
    r_eps=() r_cpu=() r_wcpu=() r_cmds=()
    for kind in $order; do
      url=$url_plain; [ "$kind" = tls ] && url=$url_tls
      if ! b_mfarm_run "$url" "$B_TMP/r.tls.json" 1 "$CONC" "$ids" default; then
        b_log "rep $rep $kind: the job did not complete"; continue
      fi
      r_eps[$kind]=$MF_EPS
      r_cpu[$kind]=$(b_div "$MF_CPU_US" "$MF_N")
      r_wcpu[$kind]=$MF_WCPU_US
      r_cmds[$kind]=$(b_div "$MF_CMDS" "$MF_N")
      b_put "tls.$kind.eps" "$MF_EPS"
      b_put "tls.$kind.cpu" "${r_cpu[$kind]}"
      b_put "tls.$kind.wcpu" "$MF_WCPU_US"
      b_put "tls.$kind.cmds" "${r_cmds[$kind]}"
      b_log "rep $rep $kind: $MF_EPS entities/s, redis cpu us/entity ${r_cpu[$kind]}, worker cpu us/entity $MF_WCPU_US, cmds/entity ${r_cmds[$kind]}"
    done
    if [ -n "${r_eps[plain]:-}" ] && [ -n "${r_eps[tls]:-}" ]; then
      b_put tls.ratio.eps "$(b_div "${r_eps[tls]}" "${r_eps[plain]}")"
      b_put tls.ratio.cpu "$(b_div "${r_cpu[tls]}" "${r_cpu[plain]}")"
      b_put tls.ratio.wcpu "$(b_div "${r_wcpu[tls]}" "${r_wcpu[plain]}")"
      b_put tls.ratio.cmds "$(b_div "${r_cmds[tls]}" "${r_cmds[plain]}")"
    fi
  done

  # round trips: MONITOR (over the unix socket) of a smaller run of each
  local ours lua n=n/a
  for kind in plain tls; do
    url=$url_plain; [ "$kind" = tls ] && url=$url_tls
    MF_MON="$B_TMP/mon.$kind"
    if b_mfarm_run "$url" "$B_TMP/r.tls.json" 1 "$CONC" "$rtids" default; then
      read -r ours lua < <(b_monitor_count_tcp "$MF_MON.0")
      b_put "tls.$kind.rt" "$(b_div "$ours" "$MF_N")"
      b_put "tls.$kind.rtlua" "$(b_div "$lua" "$MF_N")"
      b_monitor_bycmd_tcp "$MF_N" "$MF_MON.0" >"$B_RES/tls.rt.$kind"
      n=$MF_N
      b_log "monitor $kind: $ours round trips, $lua inside scripts, for $MF_N entities"
    else
      b_log "monitor run $kind did not complete"
    fi
    MF_MON=""
  done
  b_stop "$npid"
  tls_report "$n"
  return 0
}

tls_report() {
  local rr
  rr=$(b_div "$(b_med tls.tls.rt)" "$(b_med tls.plain.rt)")
  {
    echo "## 10. TLS to Redis: rediss:// against redis://"
    echo
    echo "One redis-server listening on a plain TCP port and on a TLS port (\`--tls-port\`,"
    echo "\`--tls-auth-clients no\`; a CA and a P-256 server certificate for 127.0.0.1 made by"
    echo "the benchmark with openssl); in each repetition the same farm on both, the order"
    echo "alternating: a $TLS_N-entity job (chunk size 50) through the enqueuer and one worker"
    echo "(\`--concurrency $CONC\`, mockprov) given \`redis://127.0.0.1:PORT/0\` or"
    echo "\`rediss://127.0.0.1:TLSPORT/0?cacert=ca.pem\` (TLS 1.3, both ends' defaults). Our"
    echo "programs speak TLS through OpenSSL with memory BIOs and a socketpair to hiredis"
    echo "(\`lib/ef_tls.h\`), so the worker's CPU includes the pump. redis-server CPU and"
    echo "commands: \`INFO\` deltas from just before the enqueue to the completion; worker CPU:"
    echo "\`/proc/PID/stat\` (10 ms ticks); round trips: a separate run of $1 entities of each with"
    echo "\`MONITOR\` (over the unix socket: the benchmark's own polls and INFO use it, and are"
    echo "left out). Ratios are taken within a repetition."
    echo
    echo "| figure | median | min | max | runs |"
    echo "|---|---|---|---|---|"
    b_row "plain: entities/s" tls.plain.eps
    b_row "TLS: entities/s" tls.tls.eps
    b_row "**throughput, TLS / plain**" tls.ratio.eps
    b_row "plain: redis-server CPU µs per entity" tls.plain.cpu
    b_row "TLS: redis-server CPU µs per entity" tls.tls.cpu
    b_row "**redis-server CPU per entity, TLS / plain**" tls.ratio.cpu
    b_row "plain: worker CPU µs per entity" tls.plain.wcpu
    b_row "TLS: worker CPU µs per entity" tls.tls.wcpu
    b_row "**worker CPU per entity, TLS / plain**" tls.ratio.wcpu
    b_row "plain: Redis commands per entity (incl. inside scripts)" tls.plain.cmds
    b_row "TLS: Redis commands per entity (incl. inside scripts)" tls.tls.cmds
    b_row "**commands per entity, TLS / plain**" tls.ratio.cmds
    b_row "plain: round trips per entity (MONITOR)" tls.plain.rt
    b_row "TLS: round trips per entity (MONITOR)" tls.tls.rt
    echo "| **round trips per entity, TLS / plain** | $(b_fmt "$rr") | | | |"
    echo
    echo "Round trips of the MONITOR runs by command ($1 entities each):"
    echo
    echo "| command | plain | per entity | TLS | per entity |"
    echo "|---|---|---|---|---|"
    b_rows_side_by_side "$B_RES/tls.rt.plain" "$B_RES/tls.rt.tls"
    echo
    echo "TLS changes no command: the chunk path (\`BLMOVE\`, \`chunk_claim\`, \`chunk_ack\`) is the"
    echo "same per entity. The worker's housekeeping (heartbeat, reaper, lease extension) runs"
    echo "every second, so a run that lasts longer shows a few more of those round trips; they"
    echo "are per second, not per entity."
    echo
  } >"$B_RES/md/95-tls.md"
}
