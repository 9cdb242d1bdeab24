# SPDX-License-Identifier: MIT
# Scenario 9, the farm on a Redis Cluster: three primaries (no replicas:
# replication is not what is measured), CL_QPP queues on each (their hash
# tags picked by CLUSTER KEYSLOT to land on that primary), a CL_N-entity
# job on every queue, two workers serving all the queues over
# redis+cluster://.  In the same repetition the same farm (same queues,
# same jobs, same workers) runs against one plain redis-server over TCP.
# Per run: entities/s, Redis commands (INFO commandstats) and redis-server
# CPU (INFO cpu) per entity on all nodes and on each primary, the workers'
# CPU per entity, and the MOVED/ASK redirections the workers logged.  A
# smaller MONITOR run of each counts the round trips.  The figures for
# sizing a cluster go into docs/operations.md as well (bench/run).
# Sourced by bench/run.

scn_cluster() {
  local ids="$B_TMP/ids.cl" rtids="$B_TMP/ids.clrt" i p q s slot owner rep order kind
  local -a cports=() cpids=() csocks=() addrs=() qs=()
  local -A qowner=() perowner=()
  command -v redis-cli >/dev/null || { note "cluster skipped: no redis-cli"; return 0; }
  CL_LOAD0=$(cut -d' ' -f1 /proc/loadavg)
  seq 1 "$CL_N" >"$ids"
  seq 1 "$CL_RT_N" >"$rtids"
  b_recipe "$B_TMP/r.cl.json" "http://127.0.0.1:$MOCK_PORT"

  # the reference: one plain redis-server, our programs over TCP
  b_node_start one || return 1
  local one_port=$NODE_PORT one_pid=$NODE_PID one_sock="$B_TMP/one.sock"
  # three cluster primaries (b_node_start gives each its bus port)
  for i in 0 1 2; do
    NODE_BUS=1 b_node_start "c$i" --cluster-enabled yes --cluster-config-file "$B_TMP/c$i/nodes.conf" \
      --cluster-node-timeout 5000 || return 1
    cports+=("$NODE_PORT"); cpids+=("$NODE_PID"); csocks+=("$B_TMP/c$i.sock")
    addrs+=("127.0.0.1:$NODE_PORT")
  done
  if ! redis-cli --cluster create "${addrs[@]}" --cluster-replicas 0 --cluster-yes \
    >"$B_TMP/cluster-create.log" 2>&1; then
    note "cluster skipped: redis-cli --cluster create failed ($(tail -1 "$B_TMP/cluster-create.log"))"
    b_stop "${cpids[@]}" "$one_pid"
    return 0
  fi
  cl_ok() { for s in "${csocks[@]}"; do b_scli "$s" CLUSTER INFO | grep -q cluster_state:ok || return 1; done; }
  b_wait_for 30 cl_ok || { note "cluster skipped: state not ok after 30 s"; b_stop "${cpids[@]}" "$one_pid"; return 0; }

  # CL_QPP queues on each primary: the owner of each tag's slot from CLUSTER NODES
  for i in $(seq 1 500); do
    q="q$i"
    slot=$(b_scli "${csocks[0]}" CLUSTER KEYSLOT "{$q}")
    owner=$(b_scli "${csocks[0]}" CLUSTER NODES | awk -v s="$slot" '$3 ~ /master/ {
      for (i = 9; i <= NF; i++) { n = split($i, r, "-"); lo = r[1]; hi = n > 1 ? r[2] : r[1]
        if (s + 0 >= lo + 0 && s + 0 <= hi + 0) { split($2, a, "[:@]"); print a[2]; exit } } }')
    for p in "${!cports[@]}"; do [ "${cports[$p]}" = "$owner" ] && owner=$p && break; done
    [ "${perowner[$owner]:-0}" -lt "$CL_QPP" ] || continue
    perowner[$owner]=$((${perowner[$owner]:-0} + 1))
    qs+=("$q"); qowner[$q]=$owner
    [ "${#qs[@]}" -lt $((3 * CL_QPP)) ] || break
  done
  [ "${#qs[@]}" -eq $((3 * CL_QPP)) ] || { note "cluster skipped: no $CL_QPP queues on each primary"; b_stop "${cpids[@]}" "$one_pid"; return 0; }
  b_log "cluster: primaries :${cports[*]}, queues ${qs[*]} (primary ${qowner[*]}), one node :$one_port"

  local url_one="redis://127.0.0.1:$one_port/0"
  local url_cl="redis+cluster://127.0.0.1:${cports[0]},127.0.0.1:${cports[1]}"
  cl_use() { # one | cl: MF_SOCKS and MF_QSOCK for that topology
    MF_QSOCK=()
    if [ "$1" = one ]; then
      MF_SOCKS=("$one_sock")
      for q in "${qs[@]}"; do MF_QSOCK[$q]=$one_sock; done
    else
      MF_SOCKS=("${csocks[@]}")
      for q in "${qs[@]}"; do MF_QSOCK[$q]=${csocks[${qowner[$q]}]}; done
    fi
  }

  local per dev sh k c url
  local -A r_eps=() r_cmds=() r_cpu=()
  for rep in $(seq 1 "$REPS"); do
    order="one cl"; [ $((rep % 2)) = 0 ] && order="cl one"
    r_eps=() r_cmds=() r_cpu=()
    for kind in $order; do
      cl_use "$kind"
      url=$url_one; [ "$kind" = cl ] && url=$url_cl
      if ! b_mfarm_run "$url" "$B_TMP/r.cl.json" 2 "$CONC" "$ids" "${qs[@]}"; then
        b_log "rep $rep $kind: the farm did not complete"; continue
      fi
      r_eps[$kind]=$MF_EPS
      r_cmds[$kind]=$(b_div "$MF_CMDS" "$MF_N")
      r_cpu[$kind]=$(b_div "$MF_CPU_US" "$MF_N")
      b_put "cl.$kind.eps" "$MF_EPS"
      b_put "cl.$kind.cmds" "${r_cmds[$kind]}"
      b_put "cl.$kind.cpu" "${r_cpu[$kind]}"
      b_put "cl.$kind.wcpu" "$MF_WCPU_US"
      b_put "cl.$kind.redirs" "$MF_REDIRS"
      if [ "$kind" = cl ]; then
        # each primary: its CPU per entity it served, and its share of the
        # total against a third (1 = exactly a third)
        per=$((MF_N / 3))
        dev=0 k=0
        for c in $MF_NODE_CPU; do
          sh=$(awk -v c="$c" -v t="$MF_CPU_US" 'BEGIN { printf "%.4f\n", (t > 0) ? 3 * c / t : 0 }')
          b_put "cl.cl.p$k.cpu" "$(b_div "$c" "$per")"
          b_put "cl.cl.p$k.share" "$sh"
          dev=$(awk -v d="$dev" -v s="$sh" 'BEGIN { x = s - 1; if (x < 0) x = -x; print (x > d) ? x : d }')
          k=$((k + 1))
        done
        b_put cl.cl.dev "$dev"
      fi
      [ -s "$B_RES/cl.bycmd.$kind" ] || b_cmdtable_nodes "$MF_N" >"$B_RES/cl.bycmd.$kind"
      b_log "rep $rep $kind: $MF_EPS entities/s, cmds/entity ${r_cmds[$kind]}, redis cpu us/entity ${r_cpu[$kind]} (per node: $MF_NODE_CPU us), workers cpu us/entity $MF_WCPU_US, redirects $MF_REDIRS"
    done
    if [ -n "${r_eps[one]:-}" ] && [ -n "${r_eps[cl]:-}" ]; then
      b_put cl.ratio.eps "$(b_div "${r_eps[cl]}" "${r_eps[one]}")"
      b_put cl.ratio.cmds "$(b_div "${r_cmds[cl]}" "${r_cmds[one]}")"
      b_put cl.ratio.cpu "$(b_div "${r_cpu[cl]}" "${r_cpu[one]}")"
    fi
  done

  # round trips: MONITOR on every node, a separate run of each on the
  # same queues (kept: a farm that ran before); the commands the nodes
  # answered with a redirection are round trips MONITOR does not show
  local ours lua n files
  for kind in one cl; do
    cl_use "$kind"
    url=$url_one; [ "$kind" = cl ] && url=$url_cl
    MF_MON="$B_TMP/mon.$kind"
    if MF_KEEP=1 b_mfarm_run "$url" "$B_TMP/r.cl.json" 2 "$CONC" "$rtids" "${qs[@]}"; then
      files=(); for i in "${!MF_SOCKS[@]}"; do files+=("$MF_MON.$i"); done
      read -r ours lua < <(b_monitor_count_tcp "${files[@]}")
      b_put "cl.$kind.rt" "$(b_div "$((ours + MF_REJ))" "$MF_N")"
      b_put "cl.$kind.rtlua" "$(b_div "$lua" "$MF_N")"
      b_put "cl.$kind.rtjob" "$(b_div "$((ours + MF_REJ))" "$MF_JOBS")"
      b_put "cl.$kind.rtrej" "$MF_REJ"
      b_monitor_bycmd_tcp "$MF_N" "${files[@]}" >"$B_RES/cl.rt.$kind"
      n=$MF_N
      b_log "monitor $kind: $ours round trips and $MF_REJ redirected, $lua inside scripts, for $MF_N entities"
    else
      b_log "monitor run $kind did not complete"
    fi
    MF_MON=""
  done
  b_stop "${cpids[@]}" "$one_pid"
  CL_LOAD1=$(cut -d' ' -f1 /proc/loadavg)
  cl_report "${#qs[@]}" "${n:-n/a}"
  return 0
}

# b_cmdtable_nodes N: b_cmdtable of the snapshots b_mfarm_run left, summed
# over the nodes of MF_SOCKS.
b_cmdtable_nodes() {
  local i
  for i in "${!MF_SOCKS[@]}"; do
    b_cmdtable "$B_TMP/mf.0.$i" "$B_TMP/mf.1.$i" "$1" 0
  done | awk -F'|' '{ c = $2; gsub(/ /, "", c); calls[c] += $3; us[c] += $4 }
    END { for (c in calls) printf "| %s | %.4f | %.3f |\n", c, calls[c], us[c] }' |
    sort -t'|' -k4 -g -r
}

cl_report() {
  local nq=$1 rtn=$2 dev k
  dev=$(b_med cl.cl.dev)
  local shares=""
  for k in 0 1 2; do shares="$shares${shares:+, }$(b_fmt "$(b_med "cl.cl.p$k.share")")"; done
  b_target "Cluster: each primary's redis-server CPU within 25 % of a third of the total (3 primaries)" \
    "worst $(b_fmt "$(awk -v d="$dev" 'BEGIN { if (d == "n/a") print "n/a"; else print d * 100 }')") % (shares of a third: $shares)" \
    "≤ 25 %" "$(b_cmp "$dev" le 0.25)" \
    "$([ "$(b_cmp "$dev" le 0.25)" = 0 ] && echo "the primary holding the farm-wide keys (farm:workers, farm:queues, the token buckets) also serves the heartbeats and registry of every worker" || echo -)"
  local rr rc rok
  rr=$(b_div "$(b_med cl.cl.rt)" "$(b_med cl.one.rt)")
  rc=$(b_med cl.ratio.cmds)
  # "no worse than one node", read at the two decimals the report shows
  rok=$(awk -v a="$(b_cmp "$rc" le 1.005)" -v b="$(b_cmp "$rr" le 1.005)" 'BEGIN {
    if (a == "" || b == "") print ""; else print (a && b) ? 1 : 0 }')
  b_target "Cluster: Redis commands and round trips per entity no worse than one node" \
    "commands $(b_fmt "$rc") x, round trips $(awk -v v="$rr" 'BEGIN { if (v == "n/a" || v == "") print "n/a"; else printf "%.3f", v }') x" "≤ 1.00 x" "$rok" \
    "$([ "$rok" = 1 ] && echo "the cluster's extra is per enqueuer run, not per entity: its CLUSTER SLOTS (section 9)" || echo "section 9 lists the round trips by command")"
  {
    echo "## 9. Redis Cluster: three primaries against one node"
    echo
    echo "Three \`redis-server --cluster-enabled yes\` primaries (no replicas) made by"
    echo "\`redis-cli --cluster create\`, and next to them one plain redis-server; in each"
    echo "repetition the same farm runs on both (the order alternates): $nq queues, $CL_QPP on each"
    echo "primary (their tags chosen with \`CLUSTER KEYSLOT\`), a $CL_N-entity job on each"
    echo "(chunk size 50, $((nq * CL_N)) entities in all), two workers serving all $nq queues"
    echo "(\`--concurrency $CONC\`, mockprov), given \`redis+cluster://\` (two seeds) or \`redis://\`;"
    echo "our programs talk TCP to both. Entities/s = all entities / (last \`completed_at\` -"
    echo "first \`started_at\`). Commands and CPU are \`INFO commandstats\` and \`INFO cpu\`"
    echo "deltas from just before the first enqueue to the last completion, summed over the"
    echo "nodes (the benchmark's own polls and INFO, over each node's unix socket, subtracted;"
    echo "a cluster node's CPU includes its cluster bus). Per primary: its CPU per entity of"
    echo "its own queues, and its share of the three primaries' CPU against a third (1.00 ="
    echo "exactly a third). Ratios are taken within a repetition. Round trips: a separate"
    echo "run of $rtn entities on each, on the same queues (not flushed: each queue had a job"
    echo "before, as in a farm that ran before), with \`MONITOR\` on every node, counting the"
    echo "commands that came over TCP (ours; \`lua\` lines ran inside scripts), plus the"
    echo "commands a node answered with \`MOVED\` or \`ASK\` (\`INFO errorstats\`: a round trip"
    echo "that runs nothing, which \`MONITOR\` does not show)."
    echo "All redis-servers, the workers and mockprov share the same $(nproc) cores."
    echo
    echo "| figure | median | min | max | runs |"
    echo "|---|---|---|---|---|"
    b_row "one node: entities/s" cl.one.eps
    b_row "cluster: entities/s" cl.cl.eps
    b_row "**throughput, cluster / one node**" cl.ratio.eps
    b_row "one node: Redis commands per entity (incl. inside scripts)" cl.one.cmds
    b_row "cluster: Redis commands per entity, all primaries" cl.cl.cmds
    b_row "**commands per entity, cluster / one node**" cl.ratio.cmds
    b_row "one node: redis-server CPU µs per entity" cl.one.cpu
    b_row "cluster: redis-server CPU µs per entity, all primaries" cl.cl.cpu
    b_row "**Redis CPU per entity, cluster / one node**" cl.ratio.cpu
    for k in 0 1 2; do
      b_row "cluster: primary $((k + 1)), CPU µs per entity of its queues" "cl.cl.p$k.cpu"
    done
    for k in 0 1 2; do
      b_row "cluster: primary $((k + 1)), share of the CPU against a third" "cl.cl.p$k.share"
    done
    b_row "**cluster: worst primary's distance from a third**" cl.cl.dev
    b_row "one node: workers' CPU µs per entity" cl.one.wcpu
    b_row "cluster: workers' CPU µs per entity" cl.cl.wcpu
    b_row "cluster: MOVED + ASK the workers followed (their log)" cl.cl.redirs
    b_row "one node: round trips per entity (MONITOR + redirected)" cl.one.rt
    b_row "cluster: round trips per entity, all primaries (MONITOR + redirected)" cl.cl.rt
    b_row "cluster: commands answered MOVED or ASK (errorstats, whole run)" cl.cl.rtrej
    echo "| **round trips per entity, cluster / one node** | $(b_fmt "$rr") | | | |"
    echo "| cluster's extra round trips per job (cluster - one node) | $(b_fmt "$(awk -v a="$(b_med cl.cl.rtjob)" -v b="$(b_med cl.one.rtjob)" 'BEGIN { if (a == "n/a" || b == "n/a") print "n/a"; else print a - b }')") | | | |"
    b_row "one node: commands inside scripts per entity (MONITOR)" cl.one.rtlua
    b_row "cluster: commands inside scripts per entity (MONITOR)" cl.cl.rtlua
    echo
    echo "Round trips of the MONITOR runs by command ($rtn entities each):"
    echo
    echo "| command | one node | per entity | cluster | per entity |"
    echo "|---|---|---|---|---|"
    b_rows_side_by_side "$B_RES/cl.rt.one" "$B_RES/cl.rt.cl"
    echo
    echo "The chunk path (\`BLMOVE\` to take, \`chunk_claim\`, \`chunk_ack\`) costs the same round"
    echo "trips per entity on both, and so do the workers' housekeeping and the enqueuer's"
    echo "calls: a script's first call on a connection is an \`EVAL\` with its text, the later"
    echo "ones \`EVALSHA\`, with no \`SCRIPT\` command, and each command goes straight to its"
    echo "slot's primary by the slot map (no \`MOVED\`). What a cluster adds is per enqueuer"
    echo "run: its \`CLUSTER SLOTS\` (the map), one command, and on a queue's first job the"
    echo "\`SADD farm:queues\` (another slot) and the \`HSET\` that marks the queue registered:"
    echo "two commands more, not in these runs, whose queues had a job before. Over a job of"
    echo "N entities that is the extra per job above divided by N."
    echo
    if [ -s "$B_RES/cl.bycmd.cl" ]; then
      echo "Where the commands and Redis's own time go: \`INFO commandstats\` deltas of the first"
      echo "repetition, per entity (all primaries together for the cluster; \`usec\` is Redis's"
      echo "time inside the command, an EVALSHA's including the commands its script ran, which"
      echo "are listed again under their names). The time inside the commands is about the"
      echo "same on both, within this machine's noise (with three redis-servers, two workers"
      echo "and mockprov on $(nproc) cores a command is often preempted, which its \`usec\` counts),"
      echo "except PUBLISH: a cluster node forwards each message to every other node over the"
      echo "bus. The cluster's extra CPU is mostly outside the commands: reading, parsing and"
      echo "writing, spread over three processes and more connections, so each wake-up"
      echo "carries fewer commands, and the cluster bus itself."
      echo
      echo "| command | one node: calls per entity | µs per entity | cluster: calls per entity | µs per entity |"
      echo "|---|---|---|---|---|"
      b_rows_side_by_side "$B_RES/cl.bycmd.one" "$B_RES/cl.bycmd.cl"
      echo
    fi
    cl_sizing
    echo
    cat "$B_RES/ops-cluster-sizing.md"
    echo
  } >"$B_RES/md/90-cluster.md"
}

# cl_sizing: the sizing rule of docs/operations.md ("Redis Cluster") from
# the figures above, into $B_RES/ops-cluster-sizing.md.
cl_sizing() {
  local per one
  per=$(for k in 0 1 2; do b_med "cl.cl.p$k.cpu"; done | sort -g | tail -1)
  one=$(b_med cl.one.cpu)
  awk -v per="$per" -v one="$one" -v date="$(date -u '+%Y-%m-%d')" -v eps="$(b_med cl.cl.eps)" \
    -v r="$(b_med cl.ratio.eps)" -v np="$(nproc)" -v l0="${CL_LOAD0:-?}" -v l1="${CL_LOAD1:-?}" 'BEGIN {
    if (per == "n/a" || per <= 0) { print "Sizing: no figures (the cluster runs did not complete)."; exit }
    cap = 1e6 / per; half = cap / 2
    printf "**Sizing** (bench/run, section 9 of docs/benchmarks.md, %s): the busiest primary spent %.1f µs\n", date, per
    printf "of CPU per entity of its queues (%.1f µs on one node), and Redis runs commands on one\n", one
    printf "core, so one primary carries at most about %d entities/s with its core fully busy.\n", int(cap / 1000 + 0.5) * 1000
    printf "Plan on half of that, %d entities/s per primary, to leave room for bursts,\n", int(half / 1000 + 0.5) * 1000
    printf "a failover, replication and persistence; spread the queues so each primary gets\n"
    printf "its share (the farm-wide keys add little to one of them). These are for chunks of\n"
    printf "50 and a recipe of one request with one extracted field; more fields mean a bigger\n"
    printf "HSET per entity, smaller chunks more scripts per entity (docs/operations.md, \"Chunk size\").\n\n"
    printf "| entities/s, farm-wide | primaries (each at most half busy) |\n|---|---|\n"
    n = split("10000 50000 100000 200000 500000", t, " ")
    for (i = 1; i <= n; i++) { p = int(t[i] / half); if (p * half < t[i]) p++; if (p < 1) p = 1
      if (p == 1) printf "| %d | 1: one node, no cluster needed |\n", t[i]
      else if (p == 2) printf "| %d | 3 (a cluster'"'"'s least) |\n", t[i]
      else printf "| %d | %d |\n", t[i], p }
    printf "\nThe workers, not Redis, are usually what to add first: a worker spends several\n"
    printf "times Redis'"'"'s CPU per entity (docs/benchmarks.md, sections 1 and 9). On the %d\n", np
    printf "shared cores of the "
    printf "benchmark machine the cluster ran at %d entities/s, %.2f x one node: three\n", eps, r
    printf "primaries there compete with the workers and the provider for the same cores, so\n"
    printf "that ratio says nothing of a cluster on its own hosts. The machine was shared\n"
    printf "(load average %s when the scenario began, %s at its end): CPU per entity grows\n", l0, l1
    printf "with contention, so a primary with a core of its own does better than this.\n" }' >"$B_RES/ops-cluster-sizing.md"
}
