# SPDX-License-Identifier: MIT
# Scenario 8, a profile of one worker under the throughput workload (one
# worker, --concurrency 64, mockprov, PROF_N entities).  perf where it works
# (this machine's VM has no hardware counters, so the software cpu-clock
# event samples at 999 Hz with DWARF call stacks); otherwise valgrind's
# callgrind on a smaller run.  Self and inclusive top costs go into the
# report.  Sourced by bench/run.

scn_profile() {
  local ids="$B_TMP/ids.prof" pid id ppid mode=""
  b_recipe "$B_TMP/r.mock.json" "http://127.0.0.1:$MOCK_PORT"
  if command -v perf >/dev/null &&
    perf record -q -e cpu-clock -o "$B_TMP/perf.probe" -- true >/dev/null 2>&1; then
    mode=perf
  elif command -v valgrind >/dev/null; then
    mode=callgrind
  else
    note "profile skipped: neither perf nor valgrind works here"
    return 0
  fi
  b_flush
  if [ "$mode" = perf ]; then
    seq 1 "$PROF_N" >"$ids"
    b_workers_start 1 "$B_TMP/r.mock.json" "$CONC" || return 1
    pid=${B_WPIDS[0]}
    perf record -q -e cpu-clock -F 999 --call-graph dwarf,16384 -p "$pid" -o "$B_TMP/perf.data" \
      >/dev/null 2>"$B_TMP/perf.log" &
    ppid=$!
    b_track "$ppid"
    sleep 0.5
    id=$(b_enqueue "$ids")
    b_job_wait "$id" 300 || b_log "profiled job did not complete"
    kill -INT "$ppid" 2>/dev/null
    wait "$ppid" 2>/dev/null
    b_workers_stop
    perf report -i "$B_TMP/perf.data" --stdio --no-children -g none --sort dso,sym --percent-limit 1 \
      2>/dev/null | grep -E '^ +[0-9.]+%' | head -25 >"$B_RES/prof.self"
    perf report -i "$B_TMP/perf.data" --stdio --children -g none --sort sym \
      2>/dev/null | grep -E '^ +[0-9.]+%' >"$B_TMP/prof.all"
    grep -v '\[k\]' "$B_TMP/prof.all" | grep -v '\[\.\] 0x' | head -30 >"$B_RES/prof.incl"
    prof_named >"$B_RES/prof.named"
    perf report -i "$B_TMP/perf.data" --stdio --no-children -g none --sort dso \
      2>/dev/null | grep -E '^ +[0-9.]+%' | head -12 >"$B_RES/prof.dso"
  else
    local n=$((PROF_N / 10))
    seq 1 "$n" >"$ids"
    valgrind --tool=callgrind --callgrind-out-file="$B_TMP/callgrind.out" \
      "$BIN/worker" --providers "$B_TMP/r.mock.json" --concurrency "$CONC" --id bench-w1 \
      2>"$B_TMP/callgrind.log" &
    pid=$!
    b_track "$pid"
    b_wait_for 60 sh -c "[ \"\$(redis-cli -h 127.0.0.1 -p $B_RPORT ZCARD farm:workers)\" -ge 1 ]"
    id=$(b_enqueue "$ids")
    b_job_wait "$id" 600 || b_log "profiled job did not complete"
    b_stop "$pid"
    callgrind_annotate "$B_TMP/callgrind.out" 2>/dev/null | grep -E '^ *[0-9,]+ \(' | head -25 >"$B_RES/prof.self"
    callgrind_annotate --inclusive=yes "$B_TMP/callgrind.out" 2>/dev/null | grep -E '^ *[0-9,]+ \(' | head -30 >"$B_RES/prof.incl"
    : >"$B_RES/prof.dso"
  fi
  {
    echo "## 8. Profile of the worker"
    echo
    if [ "$mode" = perf ]; then
      echo "\`perf record -e cpu-clock -F 999 --call-graph dwarf\` attached to one worker"
      echo "(\`--concurrency $CONC\`, mockprov, $PROF_N entities; \`perf stat -e instructions\` reports"
      echo "\`<not supported>\` in this VM, so the software clock samples). Share of the worker's"
      echo "CPU samples."
    else
      echo "\`valgrind --tool=callgrind\` on one worker (\`--concurrency $CONC\`, mockprov, $((PROF_N / 10))"
      echo "entities): instructions (Ir)."
    fi
    echo
    if [ -s "$B_RES/prof.dso" ]; then
      echo "By library:"
      echo
      echo '```'
      cat "$B_RES/prof.dso"
      echo '```'
      echo
    fi
    if [ -s "$B_RES/prof.named" ]; then
      echo "The top costs, named (share of the worker's CPU samples; *incl.* counts callees):"
      echo
      echo "| cost | share | what it is | fix |"
      echo "|---|---|---|---|"
      cat "$B_RES/prof.named"
      echo
    fi
    echo "Top functions, self cost:"
    echo
    echo '```'
    cat "$B_RES/prof.self"
    echo '```'
    echo
    echo "Top named functions in user space, inclusive (children counted; libcurl's internal"
    echo "functions have no symbols in Debian's build and are left out):"
    echo
    echo '```'
    cat "$B_RES/prof.incl"
    echo '```'
    echo
    [ -f "$B_ROOT/bench/profile-notes.md" ] && cat "$B_ROOT/bench/profile-notes.md" && echo
  } >"$B_RES/md/80-profile.md"
  return 0
}

# prof_named: the named cost rows from $B_TMP/prof.all (children, by symbol)
# and a self-cost report by symbol.
prof_named() {
  local self="$B_TMP/prof.self.all"
  perf report -i "$B_TMP/perf.data" --stdio --no-children -g none --sort dso,sym 2>/dev/null |
    grep -E '^ +[0-9.]+%' >"$self"
  # inc SYMBOL: inclusive share of the first symbol with that exact name
  inc() { awk -v s="$1" '{ n = $0; sub(/^ *[0-9.]+% +[0-9.]+% +\[[.k]\] /, "", n); sub(/ +$/, "", n)
    if (n == s) { print $1; exit } }' "$B_TMP/prof.all" | tr -d '%'; }
  # selfsum DSO_REGEX SYM_REGEX: summed self share
  selfsum() { awk -v d="$1" -v r="$2" '$2 ~ d && $4 ~ r { s += $1 } END { printf "%.1f", s }' "$self"; }
  dso() { perf report -i "$B_TMP/perf.data" --stdio --no-children -g none --sort dso 2>/dev/null |
    awk -v d="$1" '$2 ~ d { s += $1 } END { printf "%.1f", s }'; }
  pct() { [ -n "$1" ] && echo "$1 %" || echo "n/a"; }
  sum() { awk -v a="${1:-0}" -v b="${2:-0}" -v c="${3:-0}" 'BEGIN { printf "%.1f %%", a + b + c }'; }
  echo "| kernel, self | $(dso kernel) % | system calls: a send and a recv per request (on loopback the sender also runs the receiver's TCP path), curl's two poll() calls per request, Redis replies, wakeups | inherent to one HTTP request per entity through libcurl: wrk pays the send/recv too |"
  echo "| socket contexts, incl. (\`uv_poll_init\` + \`uv_close\`) | $(sum "$(inc uv_poll_init)" "$(inc uv_close)") | before the fix 7.9 %: a close and a new \`uv_poll_t\` for every request on a kept-alive socket | **applied**: a socket context lives as long as its fd (curl opens and closes its sockets through our callbacks); an established connection idles polled for reading, so the next request on it costs no syscall (what is left: new connections) |"
  echo "| epoll_ctl, incl. | $(pct "$(inc "__GI_epoll_ctl (inlined)")") | before the fix 10.1 %: at least 2 per request | **applied** with the row above: 0.2 per request (strace) |"
  echo "| curl per-request setup, incl. (\`curl_easy_reset\` + URL parsing \`curl_url_set/get\`) | $(sum "$(inc curl_easy_reset)" "$(inc curl_url_set)" "$(inc curl_url_get)") | before the fix 7.6 %: every request reset its easy handle and set some 20 options | **applied**: a GET after a GET sets only its URL and what changed; what is left is curl parsing each URL, inherent |"
  echo "| curl request head formatting, incl. (\`curl_maprintf\`) | $(pct "$(inc curl_maprintf)") | libcurl printf-formats each request head (and sscanf-parses each status line) | inherent to libcurl |"
  echo "| curl liveness check, incl. (\`poll\`) | $(pct "$(inc "__GI___poll (inlined)")") | libcurl polls a pooled connection before reusing it, and the new request's socket once after sending | inherent to libcurl 7.88 |"
  echo "| malloc / free, self | $(selfsum libc 'malloc|free|realloc|calloc|cfree|consolidate') % | per entity: its cJSON tree (\`on_claim\`), URL/template buffers, the parsed answer, the result JSON and its pairs for the ack; curl's per-request strings | **applied in part**: no per-entity \`vars\` object ({provider} is shared per provider), results written straight to one buffer; parsing entities later would save nothing (every claimed entity is dispatched) |"
  echo "| response handling, incl. (\`handle_answer\`) | $(pct "$(inc handle_answer)") | cJSON parse of the answer, JSON Pointer extraction (\`ef_recipe_judge\`), the result JSON | the work itself |"
  echo "| request building, incl. (\`send_request\`) | $(pct "$(inc send_request)") | URL template fill and percent-encoding, \`ef_http_request\` | |"
  echo "| claims, incl. (\`on_claim\`) | $(pct "$(inc on_claim)") | a claimed chunk's NDJSON parsed into one cJSON object per entity | |"
  echo "| acks, incl. (\`ef_chunk_ack\`) | $(pct "$(inc ef_chunk_ack)") | the chunk_ack arguments: per entity its outcome and its result pairs (parsed from the result JSON) | |"
  echo "| clock_gettime, self | $(selfsum vdso clock_gettime) % | libcurl reading the clock several times per transfer | inherent to libcurl |"
}
