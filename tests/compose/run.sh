#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# `make compose-test`: docker-compose.yml and the Dockerfile run for real.
#
# Installs what is missing (Debian 12: docker.io, docker-compose 1.29,
# mmdebstrap), starts a private containerd and dockerd (--iptables=false
# --ip-forward=false, no default bridge, its own data root, exec root, unix
# sockets, containerd namespace and cgroup parent under a temp dir), makes the base images without
# a registry (mmdebstrap --variant=minbase bookworm from the host's apt
# mirror -> debian:bookworm and debian:bookworm-slim; redis:7-bookworm from
# tests/compose/redis.Dockerfile), builds that and the farm's image at the
# same time (BuildKit, host networking) and runs the stack under a private
# project name with three workers, then again with the sentinel profile.
# It asserts what a container deployment relies on: the sample job's counts
# equal the mock's truth through a worker SIGKILLed and Redis restarted
# mid-job; /health, /jobs, /workers through the published port;
# a POST refused by the read-only statusd; `docker-compose down` drains
# every worker to exit 0 within its grace period; the runtime image holds
# no compiler and runs as a non-root user; on the sentinel profile
# (redis+sentinel://, a replica, three sentinels) the sample job's counts
# equal the truth through the primary's container SIGKILLed mid-job, and
# every program follows the promoted replica without a restart.  On exit
# it stops what it started, by PID, removes its data root, and compares
# the host's iptables rules, links, mounts, cgroups and sysctls with what
# they were before.
#
# Skips (exit 0, says why) where dockerd cannot run: not Linux, not root,
# the packages cannot be installed, or dockerd does not come up.
# Environment: EF_COMPOSE_CACHE (default /var/cache/enrichfarm-compose, the
# base rootfs tarball, so a second run is faster), EF_COMPOSE_KEEP=1 (keep
# the temp dir, for debugging), EF_COMPOSE_BUILDKIT=0 (the classic builder).
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
CACHE=${EF_COMPOSE_CACHE:-/var/cache/enrichfarm-compose}
T0=$SECONDS
PASSED=0
FAILED=0
ok() { PASSED=$((PASSED + 1)); echo "ok $1"; }
fail() { FAILED=$((FAILED + 1)); echo "FAIL $1: ${2:-}"; }
eq() { if [ "$2" == "$3" ]; then ok "$1"; else fail "$1" "expected '$2', got '$3'"; fi; }
contains() { case "$3" in *"$2"*) ok "$1" ;; *) fail "$1" "'$2' not found in: $(printf '%s' "$3" | head -c 600)" ;; esac; }
say() { echo "== $* ($((SECONDS - T0)) s)"; }
SKIPPED=0
TRAPPED=0
skip_all() {   # after the trap is set, cleanup still runs and checks the host
  echo "skip compose test: $*"
  SKIPPED=1
  [ $TRAPPED = 1 ] || echo "0 passed, 0 failed"
  exit 0
}
# wait_for SECONDS COMMAND: polls every 0.2 s; true once the command succeeds
wait_for() {
  local end=$((SECONDS + $1))
  while [ $SECONDS -lt $end ]; do
    if eval "$2" >/dev/null 2>&1; then return 0; fi
    sleep 0.2
  done
  eval "$2" >/dev/null 2>&1
}

[ "$(uname -s)" = Linux ] || skip_all "dockerd needs Linux"
[ "$(id -u)" = 0 ] || skip_all "a private dockerd needs root (run as root: sudo make compose-test)"

DOCKER=/usr/bin/docker   # Debian's CLI; /usr/local/bin/docker may be another one
DOCKERD=/usr/sbin/dockerd
COMPOSE=/usr/bin/docker-compose
CONTAINERD=/usr/bin/containerd

# ---- what is missing, from Debian ----
missing=""
[ -x $DOCKER ] && [ -x $DOCKERD ] || missing="$missing docker.io"
[ -x $CONTAINERD ] || missing="$missing containerd"
[ -x $COMPOSE ] || missing="$missing docker-compose"
command -v mmdebstrap >/dev/null 2>&1 || missing="$missing mmdebstrap"
command -v curl >/dev/null 2>&1 || missing="$missing curl"
command -v python3 >/dev/null 2>&1 || missing="$missing python3"
command -v ip >/dev/null 2>&1 || missing="$missing iproute2"
if [ -n "$missing" ]; then
  command -v apt-get >/dev/null 2>&1 || skip_all "missing$missing and no apt-get to install them"
  say "installing$missing"
  # no service may start from the package scripts (a system dockerd would
  # set up iptables): a policy-rc.d refusing every start, for the install only
  prc=/usr/sbin/policy-rc.d
  made_prc=0
  if [ ! -e $prc ]; then printf '#!/bin/sh\nexit 101\n' >$prc && chmod 755 $prc && made_prc=1; fi
  export DEBIAN_FRONTEND=noninteractive
  # shellcheck disable=SC2086
  if ! apt-get -o DPkg::Lock::Timeout=120 install -y -qq --no-install-recommends $missing >/dev/null 2>&1; then
    apt-get -o DPkg::Lock::Timeout=120 update -qq >/dev/null 2>&1
    # shellcheck disable=SC2086
    apt-get -o DPkg::Lock::Timeout=120 install -y -qq --no-install-recommends $missing >/dev/null 2>&1 ||
      { [ $made_prc = 1 ] && rm -f $prc; skip_all "apt-get install$missing failed"; }
  fi
  [ $made_prc = 1 ] && rm -f $prc
  # a system docker/containerd the packages may have started anyway is the
  # packages' own business: this test only ever talks to its own daemon
fi
for t in $DOCKER $DOCKERD $COMPOSE $CONTAINERD; do [ -x "$t" ] || skip_all "$t not installed"; done

# the apt mirror the host uses, for the rootfs (deb822 first, then one-line)
MIRROR=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null)
if [ -z "$MIRROR" ]; then
  MIRROR=$(awk '$1 == "deb" && $3 ~ /^bookworm$/ {print $2; exit}' \
    /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null)
fi
MIRROR=${MIRROR:-http://deb.debian.org/debian}

# ---- the host, before ----
TMP=$(mktemp -d /tmp/efct.XXXXXX)
chmod 711 "$TMP"
PROJ=efct$$
CGPARENT=$PROJ
snapshot() {   # snapshot DIR: what the test must leave as it found it
  local d=$1
  mkdir -p "$d"
  { iptables-save 2>/dev/null; ip6tables-save 2>/dev/null; } |
    grep -v '^#' | sed 's/\[[0-9]*:[0-9]*\]//' >"$d/iptables"
  if command -v nft >/dev/null 2>&1; then nft list ruleset 2>/dev/null >"$d/nft"; else : >"$d/nft"; fi
  # the integration tests' own namespaces and veth ends (ef$$..., v$$..,
  # e$$.., b$$..) come and go when they run at the same time: left out
  ip -o link show | awk -F': ' '{print $2}' | sed 's/@.*//' | grep -Ev '^[veb][0-9]+' | sort >"$d/links"
  ip -o link show type bridge | awk -F': ' '{print $2}' | sort >"$d/bridges"
  awk '{print $5, $9, $10}' /proc/self/mountinfo | grep -Ev '^/run/netns/ef[0-9]' | sort >"$d/mounts"
  for k in net.ipv4.ip_forward net.ipv4.conf.all.forwarding net.ipv4.conf.default.forwarding \
           net.ipv6.conf.all.forwarding net.ipv6.conf.default.forwarding \
           net.ipv4.conf.all.route_localnet net.bridge.bridge-nf-call-iptables \
           net.bridge.bridge-nf-call-ip6tables net.bridge.bridge-nf-call-arptables \
           kernel.keys.root_maxkeys kernel.keys.root_maxbytes fs.may_detach_mounts \
           vm.overcommit_memory net.core.somaxconn; do
    v=$(sysctl -n "$k" 2>/dev/null) && echo "$k = $v"
  done >"$d/sysctls"
  for c in /sys/fs/cgroup/*/ /sys/fs/cgroup/; do
    [ -d "$c" ] && find "$c" -mindepth 1 -maxdepth 1 -type d 2>/dev/null
  done | sort -u >"$d/cgroups"
  ls -d /run/* /var/run/* /etc/docker /var/lib/docker /var/lib/containerd /run/containerd \
    /run/docker 2>/dev/null | sort -u >"$d/paths"
}
snapshot "$TMP/before"

# ---- cleanup: everything started, by PID; the host put back; compared ----
DPID=""
CPID=""
LOGPIDS=""
# every docker and docker-compose call names our daemon's socket: never the
# system's /var/run/docker.sock, even from the cleanup
SOCK="$TMP/docker.sock"
export DOCKER_HOST="unix://$SOCK" DOCKER_CONFIG="$TMP/cfg" COMPOSE_HTTP_TIMEOUT=120
unset DOCKER_CONTEXT DOCKER_TLS_VERIFY DOCKER_CERT_PATH COMPOSE_FILE COMPOSE_PROJECT_NAME
DOCKER="$DOCKER -H unix://$SOCK"
DC=("$COMPOSE" -H "unix://$SOCK" -p "$PROJ" -f "$ROOT/docker-compose.yml")
# ours: every process whose command line names our temp dir (dockerd's
# containerd and shims, docker logs followers), but this shell
our_pids() {
  local f p
  for f in /proc/[0-9]*/cmdline; do
    p=${f#/proc/}; p=${p%/cmdline}
    [ "$p" = $$ ] && continue
    grep -qsaF -- "$TMP" "$f" && echo "$p"
  done
}
cleanup() {
  trap - EXIT INT TERM
  set +e
  say "cleaning up"
  if [ -n "$DPID" ] && kill -0 "$DPID" 2>/dev/null; then
    timeout 120 "${DC[@]}" --profile sentinel down -v -t 10 >>"$TMP/cleanup.log" 2>&1
    ids=$(timeout 20 $DOCKER ps -aq 2>/dev/null)
    [ -n "$ids" ] && timeout 60 $DOCKER rm -f -v $ids >>"$TMP/cleanup.log" 2>&1
    kill -TERM "$DPID" 2>/dev/null
    wait_for 30 "! kill -0 $DPID" || kill -KILL "$DPID" 2>/dev/null
    wait "$DPID" 2>/dev/null
  fi
  if [ -n "$CPID" ] && kill -0 "$CPID" 2>/dev/null; then
    kill -TERM "$CPID" 2>/dev/null
    wait_for 15 "! kill -0 $CPID" || kill -KILL "$CPID" 2>/dev/null
    wait "$CPID" 2>/dev/null
  fi
  for p in $LOGPIDS; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  # any process of ours still running (containerd, shims): its command line
  # names our temp dir; stopped by PID
  for pass in TERM KILL; do
    left=$(our_pids)
    [ -n "$left" ] || break
    for p in $left; do kill -"$pass" "$p" 2>/dev/null; done
    sleep 1
  done
  # mounts under our temp dir, deepest first
  awk -v t="$TMP" 'index($5, t) == 1 {print $5}' /proc/self/mountinfo | sort -r |
    while read -r m; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null; done
  # links docker made (bridges of the compose network, veth ends)
  snapshot "$TMP/after"
  comm -13 "$TMP/before/links" "$TMP/after/links" | while read -r l; do
    case "$l" in br-*|docker0|veth*) ip link del "$l" 2>/dev/null ;; esac
  done
  # cgroups under our parent, deepest first
  for c in /sys/fs/cgroup/*/"$CGPARENT" /sys/fs/cgroup/"$CGPARENT"; do
    [ -d "$c" ] && find "$c" -depth -type d -exec rmdir {} \; 2>/dev/null
  done
  # sysctls the daemon changed go back
  while IFS= read -r line; do
    k=${line%% = *}; v=${line#* = }
    [ "$(sysctl -n "$k" 2>/dev/null)" = "$v" ] || sysctl -q -w "$k=$v" >/dev/null 2>&1
  done <"$TMP/before/sysctls"
  # paths the daemon made outside our temp dir
  comm -13 "$TMP/before/paths" <(ls -d /run/* /var/run/* /etc/docker /var/lib/docker \
    /var/lib/containerd /run/containerd /run/docker 2>/dev/null | sort -u) |
    while read -r p; do
      # only empty directories go: dockerd's plugin dir (/run/docker/plugins,
      # made whatever its exec root), the shims' socket dir (containerd 1.6
      # puts it in /run/containerd/s whatever its root); anything with
      # content there is not ours and stays (and the comparison says so)
      case "$p" in
        /run/docker|/var/run/docker) rmdir "$p/plugins" "$p" 2>/dev/null ;;
        /run/containerd|/var/run/containerd) rmdir "$p/s" "$p" 2>/dev/null ;;
        # runc's default root: a runc called without --root during the run
        # (seen with the BuildKit builds) leaves it, empty
        /run/runc|/var/run/runc) rmdir "$p" 2>/dev/null ;;
        /etc/docker) rmdir "$p" 2>/dev/null ;;
      esac
    done
  rm -rf "$TMP/after"
  snapshot "$TMP/after"
  for f in iptables nft links bridges mounts sysctls cgroups paths; do
    if cmp -s "$TMP/before/$f" "$TMP/after/$f"; then
      ok "host: $f as before the test"
    else
      fail "host: $f as before the test" "$(diff "$TMP/before/$f" "$TMP/after/$f" | head -10 | tr '\n' ' ')"
    fi
  done
  left=$(our_pids | tr '\n' ' ')
  eq "host: no process of the test left" "" "$left"
  if [ "${EF_COMPOSE_KEEP:-0}" = 1 ]; then
    echo "kept $TMP"
  else
    rm -rf "$TMP" 2>/dev/null || { sleep 2; rm -rf "$TMP"; }
    eq "host: data root removed" no "$([ -e "$TMP" ] && echo yes || echo no)"
  fi
  say "done"
  echo "$PASSED passed, $FAILED failed"
  [ $SKIPPED = 1 ] && echo "(skipped: see above)"
  [ "$FAILED" -eq 0 ]
  exit
}
trap cleanup EXIT
TRAPPED=1
trap 'exit 1' INT TERM

# ---- a private containerd and dockerd ----
# our own containerd (dockerd would use a system one whose socket it finds
# at /run/containerd/containerd.sock), its root, state and sockets ours
mkdir -p "$TMP/data" "$TMP/exec" "$TMP/cfg" "$TMP/ctrd"
CSOCK="$TMP/ctrd/containerd.sock"
cat >"$TMP/ctrd/config.toml" <<EOF
version = 2
root = "$TMP/ctrd/root"
state = "$TMP/ctrd/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$CSOCK"
[ttrpc]
  address = "$CSOCK.ttrpc"
[debug]
  address = "$TMP/ctrd/debug.sock"
EOF
say "starting containerd and dockerd"
$CONTAINERD --config "$TMP/ctrd/config.toml" >"$TMP/containerd.log" 2>&1 &
CPID=$!
wait_for 20 "! kill -0 $CPID || test -S '$CSOCK'"
if ! [ -S "$CSOCK" ]; then
  echo "containerd did not come up:"; tail -15 "$TMP/containerd.log"
  skip_all "containerd cannot run here (log above)"
fi
cat >"$TMP/daemon.json" <<EOF
{"iptables": false, "ip6tables": false, "ip-forward": false, "ip-masq": false,
 "bridge": "none", "cgroup-parent": "/$CGPARENT", "log-driver": "json-file",
 "userland-proxy": true, "live-restore": false}
EOF
$DOCKERD --config-file "$TMP/daemon.json" --data-root "$TMP/data" --exec-root "$TMP/exec" \
  --containerd "$CSOCK" --containerd-namespace "$PROJ" --containerd-plugins-namespace "${PROJ}p" \
  --pidfile "$TMP/dockerd.pid" -H "unix://$SOCK" >"$TMP/dockerd.log" 2>&1 &
DPID=$!
wait_for 40 "! kill -0 $DPID || $DOCKER version --format '{{.Server.Version}}'"
if ! $DOCKER version --format '{{.Server.Version}}' >/dev/null 2>&1; then
  echo "dockerd did not come up:"; tail -15 "$TMP/dockerd.log"
  skip_all "dockerd cannot run here (log above)"
fi
ok "dockerd: a private daemon, no iptables, no ip forwarding ($($DOCKER version --format '{{.Server.Version}}'))"

# ---- base images, without a registry ----
# debian:bookworm from mmdebstrap --variant=minbase (debootstrap's package
# set, /usr merged, in half the time: apt fetches in parallel and it writes
# the tarball itself; debootstrap where mmdebstrap is missing), cached under
# $CACHE keyed by the mirror; debian:bookworm-slim the same image.  Like
# Debian's own images: apt keeps no .deb, fetches no translations, keeps its
# lists gzipped (their /etc/apt/apt.conf.d/docker-*), dpkg unpacks without
# an fsync per file (/etc/dpkg/dpkg.cfg.d/docker-apt-speedup: the builds'
# installs too); and no package cache, lists, host name or resolver of this
# machine.  The file name holds the recipe's version (-2): a tarball of an
# older recipe is not used, and goes when this one is made.
mkdir -p "$CACHE"
key=$(printf '%s' "$MIRROR" | md5sum | cut -c1-12)
ROOTFS="$CACHE/bookworm-minbase-2-$key.tar"
cat >"$TMP/rootfs-fix.sh" <<'EOF'
r=$1
d=$r/etc/apt/apt.conf.d
printf '%s\n' \
  'DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };' \
  'APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };' \
  'Dir::Cache::pkgcache ""; Dir::Cache::srcpkgcache "";' >"$d/docker-clean"
echo 'Acquire::Languages "none";' >"$d/docker-no-languages"
echo 'Acquire::GzipIndexes "true";' >"$d/docker-gzip-indexes"
echo 'Apt::AutoRemove::SuggestsImportant "false";' >"$d/docker-autoremove-suggests"
echo force-unsafe-io >"$r/etc/dpkg/dpkg.cfg.d/docker-apt-speedup"
rm -f "$r/etc/dpkg/dpkg.cfg.d/99mmdebstrap"
rm -rf "$r/var/cache/apt/archives/"*.deb "$r/var/lib/apt/lists/"* "$r/etc/hostname" "$r/etc/resolv.conf"
EOF
if [ ! -s "$ROOTFS" ]; then
  if command -v mmdebstrap >/dev/null 2>&1; then
    say "mmdebstrap --variant=minbase bookworm from $MIRROR"
    mmdebstrap --variant=minbase --mode=root --format=tar --dpkgopt=force-unsafe-io \
      --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
      --customize-hook="sh $TMP/rootfs-fix.sh \"\$1\"" \
      bookworm "$ROOTFS.part$$" "$MIRROR" >"$TMP/rootfs.log" 2>&1 &&
      mv "$ROOTFS.part$$" "$ROOTFS"
  elif command -v debootstrap >/dev/null 2>&1; then
    say "debootstrap --variant=minbase bookworm from $MIRROR"
    debootstrap --variant=minbase bookworm "$TMP/rootfs" "$MIRROR" >"$TMP/rootfs.log" 2>&1 &&
      sh "$TMP/rootfs-fix.sh" "$TMP/rootfs" &&
      tar -C "$TMP/rootfs" --numeric-owner -cf "$ROOTFS.part$$" . && mv "$ROOTFS.part$$" "$ROOTFS"
    rm -rf "$TMP/rootfs"
  fi
  rm -f "$ROOTFS.part$$"
  [ -s "$ROOTFS" ] && find "$CACHE" -maxdepth 1 -name 'bookworm-minbase-*.tar' ! -name "${ROOTFS##*/}" -delete
  if [ ! -s "$ROOTFS" ]; then
    fail "base: a bookworm rootfs from $MIRROR (mmdebstrap or debootstrap)" "$(tail -5 "$TMP/rootfs.log" 2>&1)"
    exit 1
  fi
fi
say "importing the base images"
if $DOCKER import -c 'CMD ["bash"]' "$ROOTFS" debian:bookworm >"$TMP/import.log" 2>&1 &&
   $DOCKER tag debian:bookworm debian:bookworm-slim; then
  ok "base: debian:bookworm and debian:bookworm-slim, minbase from $MIRROR"
else
  fail "base: debian:bookworm imported" "$(tail -3 "$TMP/import.log")"
  exit 1
fi
# builds: host networking (the daemon has no bridge), at most two make jobs,
# BuildKit (the Dockerfile's two stages install their packages at the same
# time; EF_COMPOSE_BUILDKIT=0 for the classic builder), and the two images
# at the same time: most of a build is waiting for the mirror
export DOCKER_BUILDKIT=${EF_COMPOSE_BUILDKIT:-1}
# shellcheck disable=SC2206 # DOCKER is the binary and its -H, split on purpose
BUILD=($DOCKER build --network host)
[ "$DOCKER_BUILDKIT" = 1 ] && BUILD+=(--progress plain)
say "building redis:7-bookworm and enrichfarm:latest (the Dockerfile)"
"${BUILD[@]}" -t redis:7-bookworm -f "$ROOT/tests/compose/redis.Dockerfile" \
  "$ROOT/tests/compose" >"$TMP/build-redis.log" 2>&1 &
RBUILD=$!
"${BUILD[@]}" --build-arg MAKE_JOBS=2 -t enrichfarm:latest "$ROOT" >"$TMP/build.log" 2>&1
brc=$?
wait $RBUILD
rrc=$?
[ $rrc = 0 ] && ok "base: redis:7-bookworm built from Debian's redis-server" ||
  fail "base: redis:7-bookworm built" "$(tail -5 "$TMP/build-redis.log")"
[ $brc = 0 ] && ok "image: the Dockerfile builds" ||
  fail "image: the Dockerfile builds" "$(tail -10 "$TMP/build.log")"
[ $rrc = 0 ] && [ $brc = 0 ] || exit 1
# where a build's time goes (BuildKit's plain progress: a DONE per step)
if [ "$DOCKER_BUILDKIT" = 1 ]; then
  for l in build-redis build; do
    grep -E '^#[0-9]+ \[' "$TMP/$l.log" | sed 's/^#//' | sort -un -k1,1 |
      while read -r n step; do
        t=$(grep -E "^#$n DONE [0-9.]+s" "$TMP/$l.log" | tail -1 | awk '{print $3}')
        case "$step" in *" RUN "*|*" COPY "*|*" FROM "*) echo "  $l: ${t:-cached} ${step:0:100}" ;; esac
      done
  done
fi
say "built"

# ---- the stack ----
STATUSD_PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# a SIGKILLed worker's chunk comes back when its lease runs out: 10 s, not
# the file's default 60 s, keeps the test short
WORKER_VISIBILITY_TIMEOUT=10
export STATUSD_PORT WORKER_VISIBILITY_TIMEOUT
URL="http://127.0.0.1:$STATUSD_PORT"
# jget PATH EXPR: GET through the published port, EXPR on the JSON as d
jget() {
  curl -s -m 5 "$URL$1" | python3 -c 'import json, sys
try:
    d = json.load(sys.stdin)
    print(eval(sys.argv[1]))
except Exception:
    print("")' "$2" 2>/dev/null
}
ctr() {   # ctr SERVICE: its container ids
  $DOCKER ps -aq --filter "label=com.docker.compose.project=$PROJ" \
    --filter "label=com.docker.compose.service=$1"
}
say "docker-compose -p $PROJ up -d --no-build --scale worker=3 (statusd on 127.0.0.1:$STATUSD_PORT)"
if "${DC[@]}" up -d --no-build --scale worker=3 >"$TMP/up.log" 2>&1; then
  ok "compose: up -d --scale worker=3"
else
  fail "compose: up -d --scale worker=3" "$(tail -5 "$TMP/up.log")"
  exit 1
fi
eq "compose: three worker containers" 3 "$(ctr worker | wc -l)"
if wait_for 60 "curl -sf -m 2 '$URL/health'"; then
  body=$(curl -s -m 5 "$URL/health")
  contains "statusd: /health through the published port" '"redis":"up"' "$body"
else
  fail "statusd: /health through the published port" "no answer on $URL: $("${DC[@]}" logs --no-color statusd 2>&1 | tail -3)"
  exit 1
fi
wait_for 30 "[ \"\$(jget /workers 'sum(1 for w in d[\"workers\"] if w.get(\"alive\"))')\" = 3 ]"
eq "statusd: /workers lists 3 alive" 3 "$(jget /workers 'sum(1 for w in d["workers"] if w.get("alive"))')"
wait_for 60 "[ -n \"\$(jget /jobs 'd[\"jobs\"][0][\"id\"]')\" ]"
JOB=$(jget /jobs 'd["jobs"][0]["id"]')
if [ -n "$JOB" ]; then ok "statusd: /jobs lists the sample job ($JOB)"; else
  fail "statusd: /jobs lists the sample job" "$("${DC[@]}" logs --no-color enqueue 2>&1 | tail -5)"; exit 1; fi
job() { jget "/jobs/$JOB" "$1"; }

# mid-job: a POST the read-only statusd refuses, one worker SIGKILLed, Redis restarted
wait_for 60 "[ \"\$(job 'd[\"processed\"] >= 20')\" = True ]"
code=$(curl -s -m 5 -o /dev/null -w '%{http_code}' -X POST "$URL/jobs/$JOB/pause")
eq "statusd: POST /jobs/ID/pause refused (read-only)" 403 "$code"
W1=$(ctr worker | head -1)
at=$(job 'd["status"] + " " + str(d["processed"]) + "/" + str(d["total"])')
$DOCKER kill -s KILL "$W1" >/dev/null 2>&1
code=$($DOCKER inspect -f '{{.State.ExitCode}}' "$W1")
case "$at" in
  running*) ok "fault: a worker container SIGKILLed mid-job (at $at, exit $code)" ;;
  *) fail "fault: a worker container SIGKILLed mid-job" "job was '$at'" ;;
esac
p0=${at#* }; p0=${p0%/*}
wait_for 30 "[ \"\$(job 'd[\"processed\"] > ${p0:-0}')\" = True ]"
at=$(job 'd["status"] + " " + str(d["processed"]) + "/" + str(d["total"])')
if "${DC[@]}" restart -t 10 redis >"$TMP/restart.log" 2>&1; then
  case "$at" in
    running*) ok "fault: the redis container restarted mid-job (at $at)" ;;
    *) fail "fault: the redis container restarted mid-job" "job was '$at'" ;;
  esac
else
  fail "fault: the redis container restarted" "$(tail -3 "$TMP/restart.log")"
fi
eq "redis: AOF on after the restart" "appendonly yes" \
  "$("${DC[@]}" exec -T redis redis-cli CONFIG GET appendonly 2>/dev/null | tr -d '\r' | paste -sd' ')"

# ---- the runtime image (while the killed worker's lease runs out) ----
ucfg=$($DOCKER image inspect -f '{{.Config.User}}' enrichfarm:latest 2>/dev/null)
uid=$($DOCKER run --rm --network none enrichfarm:latest id -u 2>&1)
if [ -n "$ucfg" ] && [ "$uid" != 0 ] && [ "$uid" -gt 0 ] 2>/dev/null; then
  ok "image: runs as a non-root user ($ucfg, uid $uid)"
else
  fail "image: runs as a non-root user" "USER '$ucfg', id -u '$uid'"
fi
tools=$($DOCKER run --rm --network none --entrypoint sh enrichfarm:latest -c \
  'for t in cc gcc g++ c99 c++ clang tcc as ld make cpp; do command -v $t; done; ls -d /usr/lib/gcc/* 2>/dev/null; true' 2>&1 | tr '\n' ' ')
eq "image: holds no compiler, assembler, linker or make" "" "$tools"
for p in enqueuer worker statusd mockprov; do
  out=$($DOCKER run --rm --network none enrichfarm:latest "$p" --help 2>&1 | head -1)
  contains "image: $p runs (--help)" "$p" "$out"
done
bytes=$($DOCKER image inspect -f '{{.Size}}' enrichfarm:latest)
mb=$(( (bytes + 500000) / 1000000 ))
echo "image size: enrichfarm:latest is $mb MB ($bytes bytes)"
[ "$bytes" -gt 0 ] && [ "$mb" -lt 250 ] && ok "image: size $mb MB (under 250 MB)" ||
  fail "image: size" "$mb MB"

# the truth of the sample, from the mock's catalogue (the compose file's --catalog)
catalog=$(tr -d '\n ' <"$ROOT/docker-compose.yml" | grep -o '"--catalog","[0-9]*"' | head -1 | grep -o '[0-9][0-9]*')
read -r e_upd e_conf e_nf < <($DOCKER run --rm -i --network none enrichfarm:latest \
  mockprov --expect movies --catalog "${catalog:-1000}" <"$ROOT/samples/movies.csv" |
  awk '{c[$2]++} END {printf "%d %d %d\n", c["updated"], c["conflicts"], c["not_found"]}')
echo "truth: updated $e_upd, conflicts $e_conf, not_found $e_nf"

say "waiting for the job (a killed worker's chunk comes back after its lease)"
wait_for 200 "[ \"\$(job 'd[\"status\"]')\" = completed ]"
read -r st upd conf nf errs < <(job '" ".join(str(d.get(k)) for k in ("status", "updated", "conflicts", "not_found", "errors"))')
eq "job: completed through the faults" completed "$st"
eq "job: counts equal the mock's truth (updated conflicts not_found)" "$e_upd $e_conf $e_nf" "$upd $conf $nf"
eq "job: no errors" 0 "$errs"
E=$(ctr enqueue | head -1)
wait_for 30 "[ \"\$($DOCKER inspect -f '{{.State.Status}}' $E)\" = exited ]"
eq "enqueue: the one-shot --wait exits 0" "exited 0" "$($DOCKER inspect -f '{{.State.Status}} {{.State.ExitCode}}' "$E")"
say "job done"

# ---- docker-compose down: every worker drains and exits 0 ----
if [ "$($DOCKER inspect -f '{{.State.Running}}' "$W1")" != true ]; then
  echo "the SIGKILLed worker was not restarted by its policy; starting it again"
  $DOCKER start "$W1" >/dev/null
fi
wait_for 30 "[ \$(ctr worker | xargs $DOCKER inspect -f '{{.State.Running}}' | grep -c true) = 3 ]"
WORKERS=$(ctr worker)
eq "compose: three workers running before down" 3 "$(echo "$WORKERS" | xargs $DOCKER inspect -f '{{.State.Running}}' | grep -c true)"
for w in $WORKERS; do
  $DOCKER logs -f --since 0 "$w" >"$TMP/worker-$w.log" 2>&1 &
  LOGPIDS="$LOGPIDS $!"
done
$DOCKER events --filter "label=com.docker.compose.project=$PROJ" --filter event=die \
  --format '{{.Actor.ID}} {{index .Actor.Attributes "exitCode"}}' >"$TMP/events" 2>&1 &
LOGPIDS="$LOGPIDS $!"
sleep 0.5
grace=$(tr -d '\n' <"$ROOT/docker-compose.yml" | grep -o 'stop_grace_period: *[0-9]*s' | head -1 | grep -o '[0-9][0-9]*')
say "docker-compose down -v (workers' stop_grace_period ${grace}s)"
t=$SECONDS
"${DC[@]}" down -v >"$TMP/down.log" 2>&1
rc=$?
took=$((SECONDS - t))
eq "compose: down -v exits 0" 0 "$rc"
[ "$took" -lt "${grace:-45}" ] && ok "compose: down took ${took}s, within the grace period" ||
  fail "compose: down within the grace period" "${took}s"
sleep 1
for w in $WORKERS; do
  s=${w:0:12}
  eq "worker $s: exit code 0 on down" 0 "$(awk -v id="$w" 'index($1, id) == 1 {print $2}' "$TMP/events" | tail -1)"
  wl=$(cat "$TMP/worker-$w.log")
  contains "worker $s: drained on SIGTERM (log)" "SIGTERM: draining" "$wl"
  contains "worker $s: stopped (log)" "stopped" "$wl"
done
eq "compose: no container left" "" "$($DOCKER ps -aq --filter "label=com.docker.compose.project=$PROJ")"
say "stack done"

# ---- the sentinel profile: the primary's container SIGKILLed mid-job ----
# the redis service is the master, redis-replica its replica, three
# sentinels watch it (down after 2 s here); every program on
# redis+sentinel:// follows the promotion without a restart
export FARM_REDIS_URL='redis+sentinel://sentinel-1,sentinel-2,sentinel-3/mymaster/0'
export SENTINEL_DOWN_AFTER_MS=2000
DCS=("${DC[@]}" --profile sentinel)
# everything but the sample's enqueue first: the sentinels learn of the
# replica from the master's INFO, every 10 s, and the job would be nearly
# done by then; the enqueue once the set is formed (up --no-deps enqueue)
SVCS="redis redis-replica sentinel-1 sentinel-2 sentinel-3 mockprov statusd worker"
say "docker-compose -p $PROJ --profile sentinel up -d --no-build --scale worker=3 ${SVCS// /,}"
# shellcheck disable=SC2086 # SVCS: service names, split on purpose
if "${DCS[@]}" up -d --no-build --scale worker=3 $SVCS >"$TMP/up-sentinel.log" 2>&1; then
  ok "sentinel: up -d --profile sentinel --scale worker=3"
else
  fail "sentinel: up -d --profile sentinel" "$(tail -5 "$TMP/up-sentinel.log")"
  exit 1
fi
scli() { $DOCKER exec "$(ctr sentinel-1)" redis-cli -p 26379 "$@" 2>/dev/null | tr -d '\r'; }
# mfield NAME: a field of SENTINEL master mymaster
mfield() { scli SENTINEL master mymaster | paste - - | awk -v k="$1" '$1 == k {print $2}'; }
RIP=$($DOCKER inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$(ctr redis-replica)")
formed='[ "$(mfield num-slaves)" = 1 ] && [ "$(mfield num-other-sentinels)" = 2 ]'
if wait_for 40 "$formed"; then
  ok "sentinel: the set is formed: 1 replica, 3 sentinels ($((SECONDS - T0)) s)"
else
  fail "sentinel: the set is formed" "replicas $(mfield num-slaves), other sentinels $(mfield num-other-sentinels)"
fi
wait_for 30 "curl -sf -m 2 '$URL/health'"
contains "sentinel: statusd /health through the sentinels" '"redis":"up"' "$(curl -s -m 5 "$URL/health")"
wait_for 30 "[ \"\$(jget /workers 'sum(1 for w in d[\"workers\"] if w.get(\"alive\"))')\" = 3 ]"
eq "sentinel: /workers lists 3 alive" 3 "$(jget /workers 'sum(1 for w in d["workers"] if w.get("alive"))')"
"${DCS[@]}" up -d --no-build --no-deps enqueue >>"$TMP/up-sentinel.log" 2>&1 ||
  fail "sentinel: up -d --no-deps enqueue" "$(tail -3 "$TMP/up-sentinel.log")"
wait_for 60 "[ -n \"\$(jget /jobs 'd[\"jobs\"][0][\"id\"]')\" ]"
JOB=$(jget /jobs 'd["jobs"][0]["id"]')
if [ -n "$JOB" ]; then ok "sentinel: /jobs lists the sample job ($JOB)"; else
  fail "sentinel: /jobs lists the sample job" "$("${DCS[@]}" logs --no-color enqueue 2>&1 | tail -5)"; exit 1; fi
wait_for 60 "[ \"\$(job 'd[\"processed\"] >= 30')\" = True ]"
at=$(job 'd["status"] + " " + str(d["processed"]) + "/" + str(d["total"])')
P=$(ctr redis)
$DOCKER kill -s KILL "$P" >/dev/null 2>&1
case "$at" in
  running*) ok "sentinel: the primary's container SIGKILLed mid-job (at $at)" ;;
  *) fail "sentinel: the primary's container SIGKILLed mid-job" "job was '$at'" ;;
esac
t=$SECONDS
if wait_for 30 "[ \"\$(scli SENTINEL get-master-addr-by-name mymaster | head -1)\" = '$RIP' ]"; then
  ok "sentinel: the replica ($RIP) promoted in $((SECONDS - t)) s"
else
  fail "sentinel: the replica promoted" "$(scli SENTINEL get-master-addr-by-name mymaster | tr '\n' ' ')"
  for c in sentinel-1 redis-replica; do echo "-- $c:"; $DOCKER logs "$(ctr $c)" 2>&1 | tail -12; done
fi
wait_for 120 "[ \"\$(job 'd[\"status\"]')\" = completed ]"
say "sentinel: the job ended $((SECONDS - t)) s after the kill"
read -r st upd conf nf errs < <(job '" ".join(str(d.get(k)) for k in ("status", "updated", "conflicts", "not_found", "errors"))')
eq "sentinel: the job completed through the failover (statusd on the new master)" completed "$st"
eq "sentinel: counts equal the mock's truth (updated conflicts not_found)" "$e_upd $e_conf $e_nf" "$upd $conf $nf"
eq "sentinel: no errors" 0 "$errs"
# the enqueuer's poll of the job was on the dead master: a container's
# address that vanishes sends no reset, so it waits out its 30 s command
# timeout before it reconnects through the sentinels
E=$(ctr enqueue | head -1)
t=$SECONDS
wait_for 45 "[ \"\$($DOCKER inspect -f '{{.State.Status}}' $E)\" = exited ]"
eq "sentinel: the one-shot enqueuer --wait exits 0 ($((SECONDS - t)) s after the job ended)" "exited 0" \
  "$($DOCKER inspect -f '{{.State.Status}} {{.State.ExitCode}}' "$E")"
for w in $(ctr worker) $(ctr statusd); do
  name=$($DOCKER inspect -f '{{.Name}} {{.RestartCount}}' "$w")
  contains "sentinel: ${name% *} followed the new master, not restarted (restarts: ${name#* })" \
    "names $RIP:6379 as master mymaster" "$($DOCKER logs "$w" 2>&1)"
  [ "${name#* }" = 0 ] || fail "sentinel: ${name% *} not restarted" "restarts: ${name#* }"
done
$DOCKER events --filter "label=com.docker.compose.project=$PROJ" --filter event=die \
  --format '{{.Time}} {{index .Actor.Attributes "name"}} {{index .Actor.Attributes "exitCode"}}' \
  >"$TMP/events-sentinel" 2>&1 &
LOGPIDS="$LOGPIDS $!"
sleep 0.5
t=$SECONDS
if "${DCS[@]}" down -v >"$TMP/down-sentinel.log" 2>&1; then ok "sentinel: down -v ($((SECONDS - t)) s)"; else
  fail "sentinel: down -v" "$(tail -3 "$TMP/down-sentinel.log")"; fi
sleep 0.5
echo "containers' ends, seconds after down began, and exit codes:"
awk -v t0="$(date +%s)" -v d=$((SECONDS - t)) '{printf "  %s %d %s\n", $2, $1 - (t0 - d), $3}' "$TMP/events-sentinel"
eq "sentinel: no container left" "" "$($DOCKER ps -aq --filter "label=com.docker.compose.project=$PROJ")"
say "sentinel done"
