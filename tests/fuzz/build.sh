#!/bin/sh
# SPDX-License-Identifier: MIT
# Builds the libFuzzer targets (tests/fuzz/fuzz_*.c) with clang into
# $BUILD/fuzz/, each with the library sources it needs compiled in (no
# program archive, no Redis, no network).  Exits 2 when clang or libFuzzer
# is not available, so callers can skip; 1 when a target fails to compile.
set -u
BUILD=${BUILD:-build}
CLANG=${CLANG:-clang}
out="$BUILD/fuzz"
cd "$(dirname "$0")/../.." || exit 1

command -v "$CLANG" >/dev/null 2>&1 || { echo "fuzz: no $CLANG" >&2; exit 2; }
mkdir -p "$out"
probe="$out/.probe.c"
echo 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { (void)d; (void)n; return 0; }' >"$probe"
if ! "$CLANG" -fsanitize=fuzzer,address,undefined "$probe" -o "$out/.probe" >/dev/null 2>&1; then
  echo "fuzz: $CLANG cannot link -fsanitize=fuzzer (apt-get install clang libclang-rt-dev)" >&2
  exit 2
fi
rm -f "$probe" "$out/.probe"

CJSON_CFLAGS=$(pkg-config --cflags libcjson 2>/dev/null)
CJSON_LIBS=$(pkg-config --libs libcjson 2>/dev/null || echo -lcjson)
FLAGS="-std=c11 -D_GNU_SOURCE -g -O1 -fno-omit-frame-pointer \
  -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
  -Wall -Wextra -Wno-unused-parameter -Ilib -Istatusd -I$BUILD/gen $CJSON_CFLAGS"
COMMON="lib/ef_common.c lib/ef_text.c"

# target: its sources
srcs() {
  case "$1" in
  http) echo "statusd/http.c lib/ef_text.c lib/ef_common.c" ;;
  judge | recipes | template) echo "lib/ef_recipe.c lib/ef_batch.c lib/ef_notify.c lib/ef_sink.c lib/ef_job.c $COMMON" ;;
  input) echo "lib/ef_input.c $COMMON" ;;
  esac
}

rc=0
for f in tests/fuzz/fuzz_*.c; do
  name=$(basename "$f" .c)
  t=${name#fuzz_}
  bin="$out/$name"
  # rebuild only when a source is newer than the binary
  stale=0
  for s in "$f" $(srcs "$t") lib/*.h statusd/http.h; do
    # shellcheck disable=SC3013 # dash and bash both have -nt
    [ "$s" -nt "$bin" ] && stale=1
  done
  [ -x "$bin" ] && [ $stale = 0 ] && continue
  echo "  FUZZ  $bin"
  # shellcheck disable=SC2046,SC2086
  if ! "$CLANG" $FLAGS -o "$bin" "$f" $(srcs "$t") $CJSON_LIBS -lcrypto -lm; then
    echo "fuzz: building $name failed" >&2
    rc=1
  fi
done
exit $rc
