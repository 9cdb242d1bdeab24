# SPDX-License-Identifier: MIT
# Scenario 7, peers: the same workload (one GET per entity against the same
# mockprov, JSON parse, one HSET of the result) through BullMQ, RQ and
# Sidekiq on the same redis-server, in the same run.  Ours and BullMQ are
# interleaved repetition by repetition, PEER_N entities each; ratios are
# taken within a repetition.  Entities/s come from each side's own first
# request and last completion; Redis commands and CPU from INFO deltas
# around enqueue + processing.  The peers' code is in bench/peers/; their
# packages are installed at run time (npm into bench/.peers/, Debian for RQ
# and Sidekiq).  Sourced by bench/run.

# peer_result JSONFILE N: "eps hwm_kb" from a peer's {first_ms,last_ms,rss_hwm_kb}.
peer_result() {
  awk -v n="$2" '{
    match($0, /"first_ms": *[0-9]+/); f = substr($0, RSTART, RLENGTH); sub(/.*: */, "", f)
    match($0, /"last_ms": *[0-9]+/); l = substr($0, RSTART, RLENGTH); sub(/.*: */, "", l)
    match($0, /"rss_hwm_kb": *[0-9]+/); h = substr($0, RSTART, RLENGTH); sub(/.*: */, "", h)
    if (l > f && f > 0) printf "%.0f %s\n", n * 1000 / (l - f), h; else print "n/a n/a" }' "$1"
}

peers_install_node() {
  local dir="$B_ROOT/bench/.peers"
  command -v node >/dev/null && command -v npm >/dev/null || return 1
  mkdir -p "$dir"
  if ! cmp -s "$B_ROOT/bench/peers/bullmq/package.json" "$dir/package.json" ||
    [ ! -d "$dir/node_modules/bullmq" ]; then
    cp "$B_ROOT/bench/peers/bullmq/package.json" "$dir/package.json"
    [ -f "$B_ROOT/bench/peers/bullmq/package-lock.json" ] &&
      cp "$B_ROOT/bench/peers/bullmq/package-lock.json" "$dir/package-lock.json"
    b_log "npm install (BullMQ) into bench/.peers"
    (cd "$dir" && npm install --no-audit --no-fund --loglevel=error) >"$B_TMP/npm.log" 2>&1 || return 1
  fi
  export NODE_PATH="$dir/node_modules"
}

# bullmq_run IDS N: one BullMQ run; sets PR_EPS PR_CMDS PR_CPU_US PR_HWM_KB.
bullmq_run() {
  local ids=$1 n=$2 d="$B_ROOT/bench/peers/bullmq"
  PR_EPS=n/a PR_CMDS=n/a PR_CPU_US=n/a PR_HWM_KB=n/a
  b_flush
  b_snap "$B_TMP/snap.0"
  node "$d/enqueue.js" "$B_TMP/redis.sock" bench "$ids" >/dev/null 2>>"$B_TMP/bullmq.log" || return 1
  timeout 600 node "$d/worker.js" "$B_TMP/redis.sock" bench "http://127.0.0.1:$MOCK_PORT" "$n" "$CONC" \
    >"$B_TMP/bullmq.out" 2>>"$B_TMP/bullmq.log" || return 1
  b_snap "$B_TMP/snap.1"
  read -r PR_CMDS PR_CPU_US < <(b_cost "$B_TMP/snap.0" "$B_TMP/snap.1" 0)
  read -r PR_EPS PR_HWM_KB < <(peer_result "$B_TMP/bullmq.out" "$n")
  [ -s "$B_RES/cost.bull.bycmd" ] || b_cmdtable "$B_TMP/snap.0" "$B_TMP/snap.1" "$n" >"$B_RES/cost.bull.bycmd"
}

rq_run() {
  local ids=$1 n=$2 procs=$3 d="$B_ROOT/bench/peers/rq" i pids=()
  PR_EPS=n/a PR_CMDS=n/a PR_CPU_US=n/a PR_HWM_KB=n/a
  b_flush
  b_snap "$B_TMP/snap.0"
  (cd "$d" && PYTHONDONTWRITEBYTECODE=1 /usr/bin/python3 enqueue.py "$B_TMP/redis.sock" "$ids") >/dev/null 2>>"$B_TMP/rq.log" || return 1
  for i in $(seq 1 "$procs"); do
    (cd "$d" && PYTHONDONTWRITEBYTECODE=1 BENCH_BASE="http://127.0.0.1:$MOCK_PORT" timeout 600 /usr/bin/python3 worker.py "$B_TMP/redis.sock") \
      >"$B_TMP/rq.out.$i" 2>>"$B_TMP/rq.log" &
    pids+=("$!")
  done
  wait "${pids[@]}"
  b_snap "$B_TMP/snap.1"
  read -r PR_CMDS PR_CPU_US < <(b_cost "$B_TMP/snap.0" "$B_TMP/snap.1" 0)
  # first of all processes, last of all, sum of done; RSS: the largest process
  cat "$B_TMP"/rq.out.* | awk -v n="$n" '
    { match($0, /"first_ms": *[0-9]+/); f = substr($0, RSTART, RLENGTH); sub(/.*: */, "", f)
      match($0, /"last_ms": *[0-9]+/); l = substr($0, RSTART, RLENGTH); sub(/.*: */, "", l)
      match($0, /"done": *[0-9]+/); d = substr($0, RSTART, RLENGTH); sub(/.*: */, "", d)
      match($0, /"rss_hwm_kb": *[0-9]+/); h = substr($0, RSTART, RLENGTH); sub(/.*: */, "", h)
      if (f > 0 && (F == 0 || f < F)) F = f; if (l > L) L = l; D += d; if (h > H) H = h }
    END { if (D == n && L > F) printf "%.0f %d\n", n * 1000 / (L - F), H; else printf "n/a %d\n", H }' \
    >"$B_TMP/rq.res"
  read -r PR_EPS PR_HWM_KB <"$B_TMP/rq.res"
  rm -f "$B_TMP"/rq.out.*
}

sidekiq_run() {
  local ids=$1 n=$2 d="$B_ROOT/bench/peers/sidekiq" spid
  PR_EPS=n/a PR_CMDS=n/a PR_CPU_US=n/a PR_HWM_KB=n/a
  rm -f "$B_TMP/sidekiq.out"
  b_flush
  b_snap "$B_TMP/snap.0"
  ruby "$d/enqueue.rb" "$B_TMP/redis.sock" "$ids" >/dev/null 2>>"$B_TMP/sidekiq.log" || return 1
  (cd "$d" && BENCH_SOCK="$B_TMP/redis.sock" BENCH_BASE="http://127.0.0.1:$MOCK_PORT" BENCH_N=$n \
    BENCH_OUT="$B_TMP/sidekiq.out" exec sidekiq -r ./worker.rb -c "$CONC" -q default) \
    >>"$B_TMP/sidekiq.log" 2>&1 &
  spid=$!
  b_track "$spid"
  b_wait_for 600 test -s "$B_TMP/sidekiq.out"
  b_stop "$spid"
  b_snap "$B_TMP/snap.1"
  [ -s "$B_TMP/sidekiq.out" ] || return 1
  read -r PR_CMDS PR_CPU_US < <(b_cost "$B_TMP/snap.0" "$B_TMP/snap.1" 0)
  read -r PR_EPS PR_HWM_KB < <(peer_result "$B_TMP/sidekiq.out" "$n")
}

scn_peers() {
  local ids="$B_TMP/ids.peer" rep have_bull=0
  seq 1 "$PEER_N" >"$ids"
  b_recipe "$B_TMP/r.mock.json" "http://127.0.0.1:$MOCK_PORT"
  if peers_install_node; then have_bull=1; else note "BullMQ skipped: node/npm or the npm install failed (see npm.log)"; fi

  for rep in $(seq 1 "$PEER_REPS"); do
    if b_farm_run "$B_TMP/r.mock.json" 1 "$CONC" "$ids"; then
      b_put peer.ours.eps "$FR_EPS"
      b_put peer.ours.cmds "$(b_div "$FR_CMDS" "$PEER_N")"
      b_put peer.ours.cpu "$(b_div "$FR_CPU_US" "$PEER_N")"
      b_put peer.ours.rss "$(b_div "$FR_HWM_KB" 1024)"
    fi
    b_log "rep $rep ours: $FR_EPS entities/s, $(b_div "$FR_CMDS" "$PEER_N") cmds, $(b_div "$FR_CPU_US" "$PEER_N") cpu us per entity"
    [ "$have_bull" = 1 ] || continue
    if bullmq_run "$ids" "$PEER_N"; then
      b_put peer.bull.eps "$PR_EPS"
      b_put peer.bull.cmds "$(b_div "$PR_CMDS" "$PEER_N")"
      b_put peer.bull.cpu "$(b_div "$PR_CPU_US" "$PEER_N")"
      b_put peer.bull.rss "$(b_div "$PR_HWM_KB" 1024)"
      b_put peer.ratio.eps "$(b_div "$FR_EPS" "$PR_EPS")"
      b_put peer.ratio.cmds "$(b_div "$(b_div "$FR_CMDS" "$PEER_N")" "$(b_div "$PR_CMDS" "$PEER_N")")"
      b_put peer.ratio.cpu "$(b_div "$(b_div "$FR_CPU_US" "$PEER_N")" "$(b_div "$PR_CPU_US" "$PEER_N")")"
    else
      b_log "BullMQ run failed (see $B_TMP/bullmq.log)"
    fi
    b_log "rep $rep BullMQ: $PR_EPS entities/s, $(b_div "$PR_CMDS" "$PEER_N") cmds, $(b_div "$PR_CPU_US" "$PEER_N") cpu us per entity"
  done

  local rq_procs=4
  if /usr/bin/python3 -c 'import rq' 2>/dev/null; then
    seq 1 "$RQ_N" >"$B_TMP/ids.rq"
    if rq_run "$B_TMP/ids.rq" "$RQ_N" "$rq_procs"; then
      b_put peer.rq.eps "$PR_EPS"; b_put peer.rq.rss "$(b_div "$PR_HWM_KB" 1024)"
      b_put peer.rq.cmds "$(b_div "$PR_CMDS" "$RQ_N")"; b_put peer.rq.cpu "$(b_div "$PR_CPU_US" "$RQ_N")"
    else
      note "RQ run failed (see rq.log)"
    fi
    b_log "RQ: $PR_EPS entities/s"
  else
    note "RQ skipped: python3-rq is not installed"
  fi
  if command -v sidekiq >/dev/null && ruby -e 'require "sidekiq"' 2>/dev/null; then
    seq 1 "$SQ_N" >"$B_TMP/ids.sq"
    if sidekiq_run "$B_TMP/ids.sq" "$SQ_N"; then
      b_put peer.sq.eps "$PR_EPS"; b_put peer.sq.rss "$(b_div "$PR_HWM_KB" 1024)"
      b_put peer.sq.cmds "$(b_div "$PR_CMDS" "$SQ_N")"; b_put peer.sq.cpu "$(b_div "$PR_CPU_US" "$SQ_N")"
    else
      note "Sidekiq run failed (see sidekiq.log)"
    fi
    b_log "Sidekiq: $PR_EPS entities/s"
  else
    note "Sidekiq skipped: ruby-sidekiq is not installed"
  fi

  local re rc_ ru
  re=$(b_med peer.ratio.eps); rc_=$(b_med peer.ratio.cmds); ru=$(b_med peer.ratio.cpu)
  b_target "Throughput vs BullMQ (ours / BullMQ, 1 worker each, concurrency $CONC)" "$(b_fmt "$re") x" "≥ 5 x" \
    "$(b_cmp "$re" ge 5)" "$(peer_cause_eps "$re")"
  b_target "Redis commands per entity vs BullMQ (ours / BullMQ)" "$(b_fmt "$rc_")" "≤ 0.1" \
    "$(b_cmp "$rc_" le 0.1)" "-"
  b_target "redis-server CPU per entity vs BullMQ (ours / BullMQ)" "$(b_fmt "$ru")" "≤ 0.1" \
    "$(b_cmp "$ru" le 0.1)" "$(peer_cause_cpu "$ru")"

  {
    echo "## 7. Peers: BullMQ, RQ, Sidekiq"
    echo
    echo "Same workload, same redis-server, same mockprov (zero latency), same run. Ours: one"
    echo "worker, \`--concurrency $CONC\`, chunks of 50, the minimal recipe. Ours and BullMQ run"
    echo "alternately, $PEER_N entities each, $PEER_REPS times; the ratios are taken within one"
    echo "repetition. Entities/s: ours from the job's started_at/completed_at; the peers from their"
    echo "first processor call to their last completion, as their worker process measures it."
    echo "Commands and CPU per entity: \`INFO commandstats\` / \`INFO cpu\` deltas over enqueue and"
    echo "processing together, for every side. RSS: the worker process's \`VmHWM\`."
    echo
    echo "What each does per entity:"
    echo
    echo "- **ours** (\`bin/worker\`): takes a chunk of 50 with \`BLMOVE\`, claims it with one"
    echo "  script call (lease, attempt count, outcomes), one GET per entity over keep-alive"
    echo "  (libcurl multi), the recipe's JSON Pointer extraction, then one \`chunk_ack\` script"
    echo "  call per chunk that records all 50 outcomes, counters, the result hashes (one HSET"
    echo "  each) and the chunk's progress. Enqueue: \`bin/enqueuer\`, chunks of 50."
    echo "- **BullMQ** $(node -p "require('$B_ROOT/bench/.peers/node_modules/bullmq/package.json').version" 2>/dev/null)"
    echo "  (\`bench/peers/bullmq/\`): one job per entity added with \`Queue.addBulk\` in batches of"
    echo "  1000, \`removeOnComplete: true\` (BullMQ's advice for high volume); one \`Worker\` with"
    echo "  \`concurrency: $CONC\`; the processor does the GET on an undici \`Pool\` of $CONC"
    echo "  keep-alive connections, \`JSON.parse\`, and \`HSET result:items:{id} title\` on an ioredis"
    echo "  connection with \`enableAutoPipelining\`. BullMQ itself runs its move-to-active /"
    echo "  move-to-finished scripts (which also fetch the next job), locks and event-stream"
    echo "  entries per job."
    echo "- **RQ** $(dpkg-query -W -f='${Version}' python3-rq 2>/dev/null) (\`bench/peers/rq/\`): one job per entity,"
    echo "  \`Queue.enqueue_many\` in batches of 1000 on a pipeline, \`result_ttl=0\`; $rq_procs"
    echo "  \`SimpleWorker\` processes in burst mode (no fork per job; RQ runs one job at a time per"
    echo "  process, so processes are its concurrency); the job does the GET on a persistent"
    echo "  \`http.client\` connection, \`json.loads\`, \`HSET\` on the worker's connection. $RQ_N entities,"
    echo "  one run."
    echo "- **Sidekiq** $(dpkg-query -W -f='${Version}' ruby-sidekiq 2>/dev/null) (\`bench/peers/sidekiq/\`): one job per entity,"
    echo "  \`Sidekiq::Client.push_bulk\` in batches of 1000; \`sidekiq -c $CONC\` (threads); the job"
    echo "  does the GET on a per-thread keep-alive \`Net::HTTP\`, \`JSON.parse\`, \`HSET\` through"
    echo "  Sidekiq's Redis pool; job logging at warn. $SQ_N entities, one run."
    echo
    echo "| figure | median | min | max | runs |"
    echo "|---|---|---|---|---|"
    b_row "ours: entities/s" peer.ours.eps
    b_row "BullMQ: entities/s" peer.bull.eps
    b_row "**ours / BullMQ: throughput**" peer.ratio.eps
    b_row "ours: Redis commands per entity" peer.ours.cmds
    b_row "BullMQ: Redis commands per entity" peer.bull.cmds
    b_row "**ours / BullMQ: commands per entity**" peer.ratio.cmds
    b_row "ours: redis-server CPU µs per entity" peer.ours.cpu
    b_row "BullMQ: redis-server CPU µs per entity" peer.bull.cpu
    b_row "**ours / BullMQ: CPU per entity**" peer.ratio.cpu
    b_row "ours: worker peak RSS (MB)" peer.ours.rss
    b_row "BullMQ: worker peak RSS (MB)" peer.bull.rss
    b_row "RQ ($rq_procs processes): entities/s" peer.rq.eps
    b_row "RQ: Redis commands per entity" peer.rq.cmds
    b_row "RQ: redis-server CPU µs per entity" peer.rq.cpu
    b_row "RQ: largest worker process peak RSS (MB)" peer.rq.rss
    b_row "Sidekiq: entities/s" peer.sq.eps
    b_row "Sidekiq: Redis commands per entity" peer.sq.cmds
    b_row "Sidekiq: redis-server CPU µs per entity" peer.sq.cpu
    b_row "Sidekiq: worker peak RSS (MB)" peer.sq.rss
    echo
    if [ -s "$B_RES/cost.bull.bycmd" ]; then
      echo "BullMQ's Redis commands per entity (\`INFO commandstats\` delta of its first run; compare"
      echo "with ours in section 2):"
      echo
      echo "| command | calls per entity | µs per entity |"
      echo "|---|---|---|"
      cat "$B_RES/cost.bull.bycmd"
      echo
    fi
  } >"$B_RES/md/70-peers.md"
  return 0
}

peer_cause_eps() {
  [ "$(b_cmp "$1" ge 5)" = 1 ] && { echo "-"; return; }
  echo "5 x BullMQ's $(b_fmt "$(b_med peer.bull.eps)") entities/s would be $(b_fmt "$(awk -v b="$(b_med peer.bull.eps)" 'BEGIN { print (b == "n/a") ? "n/a" : 5 * b }')"); our worker's CPU per entity (section 1, named in section 8) holds it at $(b_fmt "$(b_med peer.ours.eps)") on the cores that Redis and the provider share"
}
peer_cause_cpu() {
  [ "$(b_cmp "$1" le 0.1)" = 1 ] && { echo "-"; return; }
  local ev hs
  ev=$(awk -F'|' '$2 ~ / EVALSHA / {gsub(/ /, "", $4); print $4; exit}' "$B_RES/cost.bycmd" 2>/dev/null)
  hs=$(awk -F'|' '$2 ~ / HSET / {gsub(/ /, "", $4); print $4; exit}' "$B_RES/cost.bycmd" 2>/dev/null)
  echo "Redis CPU follows entities, not round trips: of Redis's own time per entity, the scripts take ${ev:-n/a} µs (section 2), of which ${hs:-n/a} µs are the HSETs of the result hashes (one per entity) and most of the rest is Lua work per entity in chunk_ack (arguments read, the outcome recorded, counters, the results text appended; the fields already arrive as flat pairs) and in chunk_claim"
}
