#!/bin/sh
# SPDX-License-Identifier: MIT
# Entry point of the test's redis:7-bookworm: redis-server with protected
# mode off (as the official image is built), anything else as given.
if [ "${1:-}" = redis-server ]; then
  shift
  exec redis-server "$@" --protected-mode no
fi
exec "$@"
