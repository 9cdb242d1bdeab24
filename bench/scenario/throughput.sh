# SPDX-License-Identifier: MIT
# Scenario 1, throughput, and the Redis cost per entity from INFO
# (scenario 2 b, c): TP_N entities, chunk size 50, --concurrency 64, 1 and 2
# workers, against mockprov (zero latency) and nginx (static body), each
# next to wrk -t1 -c64 against the same provider in the same repetition.
# Sourced by bench/run.

scn_throughput() {
  local rep prov base w nw ids="$B_TMP/ids.tp" provs="mock"
  seq 1 "$TP_N" >"$ids"
  b_recipe "$B_TMP/r.mock.json" "http://127.0.0.1:$MOCK_PORT"
  if [ -n "${NGINX_PORT:-}" ]; then
    b_recipe "$B_TMP/r.nginx.json" "http://127.0.0.1:$NGINX_PORT"
    provs="mock nginx"
  fi
  for rep in $(seq 1 "$REPS"); do
    for prov in $provs; do
      if [ "$prov" = mock ]; then
        base="http://127.0.0.1:$MOCK_PORT" B_PROV_PID=$MOCK_PID
      else
        base="http://127.0.0.1:$NGINX_PORT" B_PROV_PID=$(nginx_worker_pid)
      fi
      b_wrk "$base/item/42" "$WRK_S"
      w=$WRK_RPS
      [ -n "$w" ] && b_put "tp.$prov.wrk" "$w" && b_put "tp.$prov.wrk.cpu" "$WRK_CPU_US" &&
        b_put "tp.$prov.wrk.pcpu" "$WRK_PCPU_US"
      for nw in 1 2; do
        if b_farm_run "$B_TMP/r.$prov.json" "$nw" "$CONC" "$ids"; then
          b_put "tp.$prov.w$nw" "$FR_EPS"
          [ -n "$w" ] && b_put "tp.$prov.w$nw.ratio" "$(b_div "$FR_EPS" "$w")"
          b_put "tp.$prov.w$nw.cmds" "$(b_div "$FR_CMDS" "$FR_N")"
          b_put "tp.$prov.w$nw.cpu" "$(b_div "$FR_CPU_US" "$FR_N")"
          b_put "tp.$prov.w$nw.rss" "$(b_div "$FR_HWM_KB" 1024)"
          b_put "tp.$prov.w$nw.wcpu" "$FR_WCPU_US"
          b_put "tp.$prov.w$nw.pcpu" "$FR_PCPU_US"
          [ "$prov$nw" = mock1 ] && [ ! -s "$B_RES/cost.bycmd" ] &&
            b_cmdtable "$B_TMP/snap.farm.0" "$B_TMP/snap.farm.1" "$FR_N" "$(b_polls)" >"$B_RES/cost.bycmd"
        fi
        b_log "rep $rep $prov wrk=$w req/s, $nw worker(s): ${FR_EPS} entities/s, cmds/entity $(b_div "$FR_CMDS" "$FR_N"), cpu us/entity $(b_div "$FR_CPU_US" "$FR_N")"
      done
    done
  done
  B_PROV_PID=""

  local r1 r2 best
  r1=$(b_med tp.mock.w1.ratio)
  r2=$(b_med tp.mock.w2.ratio)
  best=$(awk -v a="$r1" -v b="$r2" 'BEGIN { if (a == "n/a") print b; else if (b == "n/a" || a >= b) print a; else print b }')
  b_target "Throughput, instant provider (mockprov): farm / wrk" \
    "$(b_fmt "$r1") (1 worker), $(b_fmt "$r2") (2 workers)" "≥ 0.7" "$(b_cmp "$best" ge 0.7)" \
    "$(tp_cause "$best" mock)"
  if [ -n "${NGINX_PORT:-}" ]; then
    r1=$(b_med tp.nginx.w1.ratio)
    r2=$(b_med tp.nginx.w2.ratio)
    best=$(awk -v a="$r1" -v b="$r2" 'BEGIN { if (a == "n/a") print b; else if (b == "n/a" || a >= b) print a; else print b }')
    b_target "Throughput, instant provider (nginx): farm / wrk" \
      "$(b_fmt "$r1") (1 worker), $(b_fmt "$r2") (2 workers)" "≥ 0.7" "$(b_cmp "$best" ge 0.7)" \
      "$(tp_cause "$best" nginx)"
  fi

  {
    echo "## 1. Throughput with an instant provider"
    echo
    echo "$TP_N entities (ids 1..$TP_N), chunk size 50, \`--concurrency $CONC\` per worker, 1 and 2"
    echo "workers, the minimal recipe without a rate limit (one GET per entity, \`/title\`"
    echo "extracted into the entity's result hash). Entities/s = total / (completed_at -"
    echo "started_at) of the job in Redis (ms). Next to it, in the same repetition,"
    echo "\`wrk -t1 -c64 -d${WRK_S}s\` against the same provider: the physical limit for one"
    echo "HTTP request per entity with 64 connections on this machine. wrk asks for one URL"
    echo "(\`/item/42\`) over and over; the farm asks for $TP_N different ones (for mockprov"
    echo "every tenth is a 404, as its catalogue says; nginx answers the same body for every"
    echo "\`/item/*\`). Two workers hold 2 x $CONC connections. Everything (Redis, provider, workers"
    echo "or wrk) shares the same $(nproc) cores. Ratio = farm / wrk of the same repetition."
    echo
    echo "| figure | median | min | max | runs |"
    echo "|---|---|---|---|---|"
    for prov in $provs; do
      b_row "$prov: wrk -t1 -c64, requests/s" "tp.$prov.wrk"
      b_row "$prov: farm, 1 worker, entities/s" "tp.$prov.w1"
      b_row "$prov: farm, 2 workers, entities/s" "tp.$prov.w2"
      b_row "$prov: **ratio farm / wrk, 1 worker**" "tp.$prov.w1.ratio"
      b_row "$prov: **ratio farm / wrk, 2 workers**" "tp.$prov.w2.ratio"
      b_row "$prov: worker peak RSS (MB), 1 worker" "tp.$prov.w1.rss"
    done
    echo
    echo "Where the CPU goes, per entity (µs of CPU, user + system, from \`/proc/PID/stat\`, 10 ms"
    echo "ticks; wrk from \`/usr/bin/time\`): the client side of one request in wrk against our"
    echo "worker, and the provider's and Redis's shares."
    echo
    echo "| figure | median | min | max | runs |"
    echo "|---|---|---|---|---|"
    for prov in $provs; do
      b_row "$prov: wrk CPU µs per request" "tp.$prov.wrk.cpu"
      b_row "$prov: provider CPU µs per request (wrk)" "tp.$prov.wrk.pcpu"
      b_row "$prov: worker CPU µs per entity, 1 worker" "tp.$prov.w1.wcpu"
      b_row "$prov: workers' CPU µs per entity, 2 workers" "tp.$prov.w2.wcpu"
      b_row "$prov: provider CPU µs per entity (farm, 1 worker)" "tp.$prov.w1.pcpu"
      b_row "$prov: redis-server CPU µs per entity (1 worker)" "tp.$prov.w1.cpu"
      echo "| $prov: cores busy during wrk (rate x CPU per request, medians) | $(b_fmt "$(awk -v r="$(b_med "tp.$prov.wrk")" -v a="$(b_med "tp.$prov.wrk.cpu")" -v b="$(b_med "tp.$prov.wrk.pcpu")" 'BEGIN { if (a == "n/a" || b == "n/a" || r == "n/a") print "n/a"; else print r * (a + b) / 1e6 }')") | | | |"
      echo "| $prov: cores busy during the farm, 1 worker (same) | $(b_fmt "$(awk -v r="$(b_med "tp.$prov.w1")" -v a="$(b_med "tp.$prov.w1.wcpu")" -v b="$(b_med "tp.$prov.w1.pcpu")" -v c="$(b_med "tp.$prov.w1.cpu")" 'BEGIN { if (a == "n/a" || b == "n/a" || c == "n/a" || r == "n/a") print "n/a"; else print r * (a + b + c) / 1e6 }')") | | | |"
    done
    echo
    echo "Cores busy = rate x the CPU per request of the processes involved: how much of the"
    echo "machine each side used (other sessions' work took some of it: see the load average)."
    echo "At equal CPU, the ratio is (wrk + provider) / (worker + provider + Redis) CPU per entity."
  } >"$B_RES/md/10-throughput.md"
  return 0
}

# nginx_worker_pid: the PID of nginx's (only) worker process.
nginx_worker_pid() { pgrep -P "$NGINX_PID" | head -1; }

# tp_cause RATIO PROV: the named cause of a throughput gap, with the worker
# CPU per entity that 0.7 would need when every process shares the cores.
tp_cause() {
  [ "$(b_cmp "$1" ge 0.7)" = 1 ] && { echo "-"; return; }
  local wc wp fc fp fr need
  wc=$(b_med "tp.$2.wrk.cpu"); wp=$(b_med "tp.$2.wrk.pcpu")
  fc=$(b_med "tp.$2.w1.wcpu"); fp=$(b_med "tp.$2.w1.pcpu"); fr=$(b_med "tp.$2.w1.cpu")
  need=$(awk -v a="$wc" -v b="$wp" -v p="$fp" -v r="$fr" 'BEGIN { if (a == "n/a" || b == "n/a" || p == "n/a" || r == "n/a") print "n/a"; else printf "%.1f", (a + b) / 0.7 - p - r }')
  local cw cf
  cw=$(awk -v r="$(b_med "tp.$2.wrk")" -v a="$wc" -v b="$wp" 'BEGIN { if (a == "n/a" || b == "n/a" || r == "n/a") print "n/a"; else printf "%.2f", r * (a + b) / 1e6 }')
  cf=$(awk -v r="$(b_med "tp.$2.w1")" -v a="$fc" -v b="$fp" -v c="$fr" 'BEGIN { if (a == "n/a" || b == "n/a" || c == "n/a" || r == "n/a") print "n/a"; else printf "%.2f", r * (a + b + c) / 1e6 }')
  local ww
  ww=$(awk -v r="$(b_med "tp.$2.w1")" -v a="$fc" 'BEGIN { if (a == "n/a" || r == "n/a") print "n/a"; else printf "%.2f", r * a / 1e6 }')
  local needtxt
  if [ "$need" = n/a ]; then
    needtxt="n/a"
  elif [ "$(b_cmp "$need" le 0)" = 1 ]; then
    needtxt="more than the provider and Redis alone spend per entity: out of reach whatever the worker does"
  else
    needtxt="the worker at about $need µs per entity, below wrk's own client cost"
  fi
  echo "client CPU per entity and scheduling: per entity the worker spends $(b_fmt "$fc") µs of CPU, the provider $(b_fmt "$fp") µs and Redis $(b_fmt "$fr") µs, against $(b_fmt "$wc") µs (wrk) + $(b_fmt "$wp") µs (provider) per wrk request. wrk kept $cw cores busy, the farm (1 worker) $cf, the worker process itself $ww of a core: the rest of the time its requests wait on the provider and Redis, three processes the scheduler serves in turn on $(nproc) shared cores (see the load average). At equal CPU, 0.7 would need $needtxt. The worker's costs are named in section 8"
}
