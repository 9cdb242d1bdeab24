#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The long form of the chaos tests (`make soak`): the scenarios of
# tests/integration/test_chaos.sh at soak size (EF_CHAOS_PROFILE=soak):
#   crash      100k entities, 4 workers, a random one SIGKILLed every 2 s
#   stall      5 rounds of SIGSTOP past the visibility timeout, then SIGCONT
#   partition  a worker cut off from Redis for 30 s (an enqueuer too)
#   redis      3 SIGKILLs of Redis per AOF mode through a 40k job; 30 s down
#   provider   every provider fault, 5000 entities with all of them at once
#   memory     1M entities with worker and statusd RSS sampled every second
# About 12 minutes on 2 CPUs.  Arguments name a subset (`tests/soak/run.sh crash
# memory`).  Every log of the run and a figures table (the numbers
# docs/reliability.md quotes) land in tests/out/soak/; the closing line is
# "N passed, N failed" and the exit status says whether all passed.
set -u
cd "$(dirname "$0")/../.." || exit 1
out=${SOAK_OUT:-tests/out/soak}
rm -rf "$out"
mkdir -p "$out"
export EF_CHAOS_PROFILE=soak EF_CHAOS_LOGS="$PWD/$out/logs" EF_CHAOS_ONLY="$*"
echo "soak: running the chaos scenarios at soak size${*:+ ($*)}; logs in $out/"
t0=$SECONDS
timeout 3600 bash tests/integration/test_chaos.sh 2>&1 | tee "$out/chaos.log" | grep --line-buffered -E '^(FAIL|skip|info|# ----)'
rc=${PIPESTATUS[0]}
{
  echo "# soak run $(date -u +%FT%TZ) on $(uname -n) ($(nproc) CPUs), $((SECONDS - t0)) s"
  echo
  echo "| figure | value |"
  echo "|---|---|"
  sed -n 's/^figure: \(.*\) = \(.*\)$/| \1 | \2 |/p' "$out/chaos.log"
} >"$out/figures.md"
cat "$out/figures.md"
line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$out/chaos.log" | tail -1)
echo "${line:-0 passed, 1 failed}"
[ "$rc" -eq 0 ] && [ -n "$line" ]
