#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Runs every test: the cmocka unit tests (build/tests/test_*), then each
# integration script (tests/integration/test_*.sh, tests/mockprov/test_*.sh),
# each of which starts its own redis-server and processes.  Prints one
# closing line "N passed, N failed" summing them all; exits non-zero when
# anything failed.  `tests/run.sh unit|integration` runs one half,
# `tests/run.sh parallel` only the scripts marked parallel (below).
set -u
BUILD=${BUILD:-build}
BIN=${BIN:-bin}
export BUILD BIN
what=${1:-all}
passed=0
failed=0
failed_names=""
outdir=${TEST_OUT:-tests/out}
mkdir -p "$outdir"

add() { passed=$((passed + $1)); failed=$((failed + $2)); }

if [ "$what" = all ] || [ "$what" = unit ]; then
  for t in "$BUILD"/tests/test_*; do
    [ -x "$t" ] || continue
    name=$(basename "$t")
    log="$outdir/$name.log"
    timeout 300 "$t" >"$log" 2>&1
    rc=$?
    p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$log" | tail -1)
    f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$log" | tail -1)
    p=${p:-0}; f=${f:-0}
    if [ $rc -ne 0 ] && [ "$f" = 0 ]; then f=1; fi
    add "$p" "$f"
    if [ "$f" != 0 ]; then
      failed_names="$failed_names $name"; echo "FAIL unit $name (see $log)"; tail -20 "$log"
    else
      echo "ok   unit $name ($p)"
    fi
  done
fi

# one integration script: its log, its exit status and its seconds in
# $outdir/NAME.{log,rc,secs}
run_script() {
  name=$(basename "$1" .sh)
  t0=$(date +%s)
  timeout 900 bash "$1" >"$outdir/$name.log" 2>&1
  echo $? >"$outdir/$name.rc"
  echo $(( $(date +%s) - t0 )) >"$outdir/$name.secs"
}

report_script() {
  name=$(basename "$1" .sh)
  log="$outdir/$name.log"
  rc=$(cat "$outdir/$name.rc" 2>/dev/null || echo 1)
  secs=$(cat "$outdir/$name.secs" 2>/dev/null || echo "?")
  line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -1)
  p=$(echo "$line" | sed -n 's/^\([0-9]*\) passed.*/\1/p'); p=${p:-0}
  f=$(echo "$line" | sed -n 's/.* \([0-9]*\) failed.*/\1/p'); f=${f:-0}
  if [ "$rc" -ne 0 ] && [ "$f" = 0 ]; then f=1; fi
  add "$p" "$f"
  skipped=$(grep -c '^skip ' "$log" 2>/dev/null || true)
  if [ "$f" != 0 ]; then
    failed_names="$failed_names $name"; echo "FAIL integration $name (rc=$rc, $secs s, see $log)"
    grep -E '^(FAIL|not ok)' "$log" | head -20; tail -15 "$log"
  else
    echo "ok   integration $name ($p passed${skipped:+, $skipped skipped}, $secs s)"
  fi
}

# Scripts whose header says "# ef-test: parallel" (no timing bound, no
# network namespace, no fixed port) run EF_TEST_JOBS at a time (default:
# one more than the cores, at most 3: they wait on servers and processes
# as much as they compute, 2 cores run 3 of them in 117 s where 2 take
# 161 s); the others, which measure rates and delays, run alone
# afterwards on an otherwise idle machine.
if [ "$what" = all ] || [ "$what" = integration ] || [ "$what" = parallel ]; then
  jobs=${EF_TEST_JOBS:-$(($(nproc 2>/dev/null || echo 1) + 1))}
  [ "$jobs" -gt 3 ] && jobs=3
  [ "$jobs" -lt 1 ] && jobs=1
  par=""; ser=""
  for t in tests/integration/test_*.sh tests/mockprov/test_*.sh; do
    [ -f "$t" ] || continue
    if grep -q '^# ef-test: parallel' "$t"; then par="$par $t"; else ser="$ser $t"; fi
  done
  running=0
  for t in $par; do
    if [ "$running" -ge "$jobs" ]; then wait -n; running=$((running - 1)); fi
    run_script "$t" &
    running=$((running + 1))
  done
  wait
  for t in $par; do report_script "$t"; done
  [ "$what" = parallel ] && ser=""
  for t in $ser; do run_script "$t"; report_script "$t"; done
fi

[ -z "$failed_names" ] || echo "failed:$failed_names"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
