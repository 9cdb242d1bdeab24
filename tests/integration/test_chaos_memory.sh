#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# ef-test: parallel
# The memory scenario of test_chaos.sh (a big job with worker and statusd
# RSS sampled every second: flat from 10 % to 90 % of the job, under the
# bound), alone: it measures memory, not time, so it runs in the parallel
# group while the rest of test_chaos runs alone.
EF_CHAOS_ONLY=memory exec bash "$(dirname "$0")/test_chaos.sh"
