# SPDX-License-Identifier: MIT
# Scenario 5, worker memory: peak RSS (VmHWM from /proc/PID/status) of one
# worker at --concurrency 16, 256 and 1024 while it processes a MEM_N-entity
# job.  The provider (a second mockprov) answers after concurrency / 5 ms
# (at least 2 ms), which holds the rate near 5000/s so every request slot
# is really used; the provider's count of open connections is
# sampled to show it.  RssAnon / RssFile at the end split the peak into heap
# and mapped files (shared libraries).  Sourced by bench/run.

scn_memory() {
  local ids="$B_TMP/ids.mem" c rep id pid h inf maxinf anon file
  seq 1 "$MEM_N" >"$ids"
  b_mock_start MEMMOCK --latency-ms 2 || return 1
  b_recipe "$B_TMP/r.mem.json" "http://127.0.0.1:$MEMMOCK_PORT"
  for rep in $(seq 1 "$MEM_REPS"); do
    for c in 16 256 1024; do
      curl -s "http://127.0.0.1:$MEMMOCK_PORT/control?latency_ms=$(( c / 5 > 2 ? c / 5 : 2 ))" >/dev/null
      b_flush
      b_workers_start 1 "$B_TMP/r.mem.json" "$c" || continue
      pid=${B_WPIDS[0]}
      id=$(b_enqueue "$ids")
      maxinf=0
      local deadline=$((SECONDS + 300))
      while [ "$(b_job_field "$id" status)" != completed ] && [ "$SECONDS" -lt "$deadline" ]; do
        inf=$(curl -s "http://127.0.0.1:$MEMMOCK_PORT/stats" | grep -o '"connections":[0-9]*' | cut -d: -f2)
        [ -n "$inf" ] && [ "$inf" -gt "$maxinf" ] && maxinf=$inf
        sleep 0.1
      done
      h=$(b_hwm_kb "$pid")
      anon=$(awk '/^RssAnon:/ {print $2}' "/proc/$pid/status" 2>/dev/null)
      file=$(awk '/^RssFile:/ {print $2}' "/proc/$pid/status" 2>/dev/null)
      b_workers_stop
      [ "$h" != n/a ] && b_put "mem.c$c" "$(b_div "$h" 1024)"
      b_put "mem.c$c.conns" "$maxinf"
      [ -n "$anon" ] && b_put "mem.c$c.anon" "$(b_div "$anon" 1024)"
      [ -n "$file" ] && b_put "mem.c$c.file" "$(b_div "$file" 1024)"
      b_log "rep $rep concurrency $c: VmHWM $h kB (anon $anon, file $file), provider connections seen $maxinf, $(b_job_eps "$id") entities/s"
    done
  done
  b_stop "$MEMMOCK_PID"
  local m
  m=$(b_med mem.c256)
  local cause="-"
  [ "$(b_cmp "$m" lt 15)" = 0 ] && cause="of the peak, $(b_fmt "$(b_med mem.c256.file)") MB are mapped files (the binary and shared libraries: libcurl pulls in OpenSSL, nghttp2, libssh2, LDAP...) and $(b_fmt "$(b_med mem.c256.anon)") MB heap; the heap grows by about $(b_fmt "$(awk -v a="$(b_med mem.c16.anon)" -v b="$(b_med mem.c1024.anon)" 'BEGIN { if (a == "n/a" || b == "n/a") print "n/a"; else printf "%.1f", (b - a) * 1024 / 1008 }')") kB per request slot (a 5.4 kB curl easy handle, its 2 kB receive buffer, a 1.5 kB connection, the entities held for prefetch); libcurl's own structures are most of it"
  b_target "Worker peak RSS at concurrency 256" "$(b_fmt "$m") MB" "< 15 MB" "$(b_cmp "$m" lt 15)" "$cause"
  {
    echo "## 5. Worker memory"
    echo
    echo "One worker, a $MEM_N-entity job, mockprov answering after concurrency / 5 ms (3, 51, 204"
    echo "ms: about 5000 answers/s whatever the concurrency) so that every request slot is used;"
    echo "peak RSS is \`VmHWM\` from \`/proc/PID/status\` just before the worker is"
    echo "stopped; *heap* and *files* are \`RssAnon\` and \`RssFile\` at that moment (files: the"
    echo "mapped binaries and shared libraries, libcurl with OpenSSL, nghttp2, libssh2...)."
    echo "*connections* is the most open connections mockprov reported (its \`/stats\`, sampled"
    echo "every 100 ms): the request slots really in use."
    echo
    echo "| figure | median | min | max | runs |"
    echo "|---|---|---|---|---|"
    for c in 16 256 1024; do
      b_row "concurrency $c: peak RSS (MB)" "mem.c$c"
      b_row "concurrency $c: heap, RssAnon (MB)" "mem.c$c.anon"
      b_row "concurrency $c: files, RssFile (MB)" "mem.c$c.file"
      b_row "concurrency $c: provider connections seen" "mem.c$c.conns"
    done
    echo
  } >"$B_RES/md/50-memory.md"
  return 0
}
