#!/bin/sh
# SPDX-License-Identifier: MIT
# Builds (tests/fuzz/build.sh) and runs every libFuzzer target once, each
# for FUZZ_SECONDS seconds (default 60) or FUZZ_RUNS executions, whichever
# comes first (FUZZ_RUNS=0: no cap).  Seeds come from tests/fuzz/corpus/NAME/
# (read only); new corpus entries go to FUZZ_CORPUS_OUT/NAME (default
# $BUILD/fuzz/corpus, outside git), crashes to $BUILD/fuzz/artifacts/.
# FUZZ_TARGETS="http input" runs some of them; FUZZ_ARGS adds libFuzzer
# flags.  Prints "ok fuzz NAME: N executions in S s" per target and a
# closing "N passed, N failed";
# "skip" and "0 passed, 0 failed" (exit 0) where clang/libFuzzer is missing.
set -u
BUILD=${BUILD:-build}
FUZZ_SECONDS=${FUZZ_SECONDS:-60}
FUZZ_RUNS=${FUZZ_RUNS:-0}
FUZZ_ARGS=${FUZZ_ARGS:-}
cd "$(dirname "$0")/../.." || exit 1
out="$BUILD/fuzz"
corpus_out=${FUZZ_CORPUS_OUT:-$out/corpus}

sh tests/fuzz/build.sh
case $? in
0) ;;
2) echo "skip fuzz: clang with libFuzzer is not available"; echo "0 passed, 0 failed"; exit 0 ;;
*) echo "FAIL fuzz: build"; echo "0 passed, 1 failed"; exit 1 ;;
esac

targets=${FUZZ_TARGETS:-$(for f in tests/fuzz/fuzz_*.c; do basename "$f" .c | sed 's/^fuzz_//'; done)}
passed=0
failed=0
mkdir -p "$out/artifacts" "$out/logs"
for t in $targets; do
  bin="$out/fuzz_$t"
  log="$out/logs/$t.log"
  mkdir -p "$corpus_out/$t"
  dict=""
  [ -f "tests/fuzz/$t.dict" ] && dict="-dict=tests/fuzz/$t.dict"
  runs=""
  [ "$FUZZ_RUNS" != 0 ] && runs="-runs=$FUZZ_RUNS"
  start=$(date +%s.%N)
  # shellcheck disable=SC2086
  "$bin" -max_total_time="$FUZZ_SECONDS" $runs $dict -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$out/artifacts/$t-" $FUZZ_ARGS \
    "$corpus_out/$t" "tests/fuzz/corpus/$t" >"$log" 2>&1
  rc=$?
  end=$(date +%s.%N)
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  secs=$(echo "$start $end" | awk '{printf "%.1f", $2 - $1}')
  if [ $rc -eq 0 ]; then
    passed=$((passed + 1))
    echo "ok fuzz $t: ${execs:-?} executions in $secs s"
  else
    failed=$((failed + 1))
    echo "FAIL fuzz $t: exit $rc after ${execs:-?} executions (log $log)"
    grep -E 'ERROR|SUMMARY|assert|Test unit written' "$log" | head -5
  fi
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
