# SPDX-License-Identifier: MIT
# Scenario 6, rate-limit accuracy: a recipe with "rate" {L per 1 s, burst
# b = max(1, L/10)} for every L of RL_LIMITS, with each worker count of
# RL_WORKERS (--concurrency $CONC each), a job of L x s + b entities (s =
# RL_S, fewer when that would pass RL_MAX_N entities); mockprov is the
# referee with its own bucket of L per second (burst 2b, so a few ms of
# scheduling jitter between the farm's bucket and the referee's is not a
# violation) and counts every request, every 429 and the busiest sliding
# 1 s window (max_in_1s).  Achieved rate = (requests - b) / (last_request_ms
# - first_request_ms): the bucket starts full, so the first b may go at once.
# Per cell also: Redis commands per request (INFO commandstats delta, the
# benchmark's own polls taken out) and round trips per request (MONITOR, up
# to L = RL_MON_MAX: MONITOR slows Redis).  A cell that stays more than 2 %
# under L is run again with no limit at all: if the same workers cannot
# reach L then either, the cell is capacity-bound (this machine, not the
# limiter) and is judged on never going above L.  Sourced by bench/run.

RL_MON_MAX=${RL_MON_MAX:-1000}

scn_ratelimit() {
  # read and updated by rl_cell (bash scoping): the verdicts so far
  local ok=1 any=0 worst=0 rated=0 t429=0 nover=0 cells=0 capnote="" gaps=""
  local L nw b s n
  : >"$B_RES/rl.rows"
  b_mock_start RLMOCK || return 1
  b_recipe "$B_TMP/r.rl.free.json" "http://127.0.0.1:$RLMOCK_PORT"
  for L in $RL_LIMITS; do
    b=$((L / 10)); [ "$b" -lt 1 ] && b=1
    s=$((RL_MAX_N / L)); [ "$s" -gt "$RL_S" ] && s=$RL_S; [ "$s" -lt 1 ] && s=1
    n=$((L * s + b))
    seq 1 "$n" >"$B_TMP/ids.rl"
    b_recipe "$B_TMP/r.rl.json" "http://127.0.0.1:$RLMOCK_PORT" \
      "{\"requests\": $L, \"per_seconds\": 1, \"burst\": $b}"
    for nw in $RL_WORKERS; do
      rl_cell "$L" "$nw" "$b" "$s" "$n"
    done
  done
  b_stop "$RLMOCK_PID"
  rl_target
  rl_section >"$B_RES/md/60-ratelimit.md"
  return 0
}

# rl_mock PATH: a GET to the referee's control side (never counted by it).
rl_mock() { curl -s --max-time 5 "http://127.0.0.1:$RLMOCK_PORT/$1"; }

# rl_num JSON FIELD: an integer field of the referee's /stats.
rl_num() { echo "$1" | grep -o "\"$2\":[0-9]*" | head -1 | cut -d: -f2; }

# rl_cell L WORKERS BURST SECONDS ENTITIES: one measured job; appends a row
# to rl.rows and updates scn_ratelimit's verdicts.
rl_cell() {
  local L=$1 nw=$2 b=$3 s=$4 n=$5 c id st req r429 mx first last rate err
  local status errs cmds rt="n/a" busy verdict mon=0 granted early when
  # chunks small enough that every worker holds work (the first chunks go
  # round robin to the workers blocked in BLMOVE): about 2 chunks each, at
  # most the default 50
  c=$((n / (2 * nw))); [ "$c" -gt 50 ] && c=50; [ "$c" -lt 1 ] && c=1
  rl_mock "control?rate=$L&per=1&burst=$((2 * b))" >/dev/null
  rl_mock stats/reset >/dev/null
  b_flush
  cells=$((cells + 1)) any=1
  if ! b_workers_start "$nw" "$B_TMP/r.rl.json" "$CONC"; then
    b_workers_stop
    echo "| $L | $nw | $c | $n | | | | | | | | | | **gap**: the workers did not start |" >>"$B_RES/rl.rows"
    ok=0 gaps="$gaps L=$L/$nw workers did not start;"
    return
  fi
  if [ "$L" -le "$RL_MON_MAX" ] && b_monitor_start "$B_TMP/monitor.rl"; then mon=1; fi
  b_polls_reset
  rl_early_start $((s * 4 + 30))
  b_snap "$B_TMP/snap.rl.0"
  id=$(b_enqueue "$B_TMP/ids.rl" --chunk-size "$c")
  b_job_wait "$id" $((s * 4 + 30)) || b_log "rate-limit job L=$L workers=$nw did not complete"
  b_snap "$B_TMP/snap.rl.1"
  [ "$mon" = 1 ] && b_monitor_stop
  b_stop "$RL_EPID"
  granted=$(rc HGET "farm:ratelimit:{items}" granted)
  busy=$(rl_busy "$nw")
  status=$(b_job_field "$id" status) errs=$(b_job_field "$id" errors)
  b_workers_stop
  st=$(rl_mock stats)
  early=$(cat "$B_TMP/rl.early" 2>/dev/null)
  req=$(rl_num "$st" requests) r429=$(rl_num "$st" responses_429) mx=$(rl_num "$st" max_in_1s)
  first=$(rl_num "$st" first_request_ms) last=$(rl_num "$st" last_request_ms)
  rate=$(awk -v r="$req" -v b="$b" -v a="$first" -v z="$last" \
    'BEGIN { if (z > a && r > b) printf "%.1f", (r - b) * 1000 / (z - a); else print "n/a" }')
  err=$(awk -v x="$rate" -v L="$L" 'BEGIN { if (x == "n/a") print "n/a"; else printf "%.1f", (x / L - 1) * 100 }')
  read -r cmds _ < <(b_cost "$B_TMP/snap.rl.0" "$B_TMP/snap.rl.1" "$(b_polls)")
  cmds=$(b_div "$cmds" "$req")
  if [ "$mon" = 1 ]; then
    read -r rt _ < <(b_monitor_count "$B_TMP/monitor.rl")
    rt=$(b_div "$rt" "$req")
  fi
  b_log "L=$L workers=$nw ($busy with work, chunk $c): requests $req, rate $rate/s ($err %)," \
    "429s $r429, max_in_1s $mx (bar $((L + b)); ${early:-n/a} in the first 1.5 s), granted $granted, Redis commands/request $(b_fmt "$cmds")," \
    "round trips/request $(b_fmt "$rt")"
  if [ "$L" = 1000 ] && [ "$nw" = 4 ] && [ "${req:-0}" -gt 0 ]; then
    # where it goes, for the bar's own case (4 workers); no µs: MONITOR inflates them
    # (a "|" inside a name, as in SCRIPT|LOAD, would split the Markdown cell)
    b_cmdtable "$B_TMP/snap.rl.0" "$B_TMP/snap.rl.1" "$req" "$(b_polls)" |
      awk -F' [|] ' '{ sub(/^[|] /, "", $1); gsub(/[|]/, " ", $1); printf "%s\t%s\n", $2, $1 }' |
      sort -g -r | awk -F'\t' '{ printf "| %s | %s |\n", $2, $1 }' >"$B_RES/rl.bycmd"
    [ "$mon" = 1 ] && b_monitor_bycmd "$B_TMP/monitor.rl" "$req" >"$B_RES/rl.rtcmd"
  fi

  # the verdict: never above L first, then the rate, then why it fell short
  t429=$((t429 + ${r429:-0}))
  if [ "$status" != completed ]; then
    verdict="**gap**: job ${status:-not created}, $(b_job_field "$id" processed 2>/dev/null) of $n processed"
  elif [ "${r429:-1}" != 0 ]; then
    verdict="**gap**: above the limit: ${r429:-?} × 429 from the referee"
  elif [ "$(awk -v e="$err" 'BEGIN { print (e != "n/a" && e <= 2 && e >= -2) ? 1 : 0 }')" = 1 ]; then
    verdict="met"
    if [ "${mx:-0}" -gt $((L + b)) ]; then
      # the issue's bar (0 x 429, rate within 2 %) holds; the stricter window
      # check is reported, with when it happened
      nover=$((nover + 1))
      when=later
      [ "${early:-x}" = "$mx" ] && when="in the first 1.5 s"
      verdict="met; busiest 1 s $mx > L + b ($when)"
    fi
  elif [ "$(awk -v e="$err" 'BEGIN { print (e != "n/a" && e > 2) ? 1 : 0 }')" = 1 ]; then
    verdict="**gap**: rate more than 2 % above L"
  else
    rl_nolimit "$nw" $((s * 4 + 30))
    if [ "$(b_cmp "$RL_NOLIMIT" lt "$(awk -v L="$L" 'BEGIN { print L * 1.02 }')")" = 1 ]; then
      verdict="capacity-bound: with no limit the same $nw worker(s) reach $(b_fmt "$RL_NOLIMIT")/s"
      verdict="$verdict (rate = $(awk -v r="$rate" -v c="$RL_NOLIMIT" 'BEGIN { printf "%.0f", r * 100 / c }') % of that); never above L"
      capnote="$capnote $nw: $(b_fmt "$rate") of $(b_fmt "$RL_NOLIMIT")/s (L = $L),"
      err="$err (capacity)"
    else
      verdict="**gap**: under L although the same workers reach $(b_fmt "$RL_NOLIMIT")/s with no limit"
    fi
  fi
  case "$verdict" in
  met*) rated=$((rated + 1)) ;;
  capacity*) ;;
  *) ok=0 gaps="$gaps L=$L/$nw workers: ${verdict#\*\*gap\*\*: };" ;;
  esac
  case "$verdict" in capacity*) ;; *)
    worst=$(awk -v w="$worst" -v e="$err" 'BEGIN { if (e != "n/a") { a = (e < 0) ? -e : e; if (a > w) w = a }; printf "%.1f\n", w }') ;;
  esac
  if [ "${mx:-0}" -le $((L + b)) ]; then mx="${mx:-n/a} (≤ $((L + b)))"; else mx="**$mx** (> $((L + b)))"; fi
  echo "| $L | $nw ($busy) | $c | $n | ${req:-n/a} | ${granted:-n/a} | $rate | $err | ${r429:-n/a} | $mx | $(b_fmt "$cmds") | $(b_fmt "$rt") | ${errs:-n/a} | $verdict |" >>"$B_RES/rl.rows"
}

# rl_early_start TIMEOUT_S: in the background, the referee's max_in_1s as it
# stands 1.5 s after the first request, into $B_TMP/rl.early; sets RL_EPID.
# Equal to the final max_in_1s, it places the busiest second at the start
# (the bucket's first grants reaching the provider late, while connections
# open, and the refill of that delay landing in the same second).
rl_early_start() {
  rm -f "$B_TMP/rl.early"
  (
    end=$((SECONDS + $1))
    while [ "$SECONDS" -lt "$end" ]; do
      f=$(rl_num "$(rl_mock stats)" first_request_ms)
      if [ "${f:-0}" -gt 0 ]; then
        sleep "$(awk -v f="$f" -v now="$(date +%s%3N)" 'BEGIN { d = (f + 1500 - now) / 1000; printf "%.3f", (d > 0) ? d : 0 }')"
        rl_num "$(rl_mock stats)" max_in_1s >"$B_TMP/rl.early"
        exit 0
      fi
      sleep 0.02
    done
  ) &
  RL_EPID=$!
  b_track "$RL_EPID"
}

# rl_busy N: how many of the N workers processed entities, from their
# heartbeats (written every second: wait for one more).
rl_busy() {
  local i k=0 p
  sleep 1.1
  for i in $(seq 1 "$1"); do
    p=$(rc HGET "farm:worker:bench-w$i" processed)
    [ "${p:-0}" -gt 0 ] && k=$((k + 1))
  done
  echo "$k"
}

# rl_nolimit N TIMEOUT_S: the same job through N fresh workers with no rate
# limit in the recipe or the referee; sets RL_NOLIMIT to the requests per
# second the referee saw (n/a if the job did not complete).
rl_nolimit() {
  local id st ok=0
  RL_NOLIMIT=n/a
  rl_mock "control?rate=0&per=1&burst=0" >/dev/null
  rl_mock stats/reset >/dev/null
  b_flush
  b_workers_start "$1" "$B_TMP/r.rl.free.json" "$CONC" || { b_workers_stop; return; }
  id=$(b_enqueue "$B_TMP/ids.rl")
  b_job_wait "$id" "$2" && ok=1
  b_workers_stop
  st=$(rl_mock stats)
  [ "$ok" = 1 ] || return
  RL_NOLIMIT=$(awk -v r="$(rl_num "$st" requests)" -v a="$(rl_num "$st" first_request_ms)" \
    -v z="$(rl_num "$st" last_request_ms)" 'BEGIN { if (z > a) printf "%.0f", r * 1000 / (z - a); else print "n/a" }')
  b_log "no limit, $1 worker(s): $RL_NOLIMIT requests/s"
}

# rl_target: the row of the targets table.
rl_target() {
  local m cause="-"
  m="rate within 2 % of L in $rated of $cells cells (worst error $worst %), $t429 × 429 in all"
  [ "$ok" = 1 ] || m="worst rate error $worst %, $t429 × 429 in all"
  if [ "$nover" -gt 0 ]; then
    m="$m; busiest 1 s over L + b in $nover of $cells cells (section 6: the first burst waits for new connections and lands with the refill)"
  else
    m="$m; busiest 1 s ≤ L + b in every cell"
  fi
  if [ -n "$capnote" ]; then
    m="$m; capacity-bound, achieved of no-limit throughput by worker count:${capnote%,}"
    cause="capacity-bound cells are judged on never going above L: on this $(nproc)-core machine the farm, Redis and the referee together cannot reach L there even with no limit (section 6)"
  fi
  [ "$ok" = 1 ] || cause="see section 6:${gaps%;}$(rl_cause)"
  b_target "Rate limit: achieved rate within 2 % of L, zero 429s (L = ${RL_LIMITS// /, }; workers = ${RL_WORKERS// /, }, on one host)" \
    "$m" "±2 %, 0 × 429" "$([ "$any" = 1 ] && echo "$ok")" "$cause"
}

rl_section() {
  echo "## 6. Rate-limit accuracy"
  echo
  echo "A recipe with \`\"rate\": {\"requests\": L, \"per_seconds\": 1, \"burst\": b}\`, b = max(1, L/10),"
  echo "for L = ${RL_LIMITS// /, } per second, each with ${RL_WORKERS// /, } workers (\`--concurrency $CONC\` each),"
  echo "all on this one host (the bar says 2 hosts). A job of L x s + b entities, s = $RL_S s of work"
  echo "(fewer where that would pass $RL_MAX_N entities: L x s ≤ $RL_MAX_N)."
  [ "$QUICK" = 1 ] && echo "Quick mode runs only this subset; the full run has L = 10, 100, 1000, 10000 with 1, 4 and 16 workers."
  echo "The chunk size is set so that every worker holds work (about 2 chunks each, at most 50);"
  echo "*workers* says how many processed entities (their heartbeats). A mockprov is the referee:"
  echo "\`--rate L --per 1 --burst 2b\` (twice the farm's burst, so that a few ms of scheduling"
  echo "jitter between the two buckets is not a violation), answering 429 with \`Retry-After\`"
  echo "past it. *requests* counts every request it saw (429s and retries included); *tokens"
  echo "granted* is the farm bucket's own count (\`granted\` in \`farm:ratelimit:{items}\`): equal to"
  echo "*requests* when every request took exactly one token. *rate* = (requests - b) / (last -"
  echo "first request), as the bucket starts full. *busiest 1 s* is the referee's busiest sliding"
  echo "1 s window (\`max_in_1s\`, 10 ms resolution), against L + b: a token bucket of rate"
  echo "L and burst b grants at most L + b in any second. That is a stricter check than the bar"
  echo "(0 × 429 from a referee with a bucket of 2b, rate within 2 %), and it is reported, not"
  echo "judged: the referee counts arrivals, so a window over L + b with as many requests as"
  echo "tokens granted means grants that left late and arrived bunched. The verdict says whether"
  echo "that window was already reached 1.5 s after the first request (read from the referee"
  echo "at that moment) or later. At start-up the first burst's requests each open a new"
  echo "connection (up to 16 x $CONC at once) while the refill's requests find them open, so the"
  echo "burst arrives a few ms late, in the same second as the refill: L x that delay above L + b."
  echo "*errors* are entities that ended as errors (429 until the retries ran out)."
  echo
  echo "*Redis commands / request*: every command Redis ran from just before the enqueue to the"
  echo "job's completion, those run inside scripts included (the sum of \`calls\` in \`INFO"
  echo "commandstats\`, after minus before), divided by the referee's request count. It counts"
  echo "the enqueuer and the workers (token-bucket script, chunk claims and acks, the 1 s"
  echo "housekeeping tick of every worker, idle ones included); the benchmark's own commands"
  echo "are taken out exactly: its job polls (one HGET each, counted and subtracted) and the"
  echo "INFO of the first snapshot. *Round trips / request*: the commands our programs sent"
  echo "(unix socket; an EVALSHA counts once), from a \`redis-cli MONITOR\` capture over the same"
  echo "interval; the benchmark's own commands come over TCP and are not in it. MONITOR slows"
  echo "Redis, so it runs only up to L = $RL_MON_MAX (n/a above)."
  echo
  echo "A cell more than 2 % under L is run once more with no limit anywhere (recipe nor"
  echo "referee), same entities and workers: if that reaches less than 1.02 L too, the cell is"
  echo "*capacity-bound*: this $(nproc)-core machine (workers, Redis and the referee share it) is"
  echo "the limit, not the token bucket, and the cell is judged on never going above L (0 × 429,"
  echo "busiest 1 s ≤ L + b) instead of the 2 %."
  echo
  echo "| L / s | workers (with work) | chunk | entities | requests | tokens granted | rate / s | error % | 429s | busiest 1 s (bar L + b) | Redis commands / request | round trips / request | errors | verdict |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
  cat "$B_RES/rl.rows"
  echo
  if [ -s "$B_RES/rl.rtcmd" ]; then
    echo "Round trips by command at L = 1000 with 4 workers (the MONITOR capture of that cell):"
    echo
    echo "| command | count | per request |"
    echo "|---|---|---|"
    cat "$B_RES/rl.rtcmd"
    echo
  fi
  if [ -s "$B_RES/rl.bycmd" ]; then
    echo "All Redis commands of the same cell by name (\`INFO commandstats\` delta per request;"
    echo "the commands run inside scripts are listed under their own names as well as under EVALSHA;"
    echo "no times: the MONITOR of that cell inflates them):"
    echo
    echo "| command | calls per request |"
    echo "|---|---|"
    cat "$B_RES/rl.bycmd"
    echo
  fi
}

# rl_cause: whether the workers enforce recipe rates at all.
rl_cause() {
  # (grep on the file, not `strings | grep -q`: under pipefail the early exit
  # of grep -q gives strings a SIGPIPE and the test a false "no")
  if ! grep -q ratelimit_take "$BIN/worker" 2>/dev/null; then
    echo " (this worker build does not enforce recipe rates yet: the shared token bucket is being implemented)"
  fi
}
