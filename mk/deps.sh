#!/bin/sh
# SPDX-License-Identifier: MIT
# Installs the Debian packages enrichfarm needs when a pkg-config check or a
# command check fails.  Runs apt-get only when something is missing.
set -u
missing=""
need_pkg() { pkg-config --exists "$1" 2>/dev/null || missing="$missing $2"; }
need_cmd() { command -v "$1" >/dev/null 2>&1 || missing="$missing $2"; }
need_cmd pkg-config pkg-config
need_pkg hiredis libhiredis-dev
need_pkg libuv libuv1-dev
need_pkg libcurl libcurl4-openssl-dev
need_pkg libcjson libcjson-dev
need_pkg openssl libssl-dev
# libpq: the PostgreSQL sink (worker/sink.c through lib/ef_pg.c)
need_pkg libpq libpq-dev
need_pkg cmocka libcmocka-dev
need_cmd redis-server redis-server
need_cmd redis-cli redis-tools
need_cmd curl curl
need_cmd openssl openssl
need_cmd ip iproute2
need_cmd python3 python3
need_cmd valgrind valgrind
need_cmd promtool prometheus
need_cmd faketime faketime
# an HTTPS + HTTP/2 provider for tests/integration/test_provider_tls.sh
need_cmd nginx nginx-light
need_cmd openssl openssl
# a PostgreSQL server for tests/integration/test_pg_sink.sh and the demo's
# --postgres (Debian keeps initdb out of PATH, under /usr/lib/postgresql/V/bin)
need_glob() { for f in $1; do [ -x "$f" ] && return 0; done; missing="$missing $2"; }
need_glob '/usr/lib/postgresql/*/bin/initdb' postgresql
# Debian's python3 (not one first on PATH, such as a pyenv shim) with redis-py,
# for the docs' "a job by hand" recipe (tests/integration/test_redis_py.sh)
need_py() { /usr/bin/python3 -c "import $1" 2>/dev/null || missing="$missing $2"; }
need_py redis python3-redis
if [ -n "$missing" ]; then
  echo "deps: installing$missing"
  if [ "$(id -u)" != 0 ]; then SUDO=sudo; else SUDO=; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq || { echo "deps: apt-get update failed" >&2; exit 1; }
  # shellcheck disable=SC2086
  $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null || {
    echo "deps: apt-get install$missing failed" >&2; exit 1; }
fi
exit 0
