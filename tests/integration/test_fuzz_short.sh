#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# ef-test: parallel
# The short fuzz pass of `make test`: builds the libFuzzer targets in
# tests/fuzz/ and runs each from its seed corpus for at most 100000
# executions or 5 seconds (FUZZ_RUNS / FUZZ_SECONDS override), new corpus
# entries going to a temp dir.  One pass per target; "N passed, N failed".
# Skips cleanly ("skip ...", "0 passed, 0 failed") where clang with
# libFuzzer is not installed.  `make fuzz` is the long run.
cd "$(dirname "$0")/../.." || exit 1
tmp=$(mktemp -d /tmp/effuzz.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
FUZZ_SECONDS=${FUZZ_SECONDS:-5} FUZZ_RUNS=${FUZZ_RUNS:-100000} FUZZ_CORPUS_OUT=$tmp \
  BUILD=${BUILD:-build} sh tests/fuzz/run.sh
