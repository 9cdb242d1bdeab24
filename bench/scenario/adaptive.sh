# SPDX-License-Identifier: MIT
# Scenario 12, the adaptive rate against a provider that hides its limit:
# the referee cases of tests/integration/test_ratelimit_adaptive.sh, timed.
# Each case has its own mockprov allowing 10/s with a burst of 5; at AD_RAISE
# s the provider raises its limit to 20/s (burst 5); the case ends at
# AD_RAISE + 30 s.  The cases run side by side (a few tens of requests a
# second in all):
#   farm1, farm3   the recipe says 20/s (2x the provider's limit); 1 and 3
#                  workers (--concurrency 16), adaptive rate;
#   fixed          a fixed-rate client at the recipe's 20/s, evenly spaced
#                  (a token bucket that never adapts);
#   window         a limiter of 20 per 1 s window, the 20 sent together at
#                  the start of each window (BullMQ's limiter {max: 20,
#                  duration: 1000}).
# A sampler reads the referee's /stats every 0.5 s; the verdicts reuse the
# test's judging: accepted/s and the 429 share from 10 s to the raise (bar:
# >= 90 % of 10/s, < 2 % 429), and the time after the raise until the
# accepted rate over 2 s reaches 18/s (bar: within 30 s); besides, the
# first 10 s.  Sourced by bench/run.

AD_CASES="farm1 farm3 fixed window"

scn_adaptive() {
  local rep c pids
  ad_write_py
  for rep in $(seq 1 "$AD_REPS"); do
    b_flush
    pids=()
    for c in $AD_CASES; do
      ad_case "$c" "$rep" &
      pids+=("$!")
      b_track "$!"
    done
    for c in "${pids[@]}"; do wait "$c" 2>/dev/null; done
    for c in $AD_CASES; do ad_judge "$c" "$rep"; done
  done
  ad_section >"$B_RES/md/98-adaptive.md"
  return 0
}

# ad_case NAME REP: one case, in a subshell of its own (its PIDs stopped here).
ad_case() {
  local name=$1 rep=$2 port pids=() i pf="$B_TMP/ad.$1.port" nw=0 mpid cpid=""
  rm -f "$pf"
  "$BIN/mockprov" --listen 127.0.0.1:0 --port-file "$pf" --catalog 5000 --rate 10 --per 1 --burst 5 \
    2>>"$B_TMP/ad.$name.mock.log" &
  mpid=$!
  b_wait_for 10 test -s "$pf" || { b_log "adaptive $name: mockprov did not start"; ad_stop "$mpid"; return 1; }
  port=$(cat "$pf")
  case $name in farm1) nw=1 ;; farm3) nw=3 ;; esac
  if [ "$nw" -gt 0 ]; then
    cat >"$B_TMP/ad.$name.json" <<EOF
{"providers": {"$name": {
   "steps": [{"url": "http://127.0.0.1:$port/item/{id}"}],
   "extract": {"title": "/title"}, "timeout_ms": 5000, "retries": 20,
   "rate": {"requests": 20, "per_seconds": 1}}}}
EOF
    seq 1 3000 >"$B_TMP/ad.$name.ids"
    for i in $(seq 1 "$nw"); do
      "$BIN/worker" --queue "$name" --providers "$B_TMP/ad.$name.json" --concurrency 16 \
        --id "bench-ad-$name-$i" 2>>"$B_TMP/ad.$name.w$i.log" &
      pids+=("$!")
    done
    b_wait_for 15 sh -c "[ -n \"\$(redis-cli -h 127.0.0.1 -p $B_RPORT HGET farm:providers $name)\" ]" ||
      b_log "adaptive $name: the workers did not register"
    "$BIN/enqueuer" --queue "$name" --provider "$name" --chunk-size 20 -q "$B_TMP/ad.$name.ids" \
      >"$B_TMP/ad.$name.job" 2>>"$B_TMP/enqueuer.log"
  else
    python3 "$B_TMP/ad.py" client "$port" "$name" 2>>"$B_TMP/ad.$name.client.log" &
    cpid=$!
  fi
  python3 "$B_TMP/ad.py" sample "$port" "$AD_RAISE" $((AD_RAISE + 30)) "$B_TMP/ad.$name.$rep.samples" \
    2>>"$B_TMP/ad.$name.sampler.log"
  [ "$nw" -gt 0 ] && rc HGETALL "farm:ratelimit:{$name}" >"$B_TMP/ad.$name.$rep.bucket"
  ad_stop $cpid "${pids[@]}" "$mpid"
}

# ad_stop PID...: b_stop for the children of this subshell (b_mine knows
# only the main shell's): SIGTERM, SIGKILL after 10 s, reaped.
ad_stop() {
  local p i s
  for p in "$@"; do kill -TERM "$p" 2>/dev/null; done
  for p in "$@"; do
    for i in $(seq 1 200); do
      read -r s 2>/dev/null <"/proc/$p/stat" || break
      s=${s##*) }
      [ "${s%% *}" = Z ] && break
      s=${s#* }
      [ "${s%% *}" = "$BASHPID" ] || break
      sleep 0.05
    done
    [ "$i" = 200 ] && kill -KILL "$p" 2>/dev/null
    wait "$p" 2>/dev/null
  done
  return 0
}

# ad_judge NAME REP: the figures of one case from its samples.
ad_judge() {
  local out k v
  out=$(python3 "$B_TMP/ad.py" judge "$B_TMP/ad.$1.$2.samples" "$AD_RAISE" 2>&1)
  b_log "adaptive $1 (rep $2): $out"
  for kv in $out; do
    k=${kv%%=*} v=${kv#*=}
    [ "$v" = n/a ] || b_put "ad.$1.$k" "$v"
  done
  case " $out " in *" reach=n/a "*) echo "x" >>"$B_RES/ad.$1.never" ;; esac
}

# ad_write_py: the sampler, the fixed-rate clients and the judge.
ad_write_py() {
  cat >"$B_TMP/ad.py" <<'PY'
import http.client, json, sys, time

def stats(conn):
    conn.request("GET", "/stats")
    s = json.loads(conn.getresponse().read())
    return s["requests"], s["responses_429"]

mode = sys.argv[1]
if mode == "sample":  # PORT RAISE_S END_S OUT: "seconds requests 429s" every 0.5 s
    port, raise_s, end_s, out = int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    t0, raised = time.time(), False
    with open(out, "w") as f:
        while True:
            now = time.time() - t0
            if now >= end_s:
                break
            if now >= raise_s and not raised:
                conn.request("GET", "/control?rate=20&burst=5"); conn.getresponse().read()
                raised = True
                f.write("raised %.2f\n" % now)
            r, r429 = stats(conn)
            f.write("%.2f %d %d\n" % (now, r, r429)); f.flush()
            time.sleep(0.5)
elif mode == "client":  # PORT fixed|window: a limiter at 20/s that never adapts
    port, kind = int(sys.argv[2]), sys.argv[3]
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    t0, i = time.time(), 0
    while time.time() - t0 < 120:
        if kind == "fixed":   # evenly spaced, 50 ms apart
            due = t0 + i / 20.0
        else:                 # 20 together at the start of each 1 s window
            due = t0 + (i // 20)
        d = due - time.time()
        if d > 0:
            time.sleep(d)
        conn.request("GET", "/item/%d" % (i % 4000 + 1)); conn.getresponse().read()
        i += 1
else:  # judge SAMPLES RAISE_S: the test's verdicts, as key=value figures
    rows, raised = [], None
    for l in open(sys.argv[2]):
        p = l.split()
        if p and p[0] == "raised":
            raised = float(p[1])
        elif len(p) == 3:
            rows.append(tuple(float(x) for x in p))
    if raised is None:
        raised = float(sys.argv[3])
    def at(t):
        best = rows[0]
        for r in rows:
            if r[0] <= t: best = r
        return best
    def span(a, b):
        req, r429 = b[1] - a[1], b[2] - a[2]
        return (req - r429) / max(0.001, b[0] - a[0]), 100.0 * r429 / max(1, req)
    acc0, p0 = span(rows[0], at(10))
    acc, p = span(at(10), at(raised))
    reach = None
    for r in rows:
        if r[0] < raised + 2: continue
        q = at(r[0] - 2)
        if r[0] - q[0] >= 1.5 and ((r[1] - r[2]) - (q[1] - q[2])) / (r[0] - q[0]) >= 18:
            reach = r[0] - raised; break
    accl, pl = span(at(rows[-1][0] - 5), rows[-1])
    print("first10_acc=%.2f first10_429=%.1f steady_acc=%.2f steady_pct=%.1f steady_429=%.2f "
          "reach=%s last5_acc=%.2f last5_429=%.1f" % (acc0, p0, acc, 10 * acc, p,
          "%.1f" % reach if reach is not None else "n/a", accl, pl))
PY
}

ad_section() {
  local c label never
  echo "## 12. Adaptive rate against a hidden limit"
  echo
  echo "The referee cases of \`tests/integration/test_ratelimit_adaptive.sh\`, timed: a recipe says"
  echo "20/s (\`\"rate\": {\"requests\": 20, \"per_seconds\": 1}\`, twice the real limit), the provider"
  echo "(a mockprov of its own per case) allows 10/s with a burst of 5 and answers 429 with"
  echo "\`Retry-After\` past it; $AD_RAISE s after the start it raises its limit to 20/s (burst 5), and"
  echo "the case ends 30 s later. Side by side, each against its own referee: the farm with 1 and"
  echo "with 3 workers (\`--concurrency 16\`, 3000 entities queued, so the farm never runs dry), a"
  echo "**fixed-rate** client at the recipe's 20/s, evenly spaced (what a token bucket that"
  echo "never adapts does), and a **1 s window** limiter of 20 (BullMQ's \`limiter: {max: 20,"
  echo "duration: 1000}\`: the 20 leave together at the start of each window). The fixed clients"
  echo "are a few lines of Python in the scenario (one keep-alive connection, the referee answers"
  echo "at once). A sampler reads the referee's \`/stats\` every 0.5 s; *accepted* = requests -"
  echo "429s. *Steady* is from 10 s to the raise (the test's bars: at least 90 % of 10/s"
  echo "accepted, under 2 % of requests answered 429); *time to 18/s* is from the raise until"
  echo "the accepted rate over the last 2 s first reaches 18/s (the bar: within 30 s; n/a ="
  echo "never within the 30 s; 2 s, a whole window after the raise, is the least it can say)."
  if [ "$AD_REPS" -gt 1 ]; then echo "Medians of $AD_REPS repetitions (min–max)."; else echo "One repetition (each takes $((AD_RAISE + 30)) s; the full run has 3)."; fi
  echo
  echo "| case | accepted/s, first 10 s | 429 %, first 10 s | **accepted/s, steady** | % of 10/s, steady | **429 %, steady** | **time to 18/s after the raise (s)** | accepted/s, last 5 s | 429 %, last 5 s |"
  echo "|---|---|---|---|---|---|---|---|---|"
  for c in $AD_CASES; do
    case $c in
    farm1) label="farm, adaptive, 1 worker" ;;
    farm3) label="farm, adaptive, 3 workers" ;;
    fixed) label="fixed rate 20/s (2x), evenly spaced" ;;
    *) label="1 s window of 20 (BullMQ-style)" ;;
    esac
    never=""
    [ -s "$B_RES/ad.$c.never" ] && never=" (never in $(wc -l <"$B_RES/ad.$c.never") of $AD_REPS)"
    echo "| $label | $(ad_cell "$c" first10_acc) | $(ad_cell "$c" first10_429) | $(ad_cell "$c" steady_acc) | $(ad_cell "$c" steady_pct) | $(ad_cell "$c" steady_429) | $(ad_cell "$c" reach)$never | $(ad_cell "$c" last5_acc) | $(ad_cell "$c" last5_429) |"
  done
  echo
  echo "Verdicts against the test's bars (medians):"
  echo
  for c in farm1 farm3; do
    local acc p r
    acc=$(b_med "ad.$c.steady_acc") p=$(b_med "ad.$c.steady_429") r=$(b_med "ad.$c.reach")
    echo "- $c: steady $(b_fmt "$acc")/s accepted ($([ "$(b_cmp "$acc" ge 9)" = 1 ] && echo "met" || echo "**gap**"): ≥ 9/s),"\
      "$(b_fmt "$p") % answered 429 ($([ "$(b_cmp "$p" lt 2)" = 1 ] && echo "met" || echo "**gap**"): < 2 %),"\
      "18/s reached $(b_fmt "$r") s after the raise ($([ "$(b_cmp "$r" le 30)" = 1 ] && echo "met" || echo "**gap**"): ≤ 30 s)."
  done
  echo
  echo "A refused request is work to send again (an entity that is still to be enriched); the"
  echo "fixed clients never lower their pace, so their 429 share is what their design gives"
  echo "against this provider for as long as the limit stays hidden."
  echo
}

# ad_cell CASE FIELD: "median (min-max)" of a figure, or the median alone.
ad_cell() {
  local med min max n
  read -r med min max n < <(b_stat "ad.$1.$2")
  if [ "$n" -gt 1 ]; then echo "$(b_fmt "$med") ($(b_fmt "$min")–$(b_fmt "$max"))"; else b_fmt "$med"; fi
}
