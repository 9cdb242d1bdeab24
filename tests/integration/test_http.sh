#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# ef-test: parallel
# The HTTP client (lib/ef_http.c): runs $BUILD/tests/http_check, which serves
# its own tiny HTTP server on 127.0.0.1 inside the client's loop, and counts
# its `ok NAME` / `FAIL NAME: reason` lines.  The last line is
# "N passed, N failed"; the exit status is non-zero when anything failed.
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD:-$ROOT/build}
HELPER="$BUILD/tests/http_check"
TMP=$(mktemp -d /tmp/efhttp.XXXXXX)
trap 'rm -rf "$TMP"' EXIT

if [ ! -x "$HELPER" ]; then
  echo "FAIL http_check: $HELPER not built (make $HELPER)"
  echo "0 passed, 1 failed"
  exit 1
fi

timeout 120 "$HELPER" >"$TMP/out" 2>"$TMP/err"
rc=$?
grep -E '^(ok |FAIL|#)' "$TMP/out"
passed=$(grep -c '^ok ' "$TMP/out")
failed=$(grep -c '^FAIL' "$TMP/out")
if [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ]; then
  # crashed, hung (124) or sanitizer abort: no FAIL line to count
  echo "FAIL http_check: exit status $rc"
  failed=1
fi
if [ "$passed" -eq 0 ] && [ "$failed" -eq 0 ]; then
  echo "FAIL http_check: no results"
  failed=1
fi
if [ "$failed" -ne 0 ] && [ -s "$TMP/err" ]; then
  tail -20 "$TMP/err" | sed 's/^/    /'
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
