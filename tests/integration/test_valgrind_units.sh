#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# ef-test: parallel
# Runs every cmocka unit test under valgrind memcheck: no invalid access,
# no use of uninitialised memory, no definite or indirect leak.  Skipped in
# sanitizer builds (ASan and valgrind do not mix) and where valgrind is
# missing.
source "$(dirname "$0")/lib.sh"
if [ "${SAN:-0}" = 1 ]; then skip "valgrind" "sanitizer build"; ef_finish; fi
if ! command -v valgrind >/dev/null 2>&1; then skip "valgrind" "valgrind is not installed"; ef_finish; fi
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for t in "$BUILD"/tests/test_*; do
  [ -x "$t" ] || continue
  name=$(basename "$t")
  if timeout 600 valgrind --error-exitcode=9 --leak-check=full --errors-for-leak-kinds=definite,indirect \
       -q "$t" >"$out/$name.log" 2>&1; then
    ok "memcheck clean: $name"
  else
    fail "memcheck: $name" "$(grep -E 'Invalid|uninitialised|definitely|indirectly|FAILED' "$out/$name.log" | head -5)"
  fi
done
ef_finish
