#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# enqueue.sh: submits a file of ids (one a line) as a job with redis-cli
# alone, through the same Lua scripts the C enqueuer runs (job_create,
# job_append, job_seal), so the job is indistinguishable from one that
# `enqueuer --format lines` makes.  Prints the job id alone on stdout.
#
#   scripts/enqueue.sh [--redis URL] [--queue Q] --provider P [--chunk-size N]
#                      [--priority normal|high] [--dry-run] [--job-id ID]
#                      [--notify URL] FILE|-
#
# URL forms: redis://, unix://, redis+sentinel:// (the master asked of the
# sentinels) and redis+cluster:// (seed nodes; redis-cli -c follows MOVED
# and ASK, and job_create gets the queue's keys only, see its header); over
# TLS rediss://, rediss+sentinel:// and rediss+cluster:// with
# ?cacert=PATH&cert=PATH&key=PATH&sni=NAME.
#
# The whole file is checked before anything is written: a bad line (empty
# id is skipped as a blank line; over 512 bytes, a control character,
# invalid UTF-8) aborts with its line number and leaves Redis untouched.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
redis_url=${REDIS_URL:-redis://127.0.0.1:6379/0}
queue=${FARM_QUEUE:-default}
provider=""
chunk_size=50
priority=normal
dry_run=0
job_id=""
notify=()
file=""
ttl=30000
batch_chunks=64

die() { echo "enqueue.sh: $*" >&2; exit 1; }
usage() { sed -n '3,17p' "$0" | sed 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
  case "$1" in
    --redis) redis_url=${2:?--redis needs a URL}; shift 2 ;;
    --queue) queue=${2:?--queue needs a name}; shift 2 ;;
    --provider) provider=${2:?--provider needs a name}; shift 2 ;;
    --chunk-size) chunk_size=${2:?--chunk-size needs a number}; shift 2 ;;
    --priority) priority=${2:?--priority needs normal or high}; shift 2 ;;
    --dry-run) dry_run=1; shift ;;
    --job-id) job_id=${2:?--job-id needs an id}; shift 2 ;;
    --notify) notify=(notify_url "${2:?--notify needs a URL}"); shift 2 ;; # job_create checks it
    -h|--help) usage; exit 0 ;;
    --version) echo "enqueue.sh (enrichfarm)"; exit 0 ;;
    --) shift; file=${1:-}; shift || true ;;
    -) file=-; shift ;;
    -*) die "unknown option $1 (see --help)" ;;
    *) [ -z "$file" ] || die "one FILE only (got '$file' and '$1')"; file=$1; shift ;;
  esac
done
[ -n "$provider" ] || die "--provider is required"
[ -n "$file" ] || die "give a FILE of ids, or - for stdin"
[[ $queue =~ ^[A-Za-z0-9_.-]{1,64}$ ]] || die "bad queue name '$queue'"
[[ $provider =~ ^[A-Za-z0-9_.-]{1,64}$ ]] || die "bad provider name '$provider'"
[[ $chunk_size =~ ^[0-9]+$ ]] && [ "$chunk_size" -ge 1 ] && [ "$chunk_size" -le 10000 ] ||
  die "--chunk-size must be an integer from 1 to 10000"
[ "$priority" = normal ] || [ "$priority" = high ] || die "--priority must be normal or high"
[ -z "$job_id" ] || [[ $job_id =~ ^[A-Za-z0-9_-]{1,64}$ ]] || die "bad job id '$job_id'"

# ---- redis-cli arguments from the URL ----
# pct_decode S: %XX escapes decoded (backslashes kept as they are)
pct_decode() { local v=${1//\\/\\\\}; printf '%b' "${v//%/\\x}"; }
# rediss://, rediss+sentinel://: the same forms over TLS, through
# redis-cli --tls; cacert, cert, key and sni leave the query (redis-cli's
# flags of the same names), the sentinel parameters stay.  redis-cli checks
# the certificate chain but not the server's name: tls_check does, with
# openssl s_client, before anything is written.
tls=(); tls_name=""; tls_ca=(); tls_me=()
case "$redis_url" in
  rediss://*|rediss+sentinel://*|rediss+cluster://*)
    redis_url=redis${redis_url#rediss}; tls=(--tls); keep=""
    if [[ $redis_url == *\?* ]]; then
      IFS='&' read -r -a params <<<"${redis_url#*\?}"
      for p in "${params[@]}"; do
        v=$(pct_decode "${p#*=}")
        case "$p" in cacert=*) tls+=(--cacert "$v"); tls_ca=(-CAfile "$v") ;;
                     cert=*) tls+=(--cert "$v"); tls_me+=(-cert "$v") ;;
                     key=*) tls+=(--key "$v"); tls_me+=(-key "$v") ;;
                     sni=*) tls+=(--sni "$v"); tls_name=$v ;;
                     *) keep="$keep${keep:+&}$p" ;; esac
      done
    fi
    redis_url=${redis_url%%\?*}${keep:+?$keep} ;;
  *\?*cacert=*|*\?*cert=*|*\?*key=*|*\?*sni=*)
    [[ $redis_url == unix://* ]] || die "cacert=, cert=, key= and sni= need a TLS URL (rediss://, rediss+sentinel://, rediss+cluster://)" ;;
esac
tls_check() { # HOST PORT
  [ ${#tls[@]} -gt 0 ] || return 0
  command -v openssl >/dev/null || die "TLS: the openssl command is needed to check the server's name"
  local name=${tls_name:-$1} out v
  if [[ $name =~ ^[0-9.]+$ || $name == *:* ]]; then v=(-verify_ip "$name"); else v=(-verify_hostname "$name" -servername "$name"); fi
  out=$(timeout 5 openssl s_client -connect "$1:$2" -verify_return_error "${v[@]}" "${tls_ca[@]}" "${tls_me[@]}" -brief </dev/null 2>&1) ||
    die "TLS: cannot verify the server at $1:$2 as '$name': $(printf '%s\n' "$out" | grep -m1 -i -E 'verify error|error' || echo 'handshake failed')"
}
cli=(redis-cli --no-auth-warning "${tls[@]}")
cluster=0
case "$redis_url" in
  unix://*)
    rest=${redis_url#unix://}; path=${rest%%\?*}; cli+=(-s "$path")
    if [[ $rest == *\?* ]]; then
      IFS='&' read -r -a params <<<"${rest#*\?}"
      for p in "${params[@]}"; do
        case "$p" in db=*) cli+=(-n "${p#db=}") ;; password=*) cli+=(-a "${p#password=}") ;;
                     user=*) cli+=(--user "${p#user=}") ;; *) die "unknown URL parameter $p" ;; esac
      done
    fi ;;
  redis://*)
    rest=${redis_url#redis://}; hostpart=${rest%%/*}; db=0
    [[ $rest == */* ]] && db=${rest#*/}; db=${db:-0}
    if [[ $hostpart == *@* ]]; then
      auth=${hostpart%@*}; hostpart=${hostpart##*@}
      if [[ $auth == *:* ]]; then
        [ -n "${auth%%:*}" ] && cli+=(--user "${auth%%:*}")
        cli+=(-a "${auth#*:}")
      else cli+=(-a "$auth"); fi
    fi
    host=${hostpart%:*}; port=6379; [[ $hostpart == *:* ]] && port=${hostpart##*:}
    cli+=(-h "${host:-127.0.0.1}" -p "$port" -n "$db")
    tls_check "${host:-127.0.0.1}" "$port" ;;
  redis+sentinel://*)
    # [user:pass@]host:port[,host:port...]/MASTER[/db][?sentinel_user=U&sentinel_password=P]:
    # the userinfo is the data nodes', the query the sentinels' (README)
    rest=${redis_url#redis+sentinel://}; query=""
    if [[ $rest == *\?* ]]; then query=${rest#*\?}; rest=${rest%%\?*}; fi
    hostpart=${rest%%/*}; path=${rest#"$hostpart"}; path=${path#/}
    master=${path%%/*}; db=0; [[ $path == */* ]] && db=${path#*/}; db=${db:-0}
    [[ $master =~ ^[A-Za-z0-9_.-]{1,127}$ ]] || die "sentinel URL needs a master name: redis+sentinel://host:port[,host:port...]/MASTER[/db]"
    [[ $db =~ ^[0-9]{1,6}$ ]] || die "bad db number '$db' in sentinel URL"
    data_auth=()
    if [[ $hostpart == *@* ]]; then
      auth=${hostpart%@*}; hostpart=${hostpart##*@}
      if [[ $auth == *:* ]]; then
        [ -n "${auth%%:*}" ] && data_auth+=(--user "$(pct_decode "${auth%%:*}")")
        data_auth+=(-a "$(pct_decode "${auth#*:}")")
      else data_auth+=(-a "$(pct_decode "$auth")"); fi
    fi
    sent_auth=(); s_user=""; s_pass=""
    if [ -n "$query" ]; then
      IFS='&' read -r -a params <<<"$query"
      for p in "${params[@]}"; do
        case "$p" in sentinel_user=*) s_user=$(pct_decode "${p#*=}") ;;
                     sentinel_password=*) s_pass=$(pct_decode "${p#*=}") ;;
                     *) die "unknown parameter '${p%%=*}' in sentinel URL (known: sentinel_user, sentinel_password)" ;; esac
      done
    fi
    [ -z "$s_user" ] || [ -n "$s_pass" ] || die "sentinel_user needs sentinel_password in sentinel URL"
    [ -n "$s_user" ] && sent_auth+=(--user "$s_user")
    [ -n "$s_pass" ] && sent_auth+=(-a "$s_pass")
    IFS=',' read -r -a sentinels <<<"$hostpart"
    [ "${#sentinels[@]}" -ge 1 ] && [ "${#sentinels[@]}" -le 16 ] || die "a sentinel URL names 1 to 16 sentinels"
    addr=""; tried=""
    for s in "${sentinels[@]}"; do
      sh=${s%:*}; sp=26379; [[ $s == *:* ]] && sp=${s##*:}
      [ -n "$sh" ] && [[ $sp =~ ^[0-9]{1,5}$ ]] || die "bad sentinel '$s' in sentinel URL"
      addr=$(timeout 2 redis-cli --no-auth-warning "${tls[@]}" -h "$sh" -p "$sp" "${sent_auth[@]}" \
             SENTINEL get-master-addr-by-name "$master" 2>/dev/null | tr -d '\r') || addr=""
      [ "$(printf '%s\n' "$addr" | grep -c .)" = 2 ] && break
      tried="$tried $sh:$sp"; addr=""
    done
    [ -n "$addr" ] || die "no sentinel gave the address of master '$master' (asked:$tried)"
    cli+=(-h "$(printf '%s\n' "$addr" | sed -n 1p)" -p "$(printf '%s\n' "$addr" | sed -n 2p)" -n "$db" "${data_auth[@]}")
    tls_check "$(printf '%s\n' "$addr" | sed -n 1p)" "$(printf '%s\n' "$addr" | sed -n 2p)"
    role=$(timeout 5 "${cli[@]}" ROLE 2>&1 | head -1 | tr -d '\r') || true
    [ "$role" = master ] || die "the node sentinels name as master '$master' says it is '${role:-unreachable}', not the master" ;;
  redis+cluster://*)
    # [user:pass@]host:port[,host:port...] (seed nodes): the first that
    # answers; redis-cli -c follows MOVED and ASK from there
    rest=${redis_url#redis+cluster://}; hostpart=${rest%%/*}; hostpart=${hostpart%%\?*}
    if [[ $hostpart == *@* ]]; then
      auth=${hostpart%@*}; hostpart=${hostpart##*@}
      if [[ $auth == *:* ]]; then
        [ -n "${auth%%:*}" ] && cli+=(--user "$(pct_decode "${auth%%:*}")")
        cli+=(-a "$(pct_decode "${auth#*:}")")
      else cli+=(-a "$(pct_decode "$auth")"); fi
    fi
    IFS=',' read -r -a seeds <<<"$hostpart"
    [ "${#seeds[@]}" -ge 1 ] && [ "${#seeds[@]}" -le 16 ] || die "a cluster URL names 1 to 16 seed nodes"
    seed=""; tried=""
    for s in "${seeds[@]}"; do
      sh=${s%:*}; sp=6379; [[ $s == *:* ]] && sp=${s##*:}
      [ -n "$sh" ] && [[ $sp =~ ^[0-9]{1,5}$ ]] || die "bad seed '$s' in cluster URL"
      if timeout 5 "${cli[@]}" -h "$sh" -p "$sp" PING 2>/dev/null | grep -q PONG; then seed="$sh $sp"; break; fi
      tried="$tried $sh:$sp"
    done
    [ -n "$seed" ] || die "no seed node of the cluster answered (asked:$tried)"
    tls_check "${seed% *}" "${seed#* }"
    cli+=(-c -h "${seed% *}" -p "${seed#* }")
    cluster=1 ;;
  *) die "redis URL must start with redis://, rediss://, unix://, redis+sentinel://, rediss+sentinel://, redis+cluster:// or rediss+cluster://" ;;
esac

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# ---- read and check the whole input, cut it into chunk batches on disk ----
if [ "$file" = - ]; then src="$tmp/stdin"; cat >"$src"; name=stdin
else [ -r "$file" ] || die "cannot open $file"; src=$file; name=$file; fi
if ! iconv -f UTF-8 -t UTF-8 "$src" >/dev/null 2>&1; then
  n=0; bad_line="?"
  while IFS= read -r l || [ -n "$l" ]; do
    n=$((n + 1))
    printf '%s' "$l" | iconv -f UTF-8 -t UTF-8 >/dev/null 2>&1 || { bad_line=$n; break; }
  done <"$src"
  die "$name:$bad_line: id is not valid UTF-8; nothing was enqueued"
fi
stats=$(LC_ALL=C awk -v cs="$chunk_size" -v bc="$batch_chunks" -v dir="$tmp" -v name="$name" '
  function flush_chunk() {
    if (n == 0) return
    printf "%s%d\n%s", (inbatch ? "\036" : ""), n, chunk > (dir "/b." sprintf("%06d", nb))
    inbatch++; chunks++; n = 0; chunk = ""
    if (inbatch == bc) { close(dir "/b." sprintf("%06d", nb)); nb++; inbatch = 0 }
  }
  BEGIN { n = 0; chunks = 0; total = 0; nb = 0; inbatch = 0 }
  {
    line = $0
    if (NR == 1) sub(/^\357\273\277/, "", line)
    sub(/\r$/, "", line)
    gsub(/^[ \t]+|[ \t]+$/, "", line)
    if (line == "") next
    if (length(line) > 512) { printf "%s:%d: id is %d bytes, the limit is 512\n", name, NR, length(line) > "/dev/stderr"; bad = 1; exit 1 }
    if (line ~ /[\001-\037\177]/) { printf "%s:%d: id contains a control character\n", name, NR > "/dev/stderr"; bad = 1; exit 1 }
    if (index(line, "\000") > 0) { printf "%s:%d: id contains a NUL byte\n", name, NR > "/dev/stderr"; bad = 1; exit 1 }
    gsub(/\\/, "\\\\&", line); gsub(/"/, "\\\"", line)
    chunk = chunk (n ? "\n" : "") "{\"id\":\"" line "\"}"
    n++; total++
    if (n == cs) flush_chunk()
  }
  END { if (bad) exit 1; flush_chunk(); print total, chunks }
' "$src") || die "nothing was enqueued"
read -r total chunks <<<"$stats"
[ "${total:-0}" -gt 0 ] || die "$name: empty input: no entities"

# ---- job id: 10 chars of ms time + 16 random, Crockford base32 ----
if [ -z "$job_id" ]; then
  ms=$(date +%s%3N)
  job_id=$(od -An -N10 -tu1 /dev/urandom | awk -v ms="$ms" '
    BEGIN { a = "0123456789ABCDEFGHJKMNPQRSTVWXYZ" }
    { for (i = 1; i <= NF; i++) r[++k] = $i }
    END {
      t = ms; s = ""
      for (i = 0; i < 10; i++) { s = substr(a, (t % 32) + 1, 1) s; t = int(t / 32) }
      for (i = 1; i <= 16; i++) s = s substr(a, (r[(i % 10) + 1] + i * 7) % 32 + 1, 1)
      print s }')
fi

k_job="farm:{$queue}:job:$job_id"
k_chunks="farm:{$queue}:job:$job_id:chunks"
k_jobs="farm:{$queue}:jobs"
k_enq="farm:{$queue}:enqueuing"
k_notify="farm:{$queue}:notify"
k_settings="farm:{$queue}:settings"
k_pending="farm:{$queue}:pending"
k_events="farm:{$queue}:events"

say_err() { # the reply's words, without redis-cli's "(error) ERR " prefix
  local m=${1#(error) }; m=${m#ERR }; echo "enqueue.sh: ${m%$'\n'}" >&2
}

run() { # run SCRIPT KEYS... , ARGS...; fails on an error reply
  local out
  out=$("${cli[@]}" --eval "$here/$1.lua" "${@:2}" 2>&1) || { say_err "$out"; return 1; }
  case "$out" in *ERR*|*NOSCRIPT*|*"(error)"*|Could\ not*) say_err "$out"; return 1 ;; esac
  printf '%s\n' "$out"
}

discard() { run job_discard "$k_job" "$k_chunks" "$k_jobs" "$k_enq" , "$job_id" >/dev/null || true; }

# job_create also refuses a provider no worker registered and adds the queue
# to farm:queues.  In a cluster those two keys live in other slots than the
# queue's: job_create gets the queue's 5 keys only, and the provider check
# and the SADD are separate commands (job_create.lua's header)
if [ "$cluster" = 1 ]; then
  if [ "$("${cli[@]}" HLEN farm:providers)" != 0 ] &&
     [ "$("${cli[@]}" HEXISTS farm:providers "$provider")" != 1 ]; then
    die "unknown provider '$provider' (registered by workers: $("${cli[@]}" HKEYS farm:providers | head -c 400 | paste -sd, | sed 's/,/, /g'))"
  fi
  reg=()
else
  reg=(farm:queues farm:providers)
fi
run job_create "$k_job" "$k_jobs" "$k_enq" "$k_notify" "$k_settings" "${reg[@]}" , "$job_id" "$queue" \
  "$provider" entity "$chunk_size" "$dry_run" "$priority" "$ttl" source "$name" "${notify[@]}" >/dev/null ||
  die "could not create job $job_id in queue $queue; nothing was enqueued"
if [ "$cluster" = 1 ]; then
  "${cli[@]}" SADD farm:queues "$queue" >/dev/null || { discard; die "could not register queue $queue; job $job_id aborted"; }
fi

first=0
for b in "$tmp"/b.*; do
  [ -e "$b" ] || continue
  mapfile -d $'\036' -t parts <"$b"
  args=()
  for p in "${parts[@]}"; do args+=("${p%%$'\n'*}" "${p#*$'\n'}"); done
  if ! run job_append "$k_job" "$k_chunks" "$k_enq" , "$job_id" "$ttl" "$first" "${args[@]}" >/dev/null; then
    discard; die "append failed; job $job_id aborted, nothing was enqueued"
  fi
  first=$((first + ${#parts[@]}))
done
if ! run job_seal "$k_job" "$k_pending" "$k_enq" , "$job_id" "$total" "$chunks" "$k_events" 0 >/dev/null; then
  discard; die "seal failed; job $job_id aborted"
fi
echo "$job_id"
