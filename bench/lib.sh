# SPDX-License-Identifier: MIT
# Shared helpers of bench/run: the private redis-server, providers (mockprov,
# nginx), workers, waiting for jobs, Redis cost snapshots, and the results
# store (one file per figure, one value per line, turned into median / min /
# max when the report is written).  Sourced, never run.
#
# Conventions: our programs talk to Redis over a unix socket
# ($B_TMP/redis.sock); the benchmark's own tooling (polls, INFO, MONITOR)
# uses a private TCP port, so MONITOR can tell the two apart.  Every process
# started here is stopped by its PID in b_cleanup.

B_PIDS=()
B_WPIDS=()

b_log() { printf '[bench %5ss] %s\n' "$SECONDS" "$*" >&2; }

# ---- results ----

# b_put KEY VALUE: record one measurement of figure KEY.
b_put() { printf '%s\n' "$2" >>"$B_RES/v.$1"; }

# b_stat KEY: "median min max count" of the values recorded for KEY, or
# "n/a n/a n/a 0" when there are none.
b_stat() {
  local f="$B_RES/v.$1"
  if [ ! -s "$f" ]; then echo "n/a n/a n/a 0"; return; fi
  sort -g "$f" | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; print m, a[1], a[NR], NR}'
}
b_med() { b_stat "$1" | awk '{print $1}'; }

# b_fmt NUMBER: three significant digits, no exponent for ordinary sizes.
b_fmt() {
  awk -v x="$1" 'BEGIN {
    if (x == "n/a" || x == "") { print "n/a"; exit }
    a = (x < 0) ? -x : x
    if (a >= 1000) printf "%.0f\n", x
    else if (a >= 100) printf "%.0f\n", x
    else if (a >= 10) printf "%.1f\n", x
    else if (a >= 1) printf "%.2f\n", x
    else if (a >= 0.01) printf "%.3f\n", x
    else if (a == 0) print "0"
    else printf "%.4f\n", x }'
}

# b_row LABEL KEY [UNIT]: a Markdown row "| LABEL | median | min | max | runs |".
b_row() {
  local med min max n
  read -r med min max n < <(b_stat "$2")
  echo "| $1 | $(b_fmt "$med") | $(b_fmt "$min") | $(b_fmt "$max") | $n |"
}

# b_div A B: A / B, or n/a.
b_div() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "n/a" || b == "n/a" || b + 0 == 0) print "n/a"; else printf "%.6g\n", a / b }'; }

# b_target NAME MEASURED BAR MET(1/0/"") CAUSE: one row of the targets table.
b_target() {
  local status
  case "$4" in 1) status="met" ;; 0) status="**gap**" ;; *) status="not measured" ;; esac
  printf '| %s | %s | %s | %s | %s |\n' "$1" "$2" "$3" "$status" "$5" >>"$B_RES/targets.md"
}

# b_cmp VALUE OP BAR: 1 if VALUE OP BAR holds (OP: le ge lt gt), 0 if not, "" if n/a.
b_cmp() {
  awk -v v="$1" -v op="$2" -v b="$3" 'BEGIN {
    if (v == "n/a" || v == "" || b == "n/a") { print ""; exit }
    r = (op == "le") ? v <= b : (op == "ge") ? v >= b : (op == "lt") ? v < b : v > b
    print r ? 1 : 0 }'
}

# ---- processes ----

b_track() { B_PIDS+=("$1"); }

# b_mine PID: whether PID is a live child of this shell.  A process of ours
# that exited has been reaped by bash and its PID may already belong to
# someone else (pid_max is often 32768 and the benchmark alone forks tens
# of processes a second), so b_stop and b_cleanup signal only our children.
b_mine() {
  local s
  read -r s 2>/dev/null <"/proc/$1/stat" || return 1
  s=${s##*) } # "STATE PPID ...": the fields after the command name
  [ "${s%% *}" != Z ] || return 1
  s=${s#* }
  [ "${s%% *}" = "$$" ]
}

# b_stop PID...: SIGTERM, then SIGKILL after 10 s; reaps the process.
b_stop() {
  local p i
  for p in "$@"; do
    [ -n "$p" ] || continue
    if b_mine "$p"; then
      kill -TERM "$p" 2>/dev/null
      for i in $(seq 1 200); do b_mine "$p" || break; sleep 0.05; done
      b_mine "$p" && kill -KILL "$p" 2>/dev/null
    fi
    wait "$p" 2>/dev/null
  done
  return 0
}

b_cleanup() {
  local i
  for ((i = ${#B_PIDS[@]} - 1; i >= 0; i--)); do b_stop "${B_PIDS[$i]}"; done
  B_PIDS=()
}

# b_wait_for SECONDS CMD...: polls CMD every 20 ms until it succeeds.
b_wait_for() {
  local deadline=$((SECONDS + $1)); shift
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.02
  done
}

# b_free_port: a TCP port on 127.0.0.1 that nobody listens on.
b_free_port() {
  local p
  for _ in $(seq 1 100); do
    p=$((20000 + RANDOM % 40000))
    if [ -z "$(ss -Htln "sport = :$p" 2>/dev/null)" ]; then echo "$p"; return 0; fi
  done
  return 1
}

# b_hwm_kb PID: peak resident set (VmHWM) of a live process, in kB.
b_hwm_kb() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo n/a; }

# ---- redis ----

rc() { redis-cli -h 127.0.0.1 -p "$B_RPORT" "$@"; }

b_redis_start() {
  B_RPORT=$(b_free_port)
  redis-server --port "$B_RPORT" --bind 127.0.0.1 --unixsocket "$B_TMP/redis.sock" \
    --unixsocketperm 700 --save '' --appendonly no --dir "$B_TMP" \
    --logfile "$B_TMP/redis.log" --maxclients 4000 &
  B_RPID=$!
  b_track "$B_RPID"
  b_wait_for 10 sh -c "redis-cli -h 127.0.0.1 -p $B_RPORT PING | grep -q PONG" ||
    { b_log "redis-server did not start (see $B_TMP/redis.log)"; return 1; }
  export REDIS_URL="unix://$B_TMP/redis.sock"
}

# b_flush: a clean keyspace (scripts stay loaded).
b_flush() { rc FLUSHALL >/dev/null; }

# b_snap FILE: INFO cpu + commandstats (one INFO call).
b_snap() { rc INFO cpu commandstats | tr -d '\r' >"$1"; }

# b_cost BEFORE AFTER TOOLCMDS: "commands cpu_us" spent between two snapshots,
# less TOOLCMDS commands sent by the benchmark itself (its polls, and the
# INFO of the first snapshot, which the second one counts).
b_cost() {
  awk -F'[:=,]' -v tool="$3" '
    FNR == 1 { f++ }
    /^used_cpu_sys:|^used_cpu_user:/ { cpu[f] += $2 }
    /^cmdstat_/ { for (i = 2; i < NF; i++) if ($i == "calls") calls[f] += $(i + 1) }
    END { printf "%d %.0f\n", calls[2] - calls[1] - tool - 1, (cpu[2] - cpu[1]) * 1e6 }' "$1" "$2"
}

# b_cmdtable BEFORE AFTER N [POLLS]: Markdown rows "| command | calls per entity |
# µs per entity |" of the commandstats delta, busiest first (EVALSHA's time
# includes the commands its scripts ran, which are also listed by name).
b_cmdtable() {
  awk -F'[:=,]' -v n="$3" -v polls="${4:-0}" '
    FNR == 1 { f++ }
    /^cmdstat_/ { c = substr($1, 9); for (i = 2; i < NF; i++) { if ($i == "calls") calls[f, c] = $(i + 1); if ($i == "usec") us[f, c] = $(i + 1) }; seen[c] = 1 }
    END { for (c in seen) { d = calls[2, c] - calls[1, c]; u = us[2, c] - us[1, c]
            if (c == "hget") d -= polls
            if (d > 0 && c != "info") printf "%s\t%.4f\t%.3f\n", c, d / n, u / n } }' "$1" "$2" |
    sort -t$'\t' -k3 -g -r | awk -F'\t' '{ printf "| %s | %s | %s |\n", toupper($1), $2, $3 }'
}

# b_monitor_start FILE: `redis-cli MONITOR` (over the private TCP port) into
# FILE until b_monitor_stop; returns once Redis has answered OK, so nothing
# sent after it is missed.  MONITOR slows Redis: not for timed runs at high
# rates.  redis-cli is started directly, not through rc: `rc ... &` would
# fork a subshell and $! would be that shell, whose SIGTERM leaves the
# redis-cli child (and its MONITOR) running until redis-server exits.
b_monitor_start() {
  redis-cli -h 127.0.0.1 -p "$B_RPORT" MONITOR >"$1" 2>/dev/null &
  B_MONPID=$!
  b_track "$B_MONPID"
  b_wait_for 5 grep -q '^OK' "$1" || { b_log "MONITOR did not start"; return 1; }
}
# b_monitor_stop: lets the last lines reach the file, then stops the capture.
b_monitor_stop() { sleep 0.1; b_stop "${B_MONPID:-}"; B_MONPID=""; }

# b_monitor_count FILE: "ours lua" from a MONITOR capture: the commands our
# programs sent (they use the unix socket: each is a round trip, an EVALSHA
# counts once) and the commands run inside scripts (source `lua`).  The
# benchmark's own commands come over TCP and are in neither.
b_monitor_count() {
  awk '$2 ~ /^\[[0-9]+$/ { if ($3 ~ /^unix:/) o++; else if ($3 == "lua]") l++ }
       END { print o + 0, l + 0 }' "$1"
}

# b_monitor_rows SRC N FILE...: Markdown rows "| command | count | per N |"
# of the round trips in MONITOR captures, busiest first, counting the
# commands that came over SRC (unix: the unix socket; tcp: TCP, not from a
# script); EVALSHA is named by its script (the SHA1s the binaries were built
# with, mk/embed.sh, else the sources').
b_monitor_rows() {
  local src=$1 n=$2 shamap="$B_TMP/shamap" f
  shift 2
  : >"$shamap"
  if [ -f "$B_ROOT/build/gen/ef_scripts_gen.c" ]; then
    sed -n 's/^const ef_script_t ef_script_[a-z_0-9]* = {"\([^"]*\)", "\([0-9a-f]*\)".*/\2 \1/p' \
      "$B_ROOT/build/gen/ef_scripts_gen.c" >"$shamap"
  fi
  for f in "$B_ROOT"/scripts/*.lua; do
    echo "$(sha1sum "$f" | cut -c1-40) $(basename "$f" .lua)" >>"$shamap"
  done
  awk -v n="$n" -v src="$src" '
    FNR == NR { name[$1] = $2; next }
    $2 ~ /^\[[0-9]+$/ && (src == "unix" ? $3 ~ /^unix:/ : ($3 !~ /^unix:/ && $3 != "lua]")) {
      c = toupper($4); gsub(/"/, "", c)
      if (c == "EVALSHA") { s = $5; gsub(/"/, "", s); c = c " " ((s in name) ? name[s] : "(other script)") }
      # an EVAL carries the text: its header line "-- NAME: ..." names it
      else if (c == "EVAL") c = c " " (match($0, /\\n-- [a-z_0-9]+:/) ? substr($0, RSTART + 5, RLENGTH - 6) : "(other script)")
      cnt[c]++ }
    END { for (c in cnt) printf "| %s | %d | %.4f |\n", c, cnt[c], cnt[c] / n }' \
    "$shamap" "$@" | sort -t'|' -k3 -n -r
}

# b_monitor_bycmd FILE N: b_monitor_rows for our programs on the unix socket.
b_monitor_bycmd() { b_monitor_rows unix "$2" "$1"; }

# b_rows_side_by_side A B: the "| command | count | per N |" rows of two
# runs (b_monitor_bycmd's form, files A and B) as "| command | A count |
# A per N | B count | B per N |", a command missing on one side 0 there,
# busiest in B first.
b_rows_side_by_side() {
  LC_ALL=C join -t'|' -a1 -a2 -e 0 -o 0,1.2,1.3,2.2,2.3 \
    <(awk -F'|' '{ c = $2; gsub(/^ +| +$/, "", c); print c "|" $3 "|" $4 }' "$1" 2>/dev/null | LC_ALL=C sort -t'|' -k1,1) \
    <(awk -F'|' '{ c = $2; gsub(/^ +| +$/, "", c); print c "|" $3 "|" $4 }' "$2" 2>/dev/null | LC_ALL=C sort -t'|' -k1,1) |
    sort -t'|' -k5 -g -r | awk -F'|' '{ for (i = 1; i <= 5; i++) gsub(/^ +| +$/, "", $i); printf "| %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5 }'
}

# b_job_wait ID TIMEOUT_S: polls the job every 20 ms until it is completed;
# adds the number of polls sent to $B_TMP/polls.  Returns 1 on timeout or
# on a final status other than completed.
b_job_wait() {
  local id=$1 deadline=$((SECONDS + $2)) n=0 s
  while :; do
    s=$(rc HGET "farm:{default}:job:$id" status)
    n=$((n + 1))
    case "$s" in completed) break ;; cancelled | failed) echo "$n" >>"$B_TMP/polls"; return 1 ;; esac
    if [ "$SECONDS" -ge "$deadline" ]; then echo "$n" >>"$B_TMP/polls"; return 1; fi
    sleep 0.02
  done
  echo "$n" >>"$B_TMP/polls"
}
b_polls_reset() { : >"$B_TMP/polls"; }
b_polls() { awk '{s += $1} END {print s + 0}' "$B_TMP/polls"; }

# b_job_field ID FIELD
b_job_field() { rc HGET "farm:{default}:job:$1" "$2"; }

# ---- providers ----

# b_mock_start VAR_PREFIX ARGS...: a mockprov on a free port; sets
# ${PREFIX}_PORT and ${PREFIX}_PID.
b_mock_start() {
  local pre=$1 pf="$B_TMP/$1.port"; shift
  rm -f "$pf"
  "$BIN/mockprov" --listen 127.0.0.1:0 --port-file "$pf" --catalog 2000000 "$@" \
    2>>"$B_TMP/$pre.log" &
  local pid=$!
  b_track "$pid"
  b_wait_for 10 test -s "$pf" || { b_log "mockprov did not start"; return 1; }
  printf -v "${pre}_PORT" '%s' "$(cat "$pf")"
  printf -v "${pre}_PID" '%s' "$pid"
}

# b_nginx_start: nginx as our own process (one worker process, keep-alive,
# no access log) serving a static JSON body for /item/*; sets NGINX_PORT.
b_nginx_start() {
  local d="$B_TMP/nginx"
  command -v nginx >/dev/null || return 1
  mkdir -p "$d/tmp"
  NGINX_PORT=$(b_free_port)
  sed -e "s|@PORT@|$NGINX_PORT|g" -e "s|@DIR@|$d|g" "$B_ROOT/bench/nginx.conf.in" >"$d/nginx.conf"
  nginx -p "$d" -e "$d/error.log" -c "$d/nginx.conf" -g 'daemon off;' 2>>"$d/error.log" &
  NGINX_PID=$!
  b_track "$NGINX_PID"
  b_wait_for 10 curl -sf "http://127.0.0.1:$NGINX_PORT/item/1" ||
    { b_log "nginx did not start (see $d/error.log)"; return 1; }
}

# b_recipe FILE BASE_URL [RATE_JSON]: the minimal items recipe against BASE_URL.
b_recipe() {
  local rate=""
  [ -n "${3:-}" ] && rate=", \"rate\": $3"
  cat >"$1" <<EOF
{"providers": {"items": {
   "steps": [{"method": "GET", "url": "$2/item/{id}"}],
   "extract": {"title": "/title"}$rate,
   "timeout_ms": 5000, "retries": 3}}}
EOF
}

# ---- our programs ----

# b_workers_start N RECIPE CONCURRENCY [ARGS...]: starts N workers, waits
# until each has registered; their PIDs are in B_WPIDS.
b_workers_start() {
  local n=$1 recipe=$2 conc=$3 i; shift 3
  B_WPIDS=()
  for i in $(seq 1 "$n"); do
    "$BIN/worker" --providers "$recipe" --concurrency "$conc" --id "bench-w$i" "$@" \
      2>>"$B_TMP/worker-$i.log" &
    B_WPIDS+=("$!")
    b_track "$!"
  done
  b_wait_for 15 sh -c "[ \"\$(redis-cli -h 127.0.0.1 -p $B_RPORT ZCARD farm:workers)\" -ge $n ]" ||
    { b_log "workers did not register (see $B_TMP/worker-*.log)"; return 1; }
  sleep 0.2 # let every take connection reach BLMOVE
}
b_workers_stop() { b_stop "${B_WPIDS[@]}"; B_WPIDS=(); }

# b_enqueue FILE [ARGS...]: submits FILE as a job of provider items; prints the id.
b_enqueue() { local f=$1; shift; "$BIN/enqueuer" --provider items --chunk-size 50 -q "$@" "$f" 2>>"$B_TMP/enqueuer.log"; }

# b_job_eps ID: entities per second of a completed job, from its
# started_at / completed_at (ms, Redis clock).
b_job_eps() {
  local s c t
  read -r s c t < <(rc HMGET "farm:{default}:job:$1" started_at completed_at total | tr '\n' ' ')
  awk -v s="$s" -v c="$c" -v t="$t" 'BEGIN { if (c > s && s > 0) printf "%.0f\n", t * 1000 / (c - s); else print "n/a" }'
}

# b_wrk URL SECONDS: wrk -t1 -c64 against URL; sets WRK_RPS (requests per
# second), WRK_CPU_US (wrk's own CPU, user + sys, µs per request) and
# WRK_PCPU_US (CPU of the provider process $B_PROV_PID, if set, µs per request).
b_wrk() {
  local p0 p1
  WRK_RPS="" WRK_CPU_US=n/a WRK_PCPU_US=n/a
  p0=$(b_cpu_ticks ${B_PROV_PID:-})
  /usr/bin/time -f '%U %S' -o "$B_TMP/wrk.time" wrk -t1 -c64 -d"$2"s "$1" >"$B_TMP/wrk.out" 2>/dev/null || return 1
  WRK_RPS=$(awk '/^Requests\/sec:/ {printf "%.0f\n", $2}' "$B_TMP/wrk.out")
  local n
  n=$(awk '/requests in/ {print $1}' "$B_TMP/wrk.out")
  WRK_CPU_US=$(awk -v n="$n" '{ if (n > 0) printf "%.2f\n", ($1 + $2) * 1e6 / n; else print "n/a" }' "$B_TMP/wrk.time")
  p1=$(b_cpu_ticks ${B_PROV_PID:-})
  [ -n "${B_PROV_PID:-}" ] && [ -n "$n" ] && WRK_PCPU_US=$(b_div "$(((p1 - p0) * 1000000 / B_HZ))" "$n")
  return 0
}

# b_cpu_ticks PID...: user + system CPU of the processes so far, in clock ticks.
b_cpu_ticks() {
  local p t=0 v
  for p in "$@"; do
    v=$(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null) || v=0
    t=$((t + ${v:-0}))
  done
  echo "$t"
}
B_HZ=$(getconf CLK_TCK 2>/dev/null || echo 100)

# b_farm_run RECIPE NWORKERS CONCURRENCY IDS_FILE [TIMEOUT_S]: one job of
# IDS_FILE through NWORKERS fresh workers on a flushed Redis.  Sets FR_ID,
# FR_EPS (entities/s from started_at/completed_at), FR_CMDS and FR_CPU_US
# (Redis commands including those inside scripts, and redis-server CPU, from
# before the enqueue to the completion: enqueuer and workers together),
# FR_HWM_KB (the largest worker VmHWM), FR_WCPU_US / FR_PCPU_US (CPU µs
# per entity of the workers / of the provider process $B_PROV_PID, if set,
# 10 ms resolution) and FR_N.  Returns 1 if the job did not complete.
b_farm_run() {
  local recipe=$1 nw=$2 conc=$3 ids=$4 tmo=${5:-600} p h ok=0 w0 w1 p0 p1
  FR_ID="" FR_EPS=n/a FR_CMDS=n/a FR_CPU_US=n/a FR_HWM_KB=n/a FR_WCPU_US=n/a FR_PCPU_US=n/a
  FR_N=$(wc -l <"$ids")
  b_flush
  b_workers_start "$nw" "$recipe" "$conc" || { b_workers_stop; return 1; }
  b_polls_reset
  w0=$(b_cpu_ticks "${B_WPIDS[@]}"); p0=$(b_cpu_ticks ${B_PROV_PID:-})
  b_snap "$B_TMP/snap.0"
  FR_ID=$(b_enqueue "$ids")
  if [ -n "$FR_ID" ] && b_job_wait "$FR_ID" "$tmo"; then ok=1; fi
  b_snap "$B_TMP/snap.1"
  w1=$(b_cpu_ticks "${B_WPIDS[@]}"); p1=$(b_cpu_ticks ${B_PROV_PID:-})
  cp "$B_TMP/snap.0" "$B_TMP/snap.farm.0"; cp "$B_TMP/snap.1" "$B_TMP/snap.farm.1"
  if [ "$ok" = 1 ]; then
    FR_EPS=$(b_job_eps "$FR_ID")
    read -r FR_CMDS FR_CPU_US < <(b_cost "$B_TMP/snap.0" "$B_TMP/snap.1" "$(b_polls)")
    FR_WCPU_US=$(b_div "$(((w1 - w0) * 1000000 / B_HZ))" "$FR_N")
    [ -n "${B_PROV_PID:-}" ] && FR_PCPU_US=$(b_div "$(((p1 - p0) * 1000000 / B_HZ))" "$FR_N")
  else
    b_log "job ${FR_ID:-?} did not complete: status $(b_job_field "$FR_ID" status 2>/dev/null)," \
      "processed $(b_job_field "$FR_ID" processed 2>/dev/null) of $FR_N"
  fi
  FR_HWM_KB=0
  for p in "${B_WPIDS[@]}"; do
    h=$(b_hwm_kb "$p")
    [ "$h" != n/a ] && [ "$h" -gt "$FR_HWM_KB" ] && FR_HWM_KB=$h
  done
  b_workers_stop
  [ "$ok" = 1 ]
}

# ---- nodes: redis-servers of the Cluster and TLS scenarios ----
# These scenarios compare our programs over TCP (a cluster, TLS), so the
# convention is the other way round: our programs use TCP and the
# benchmark's own tooling (INFO, polls, MONITOR) each node's unix socket,
# which MONITOR names `unix:` and so tells apart.

# b_node_start NAME [ARGS...]: a redis-server on a free TCP port with the
# unix socket $B_TMP/NAME.sock, no persistence; sets NODE_PORT and
# NODE_PID.  With NODE_BUS=1, a cluster node: --cluster-port is another
# free port (data port + 10000 may be past 65535).  Waits until it answers
# PING; a port taken meanwhile by someone else is retried (3 tries).
b_node_start() {
  local name=$1 try bus=(); shift
  mkdir -p "$B_TMP/$name"
  for try in 1 2 3; do
    NODE_PORT=$(b_free_port)
    bus=()
    [ "${NODE_BUS:-0}" = 1 ] && bus=(--cluster-port "$(b_free_port)")
    [ "${bus[1]:-}" = "$NODE_PORT" ] && continue
    rm -f "$B_TMP/$name/nodes.conf"
    redis-server --port "$NODE_PORT" --bind 127.0.0.1 --unixsocket "$B_TMP/$name.sock" \
      --unixsocketperm 700 --save '' --appendonly no --dir "$B_TMP/$name" \
      --logfile "$B_TMP/$name.log" --maxclients 4000 "${bus[@]}" "$@" &
    NODE_PID=$!
    b_track "$NODE_PID"
    b_wait_for 10 sh -c "redis-cli -s '$B_TMP/$name.sock' PING | grep -q PONG" && return 0
    b_stop "$NODE_PID"
    b_log "redis-server $name did not start on :$NODE_PORT (try $try): $(tail -1 "$B_TMP/$name.log")"
  done
  return 1
}

# b_scli SOCK ARGS...: redis-cli over a node's unix socket.
b_scli() { redis-cli -s "$1" "${@:2}"; }

# b_snap_sock SOCK FILE: INFO cpu + commandstats + errorstats of one node.
b_snap_sock() { b_scli "$1" INFO cpu commandstats errorstats | tr -d '\r' >"$2"; }

# b_redirected BEFORE AFTER: the commands a cluster node answered with a
# redirection or a retry (MOVED, ASK, TRYAGAIN, CLUSTERDOWN) between two
# snapshots: round trips that run nothing, so neither commandstats' calls
# nor MONITOR show them.
b_redirected() {
  awk -F'[:=,]' '
    FNR == 1 { f++ }
    /^errorstat_(MOVED|ASK|TRYAGAIN|CLUSTERDOWN):/ { n[f] += $3 }
    END { print n[2] - n[1] + 0 }' "$1" "$2"
}

# b_monitor_start_sock SOCK FILE: like b_monitor_start, on a node's unix
# socket; the PID is appended to B_MONPIDS (b_monitor_stop_all stops them).
B_MONPIDS=()
b_monitor_start_sock() {
  redis-cli -s "$1" MONITOR >"$2" 2>/dev/null &
  B_MONPIDS+=("$!")
  b_track "$!"
  b_wait_for 5 grep -q '^OK' "$2" || { b_log "MONITOR on $1 did not start"; return 1; }
}
b_monitor_stop_all() { sleep 0.1; b_stop "${B_MONPIDS[@]}"; B_MONPIDS=(); }

# b_monitor_count_tcp FILE...: "ours lua" like b_monitor_count, where ours
# are the commands that came over TCP (our programs in these scenarios).
b_monitor_count_tcp() {
  awk '$2 ~ /^\[[0-9]+$/ { if ($3 ~ /^unix:/) next; if ($3 == "lua]") l++; else o++ }
       END { print o + 0, l + 0 }' "$@"
}

# b_monitor_bycmd_tcp N FILE...: b_monitor_rows for the commands that
# came over TCP, of all FILEs together.
b_monitor_bycmd_tcp() { b_monitor_rows tcp "$@"; }

# b_workers_stop_fast: SIGTERM, and a second one after 0.5 s (exit at once):
# for workers whose jobs are all done, which would otherwise wait for
# blocked takes on other cluster primaries to time out (5 s).
b_workers_stop_fast() {
  local p i alive
  for p in "${B_WPIDS[@]}"; do b_mine "$p" && kill -TERM "$p" 2>/dev/null; done
  for i in $(seq 1 10); do
    alive=0
    for p in "${B_WPIDS[@]}"; do b_mine "$p" && alive=1; done
    [ "$alive" = 1 ] || break
    sleep 0.05
  done
  for p in "${B_WPIDS[@]}"; do b_mine "$p" && kill -TERM "$p" 2>/dev/null; done
  b_workers_stop
}

# b_mfarm_run URL RECIPE NWORKERS CONCURRENCY IDS QUEUES...: one job of IDS
# on each of QUEUES, all through NWORKERS fresh workers serving every queue,
# on flushed nodes (MF_KEEP=1: not flushed, the queues keep their earlier
# jobs, as in a farm that ran before).  The nodes are MF_SOCKS (unix sockets, in order); the
# node holding queue Q's keys is MF_QSOCK[Q].  Sets MF_N (entities in all),
# MF_EPS (MF_N / (last completed_at - first started_at)), MF_CMDS and
# MF_CPU_US (all nodes), MF_NODE_CPU (per node CPU µs, space-separated, in
# the order of MF_SOCKS), MF_WCPU_US (workers' CPU µs per entity) and
# MF_REDIRS (MOVED + ASK the workers logged), MF_REJ (commands the nodes
# answered with a redirection, b_redirected), MF_JOBS (jobs made).  With MF_MON=PREFIX set,
# `MONITOR` captures every node's commands into PREFIX.I from just before
# the enqueue to the completion (MONITOR slows Redis: not for timed runs).
# Returns 1 when a job did not complete.
declare -A MF_QSOCK
MF_SOCKS=()
b_mfarm_run() {
  local url=$1 recipe=$2 nw=$3 conc=$4 ids=$5; shift 5
  local qs=("$@") q i s id ok=1 w0 w1 deadline st n
  local -A jid polls
  MF_N=0 MF_EPS=n/a MF_CMDS=n/a MF_CPU_US=n/a MF_NODE_CPU="" MF_WCPU_US=n/a MF_REDIRS=n/a MF_REJ=n/a
  for s in "${MF_SOCKS[@]}"; do
    if [ "${MF_KEEP:-0}" = 1 ]; then
      # the last run's workers, so that the wait below sees the new ones
      # (on a cluster the nodes not holding it answer MOVED: before the snapshot)
      b_scli "$s" DEL farm:workers >/dev/null 2>&1
    else
      b_scli "$s" FLUSHALL >/dev/null
    fi
    polls[$s]=0
  done
  MF_JOBS=${#qs[@]}
  B_WPIDS=()
  for i in $(seq 1 "$nw"); do
    : >"$B_TMP/mworker-$i.log"
    "$BIN/worker" --redis "$url" --providers "$recipe" --concurrency "$conc" --id "bench-w$i" \
      --queue "$(IFS=,; echo "${qs[*]}")" 2>>"$B_TMP/mworker-$i.log" &
    B_WPIDS+=("$!")
    b_track "$!"
  done
  deadline=$((SECONDS + 20))
  until [ "$(for s in "${MF_SOCKS[@]}"; do b_scli "$s" ZCARD farm:workers 2>/dev/null; done |
    awk '/^[0-9]+$/ {t += $1} END {print t + 0}')" -ge "$nw" ]; do
    [ "$SECONDS" -lt "$deadline" ] || { b_log "workers did not register (see $B_TMP/mworker-*.log)"; b_workers_stop; return 1; }
    sleep 0.05
  done
  sleep 0.3 # every take connection in BLMOVE
  w0=$(b_cpu_ticks "${B_WPIDS[@]}")
  for i in "${!MF_SOCKS[@]}"; do b_snap_sock "${MF_SOCKS[$i]}" "$B_TMP/mf.0.$i"; done
  if [ -n "${MF_MON:-}" ]; then
    for i in "${!MF_SOCKS[@]}"; do b_monitor_start_sock "${MF_SOCKS[$i]}" "$MF_MON.$i" || ok=0; done
  fi
  for q in "${qs[@]}"; do
    jid[$q]=$("$BIN/enqueuer" --redis "$url" --queue "$q" --provider items --chunk-size 50 -q "$ids" \
      2>>"$B_TMP/enqueuer.log")
    [ -n "${jid[$q]}" ] || { b_log "enqueue on $q failed (see $B_TMP/enqueuer.log)"; ok=0; }
    MF_N=$((MF_N + $(wc -l <"$ids")))
  done
  deadline=$((SECONDS + 600))
  for q in "${qs[@]}"; do
    [ "$ok" = 1 ] || break
    s=${MF_QSOCK[$q]}
    while :; do
      st=$(b_scli "$s" HGET "farm:{$q}:job:${jid[$q]}" status)
      polls[$s]=$((polls[$s] + 1))
      [ "$st" = completed ] && break
      if [ "$st" = failed ] || [ "$st" = cancelled ] || [ "$SECONDS" -ge "$deadline" ]; then
        b_log "job ${jid[$q]} on $q: $st, processed $(b_scli "$s" HGET "farm:{$q}:job:${jid[$q]}" processed)"
        ok=0; break
      fi
      sleep 0.02
    done
  done
  [ -n "${MF_MON:-}" ] && b_monitor_stop_all
  for i in "${!MF_SOCKS[@]}"; do b_snap_sock "${MF_SOCKS[$i]}" "$B_TMP/mf.1.$i"; done
  w1=$(b_cpu_ticks "${B_WPIDS[@]}")
  b_workers_stop_fast
  MF_REDIRS=$(for i in $(seq 1 "$nw"); do
    grep -o 'redirects so far: MOVED [0-9]*, ASK [0-9]*' "$B_TMP/mworker-$i.log" | tail -1 |
      awk '{print $4 + $6}'; done | awk '{t += $1} END {print t + 0}')
  [ "$ok" = 1 ] || return 1
  local t0 t1 c
  t0=$(for q in "${qs[@]}"; do b_scli "${MF_QSOCK[$q]}" HGET "farm:{$q}:job:${jid[$q]}" started_at; done | sort -n | head -1)
  t1=$(for q in "${qs[@]}"; do b_scli "${MF_QSOCK[$q]}" HGET "farm:{$q}:job:${jid[$q]}" completed_at; done | sort -n | tail -1)
  MF_EPS=$(awk -v n="$MF_N" -v s="$t0" -v c="$t1" 'BEGIN { if (c > s && s > 0) printf "%.0f\n", n * 1000 / (c - s); else print "n/a" }')
  MF_CMDS=0 MF_CPU_US=0 MF_REJ=0
  for i in "${!MF_SOCKS[@]}"; do
    read -r n c < <(b_cost "$B_TMP/mf.0.$i" "$B_TMP/mf.1.$i" "${polls[${MF_SOCKS[$i]}]}")
    MF_CMDS=$((MF_CMDS + n)) MF_CPU_US=$((MF_CPU_US + c))
    MF_REJ=$((MF_REJ + $(b_redirected "$B_TMP/mf.0.$i" "$B_TMP/mf.1.$i")))
    MF_NODE_CPU="$MF_NODE_CPU${MF_NODE_CPU:+ }$c"
  done
  MF_WCPU_US=$(b_div "$(((w1 - w0) * 1000000 / B_HZ))" "$MF_N")
  return 0
}
