#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# ef-test: parallel
#
# test_mockprov.sh: end-to-end checks of the mock provider (bin/mockprov).
# Starts the binary on 127.0.0.1 with port 0 in a temp dir, talks to it with
# curl and bash's /dev/tcp, checks the offline truth helpers (--expect)
# against what the server answers, and stops it by PID with SIGTERM,
# expecting a clean exit. Every wait is bounded.
#
# usage: tests/mockprov/test_mockprov.sh [path/to/mockprov]
# The last line is "N passed, N failed"; the exit status is 0 only if all
# checks passed.

set -u

# (default: the build of tests/run.sh, $BIN/mockprov: bin-san/ under SAN=1)
BIN=${1:-${BIN:-bin}/mockprov}
CATALOG=1000
SEED=7
PASS=0
FAIL=0
PID=
TMP=$(mktemp -d "${TMPDIR:-/tmp}/mockprov-test.XXXXXX") || exit 1

cleanup() {
    if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then
        kill -KILL "$PID" 2>/dev/null
    fi
    rm -rf "$TMP"
}
trap cleanup EXIT

ok() { PASS=$((PASS + 1)); echo "ok   - $1"; }
not_ok() { FAIL=$((FAIL + 1)); echo "FAIL - $1${2:+: $2}"; }
check() { # check NAME WANT GOT
    if [ "$2" = "$3" ]; then ok "$1"; else not_ok "$1" "want [$2] got [$3]"; fi
}
check_match() { # check_match NAME REGEX TEXT
    if [[ $3 =~ $2 ]]; then ok "$1"; else not_ok "$1" "[$3] !~ /$2/"; fi
}
finish() {
    echo "$PASS passed, $FAIL failed"
    [ "$FAIL" -eq 0 ]
    exit $?
}

if [ ! -x "$BIN" ]; then
    not_ok "binary $BIN exists"
    finish
fi

# Percent-encodes $1 byte by byte (UTF-8 included).
urlencode() {
    local LC_ALL=C s=$1 out= c i
    for ((i = 0; i < ${#s}; i++)); do
        c=${s:i:1}
        case $c in
            [a-zA-Z0-9.~_-]) out+=$c ;;
            *) printf -v c '%%%02X' "'$c"; out+=$c ;;
        esac
    done
    printf '%s' "$out"
}

# Splits one CSV record ($1) into the array CSV_FIELDS (RFC 4180 quoting).
parse_csv() {
    local line=$1 field= i c q=0
    CSV_FIELDS=()
    for ((i = 0; i < ${#line}; i++)); do
        c=${line:i:1}
        if ((q)); then
            if [ "$c" = '"' ]; then
                if [ "${line:i+1:1}" = '"' ]; then field+='"'; i=$((i + 1)); else q=0; fi
            else
                field+=$c
            fi
        elif [ "$c" = '"' ]; then q=1
        elif [ "$c" = , ]; then CSV_FIELDS+=("$field"); field=
        else field+=$c
        fi
    done
    CSV_FIELDS+=("$field")
}

json_num() { # json_num KEY JSON: the first numeric value of "KEY"
    local re="\"$1\":([0-9]+)"
    [[ $2 =~ $re ]] && printf '%s' "${BASH_REMATCH[1]}"
}

# ---- Offline helpers ----

check "self-test" 0 "$("$BIN" --self-test >/dev/null 2>&1; echo $?)"
check_match "--version" '^mockprov [0-9]' "$("$BIN" --version)"
check_match "--help" 'usage: mockprov' "$("$BIN" --help)"
check "bad flag exits 2" 2 "$("$BIN" --no-such-flag >/dev/null 2>&1; echo $?)"
check "bad probability exits 2" 2 "$("$BIN" --p-500 2 >/dev/null 2>&1; echo $?)"

# ---- Start ----

"$BIN" --listen 127.0.0.1:0 --port-file "$TMP/port" --catalog $CATALOG \
    --seed $SEED >"$TMP/out" 2>"$TMP/err" &
PID=$!
for _ in $(seq 100); do
    [ -s "$TMP/port" ] && break
    kill -0 "$PID" 2>/dev/null || break
    sleep 0.05
done
PORT=$(cat "$TMP/port" 2>/dev/null)
if [ -z "$PORT" ]; then
    not_ok "server started" "$(cat "$TMP/err")"
    finish
fi
ok "server started on port $PORT"
B=http://127.0.0.1:$PORT
C=(curl -s --max-time 10)

# ---- Items ----

check "item 42 status" 200 "$("${C[@]}" -o "$TMP/b" -w '%{http_code}' $B/item/42)"
check_match "item 42 body" '^\{"id":"42","title":"Item 42","price":[0-9]+\.[0-9]{2},"tags":\[' "$(cat "$TMP/b")"
check "item 40 is 404" 404 "$("${C[@]}" -o "$TMP/b" -w '%{http_code}' $B/item/40)"
check "404 body" '{"error":"not found"}' "$(cat "$TMP/b")"
check "item 1001 is 404" 404 "$("${C[@]}" -o /dev/null -w '%{http_code}' $B/item/1001)"
check "item abc is 404" 404 "$("${C[@]}" -o /dev/null -w '%{http_code}' $B/item/abc)"
check "unknown path is 404" 404 "$("${C[@]}" -o /dev/null -w '%{http_code}' $B/nope)"
check_match "content-type json" 'Content-Type: application/json' "$("${C[@]}" -D - -o /dev/null $B/item/1)"

# --expect items agrees with the server on a sample (one keep-alive curl).
IDS="0 1 2 9 10 11 20 99 100 101 500 990 999 1000 1001 123456 abc -5 007"
printf '%s\n' $IDS >"$TMP/ids"
: >"$TMP/items.cfg"
for id in $IDS; do printf 'url = "%s/item/%s"\noutput = /dev/null\n' "$B" "$id" >>"$TMP/items.cfg"; done
"${C[@]}" -K "$TMP/items.cfg" -w '%{http_code}\n' >"$TMP/codes"
paste -d' ' "$TMP/ids" "$TMP/codes" |
    awk '{print $1, ($2 == 200 ? "updated" : $2 == 404 ? "not_found" : "error" $2)}' >"$TMP/items.server"
"$BIN" --expect items --catalog $CATALOG <"$TMP/ids" >"$TMP/items.expect"
check "--expect items matches the server" "$(cat "$TMP/items.expect")" "$(cat "$TMP/items.server")"

# ---- Movies ----

"$BIN" --dump-movies-csv --catalog $CATALOG --seed $SEED --rows 400 >"$TMP/movies.csv"
check "csv header" "id,title,year" "$(head -1 "$TMP/movies.csv")"
check "csv rows" 401 "$(wc -l <"$TMP/movies.csv" | tr -d ' ')"
"$BIN" --expect movies --catalog $CATALOG --seed $SEED <"$TMP/movies.csv" >"$TMP/movies.expect"
for outcome in updated conflicts not_found; do
    n=$(grep -c " $outcome\$" "$TMP/movies.expect")
    if [ "$n" -gt 0 ]; then ok "csv has $outcome rows ($n)"; else not_ok "csv has $outcome rows"; fi
done

# Search every row (one keep-alive curl) and derive the outcome from it.
: >"$TMP/search.cfg"
ROW_IDS=()
FIRST_UNIQUE= FIRST_AMBIG= FIRST_MISSING=
while IFS= read -r line; do
    parse_csv "$line"
    ROW_IDS+=("${CSV_FIELDS[0]}")
    printf 'url = "%s/3/search/movie?query=%s&year=%s"\n' "$B" \
        "$(urlencode "${CSV_FIELDS[1]}")" "${CSV_FIELDS[2]}" >>"$TMP/search.cfg"
done < <(tail -n +2 "$TMP/movies.csv")
"${C[@]}" -K "$TMP/search.cfg" -w '\n' >"$TMP/search.out"
: >"$TMP/movies.server"
i=0
while IFS= read -r body; do
    k=$(json_num total_results "$body")
    case $k in
        0) o=not_found ;;
        1) o=updated ;;
        '') o=error ;;
        *) o=conflicts ;;
    esac
    echo "${ROW_IDS[i]} $o" >>"$TMP/movies.server"
    i=$((i + 1))
done <"$TMP/search.out"
if cmp -s "$TMP/movies.expect" "$TMP/movies.server"; then
    ok "--expect movies matches the server on 400 searches"
else
    not_ok "--expect movies matches the server" "$(diff "$TMP/movies.expect" "$TMP/movies.server" | head -5)"
fi

# Exact, case-insensitive, ambiguous and empty searches, then details.
row=$(grep -n ' updated$' "$TMP/movies.expect" | head -1 | cut -d: -f1)
parse_csv "$(sed -n "$((row + 1))p" "$TMP/movies.csv")"
TITLE=${CSV_FIELDS[1]} YEAR=${CSV_FIELDS[2]}
body=$("${C[@]}" "$B/3/search/movie?query=$(urlencode "$TITLE")&year=$YEAR")
check "search exact: one result" 1 "$(json_num total_results "$body")"
check_match "search exact: release_date" "\"release_date\":\"$YEAR-[0-9]{2}-[0-9]{2}\"" "$body"
MOVIE_ID=$(json_num id "$body")
LOWER=$(printf '%s' "$TITLE" | tr 'A-Z' 'a-z')
body=$("${C[@]}" "$B/3/search/movie?query=$(urlencode "$LOWER" | sed 's/%20/+/g')&year=$YEAR")
check "search is case-insensitive, + is a space" 1 "$(json_num total_results "$body")"
body=$("${C[@]}" "$B/3/search/movie?query=$(urlencode "$TITLE")")
check_match "search without year still finds it" '"total_results":[1-9]' "$body"
row=$(grep -n ' conflicts$' "$TMP/movies.expect" | head -1 | cut -d: -f1)
parse_csv "$(sed -n "$((row + 1))p" "$TMP/movies.csv")"
body=$("${C[@]}" "$B/3/search/movie?query=$(urlencode "${CSV_FIELDS[1]}")&year=${CSV_FIELDS[2]}")
k=$(json_num total_results "$body")
if [ "${k:-0}" -ge 2 ]; then ok "search ambiguous: $k results"; else not_ok "search ambiguous" "$body"; fi
check "search empty" '{"page":1,"results":[],"total_results":0,"total_pages":1}' \
    "$("${C[@]}" "$B/3/search/movie?query=No+Such+Film&year=1999")"
body=$("${C[@]}" -w ' %{http_code}' "$B/3/movie/$MOVIE_ID")
check_match "details 200" ' 200$' "$body"
check_match "details fields" '"runtime":[0-9]+,.*"genres":\[\{"id":[0-9]+,"name":"[^"]+"\}.*"director":"[^"]+","credits":\{"crew":\[\{"job":"Director","name":"[^"]+"\}\]\}' "$body"
TITLE_JSON=$(printf '%s' "$TITLE" | sed 's/\\/\\\\/g; s/"/\\"/g')
if [[ $body == *"\"title\":\"$TITLE_JSON\""* ]]; then ok "details title"; else not_ok "details title" "$body"; fi
check "details unknown id" 404 "$("${C[@]}" -o "$TMP/b" -w '%{http_code}' $B/3/movie/$((CATALOG + 1)))"
check_match "details 404 body" '"status_code":34' "$(cat "$TMP/b")"

# ---- Stats ----

"${C[@]}" -o /dev/null $B/stats/reset
for i in 1 2 3 4 5; do "${C[@]}" -o /dev/null $B/item/$i; done
"${C[@]}" -o /dev/null $B/item/10
STATS=$("${C[@]}" $B/stats)
check "stats requests" 6 "$(json_num requests "$STATS")"
check_match "stats by_status" '"by_status":\{"200":5,"404":1\}' "$STATS"
check "stats paths_distinct" 6 "$(json_num paths_distinct "$STATS")"
check_match "stats max_in_1s" '"max_in_1s":[1-6],' "$STATS"
check_match "stats fields" '"per_second":\[[0-9,]*\].*"started_ms":[0-9]+.*"first_request_ms":[1-9][0-9]*,"last_request_ms":[1-9]' "$STATS"
check "stats not counted" 6 "$(json_num requests "$("${C[@]}" $B/stats)")"

# ---- Control and knobs ----

body=$("${C[@]}" "$B/control?latency_ms=150&p-500=0")
check_match "control answers settings" '"latency_ms":150,' "$body"
t=$("${C[@]}" -o /dev/null -w '%{time_total}' $B/item/1)
if awk -v t="$t" 'BEGIN { exit !(t >= 0.14) }'; then ok "latency applied ($t s)"; else not_ok "latency applied" "$t"; fi
t=$("${C[@]}" -o /dev/null -w '%{time_total}' $B/stats)
if awk -v t="$t" 'BEGIN { exit !(t < 0.14) }'; then ok "stats exempt from latency"; else not_ok "stats exempt from latency" "$t"; fi
check "control bad name is 400" 400 "$("${C[@]}" -o /dev/null -w '%{http_code}' "$B/control?nope=1")"
check "control bad value is 400" 400 "$("${C[@]}" -o /dev/null -w '%{http_code}' "$B/control?p_hang=7")"
check_match "control is all or nothing" '"latency_ms":150,' "$("${C[@]}" "$B/control")"
"${C[@]}" -o /dev/null "$B/control?latency_ms=0"

# Rate limit: 3 per second, burst 3; 8 quick requests on one connection.
"${C[@]}" -o /dev/null "$B/control?rate=3&per=1&burst=3"
"${C[@]}" -o /dev/null $B/stats/reset
: >"$TMP/rate.cfg"
for i in $(seq 8); do printf 'url = "%s/item/1"\noutput = /dev/null\n' "$B" >>"$TMP/rate.cfg"; done
codes=$("${C[@]}" -K "$TMP/rate.cfg" -w '%{http_code} ' -D "$TMP/rate.headers")
n429=$(grep -o 429 <<<"$codes" | wc -l)
if [ "$n429" -ge 4 ]; then ok "rate limit answers 429 ($codes)"; else not_ok "rate limit answers 429" "$codes"; fi
check_match "429 has Retry-After >= 1" $'Retry-After: [1-9][0-9]*\r' "$(cat "$TMP/rate.headers")"
check_match "429 body" '"status_code":25' "$("${C[@]}" $B/item/1)"
check "stats responses_429" "$((n429 + 1))" "$(json_num responses_429 "$("${C[@]}" $B/stats)")"
check "control exempt from the limit" 200 "$("${C[@]}" -o /dev/null -w '%{http_code}' "$B/control?rate=0")"
check "limit lifted" 200 "$("${C[@]}" -o /dev/null -w '%{http_code}' $B/item/1)"

# Rate headers: the bucket after each counted answer, in either style.
"${C[@]}" -o /dev/null "$B/control?rate=2&per=1&burst=2&rate_headers=1"
h1=$("${C[@]}" -D - -o /dev/null $B/item/1)
check_match "X-RateLimit-Limit is the capacity" $'X-RateLimit-Limit: 2\r' "$h1"
check_match "X-RateLimit-Remaining counts down" $'X-RateLimit-Remaining: 1\r' "$h1"
h2=$("${C[@]}" -D - -o /dev/null $B/item/1)
check_match "Remaining: 0 with a reset of at least 1 s" $'X-RateLimit-Remaining: 0\r\nX-RateLimit-Reset: [1-9]' "$h2"
"${C[@]}" -o /dev/null "$B/control?rate=2&per=1&burst=3&rate_headers=2"
h3=$("${C[@]}" -D - -o /dev/null $B/item/1)
check_match "IETF RateLimit field" $'RateLimit: limit=3, remaining=2, reset=[0-9]+\r' "$h3"
check_match "IETF RateLimit-Policy field" $'RateLimit-Policy: 2;w=1\r' "$h3"
"${C[@]}" -o /dev/null "$B/control?rate=2&per=1&burst=2&rate_headers=3"
t0=$(date +%s)
h4=$("${C[@]}" -D - -o /dev/null $B/item/1)$("${C[@]}" -D - -o /dev/null $B/item/1)
reset=$(printf '%s' "$h4" | tr -d '\r' | sed -n 's/^X-RateLimit-Reset: //p' | tail -1)
check_match "GitHub style: Used counts up, Remaining reaches 0" $'X-RateLimit-Remaining: 0\r\nX-RateLimit-Used: 2\r' "$h4"
check "GitHub style: the reset is an epoch time 1 to 3 s ahead" 1 \
  "$([ "${reset:-0}" -ge $((t0 + 1)) ] && [ "${reset:-0}" -le $((t0 + 3)) ] && echo 1)"
check "no rate headers on control answers" "" "$("${C[@]}" -D - -o /dev/null "$B/control?rate=0&rate_headers=0" | grep -i ratelimit)"

# Faults, one at a time at probability 1.
"${C[@]}" -o /dev/null "$B/control?fail_first=2"
check "fail-first" "503 503 200 " "$(for i in 1 2 3; do "${C[@]}" -o /dev/null -w '%{http_code} ' $B/item/21; done)"
"${C[@]}" -o /dev/null "$B/control?fail_first=0&p_500=1"
check_match "p_500" '^50[023]$' "$("${C[@]}" -o /dev/null -w '%{http_code}' $B/item/1)"
"${C[@]}" -o /dev/null "$B/control?p_500=0&p_reset=1"
"${C[@]}" -o /dev/null $B/item/1
rc=$?
if [ "$rc" -ne 0 ]; then ok "p_reset drops the connection (curl $rc)"; else not_ok "p_reset drops the connection"; fi
"${C[@]}" -o /dev/null "$B/control?p_reset=0&p_hang=1"
"${C[@]}" -o /dev/null --max-time 1 $B/item/1
check "p_hang never answers (curl timeout)" 28 "$?"
"${C[@]}" -o /dev/null "$B/control?p_hang=0&p_malformed=1"
body=$("${C[@]}" -w ' %{http_code}' $B/item/1)
check_match "p_malformed is a 200 with broken JSON" '[^}] 200$' "$body"
"${C[@]}" -o /dev/null "$B/control?p_malformed=0&p_huge=1&huge_bytes=300000"
check "p_huge size" 300000 "$("${C[@]}" $B/item/1 | wc -c | tr -d ' ')"
check_match "p_huge is JSON" '^\{"padding":"x+"\}$' "$("${C[@]}" $B/item/1)"
"${C[@]}" -o /dev/null "$B/control?p_huge=0&p_slow=1&slow_ms=300"
t=$("${C[@]}" -o "$TMP/b" -w '%{time_total}' $B/item/1)
if awk -v t="$t" 'BEGIN { exit !(t >= 0.2) }'; then ok "p_slow trickles ($t s)"; else not_ok "p_slow trickles" "$t"; fi
check_match "p_slow body intact" '^\{"id":"1","title":"Item 1"' "$(cat "$TMP/b")"
"${C[@]}" -o /dev/null "$B/control?p_slow=0"
STATS=$("${C[@]}" $B/stats)
check_match "fault counters" '"resets":1,"hangs":1,"malformed":1,"huge":2,"slow":1,"fail_first_503":2' "$STATS"

# ---- Wire ----

check "keep-alive reuses the connection" "1 0 0 " \
    "$("${C[@]}" -o /dev/null -o /dev/null -o /dev/null -w '%{num_connects} ' $B/item/1 $B/item/2 $B/item/3)"

raw() { # raw REQUEST_BYTES: sends them in one write, prints the answer
    local out
    exec 3<>"/dev/tcp/127.0.0.1/$PORT" || return 1
    printf "$1" >&3
    out=$(timeout 5 cat <&3)
    exec 3<&-
    exec 3>&-
    printf '%s' "$out" | tr -d '\r'
}
out=$(raw 'GET /item/1 HTTP/1.1\r\nHost: x\r\n\r\nGET /item/20 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
check "pipelining: two answers" 2 "$(grep -o 'HTTP/1.1 [0-9]* ' <<<"$out" | wc -l | tr -d ' ')"
check_match "pipelining: in order" 'HTTP/1.1 200 OK.*"id":"1".*HTTP/1.1 404 Not Found.*Connection: close' "$(tr '\n' ' ' <<<"$out")"
out=$(raw 'GET /item/1 HTTP/1.0\r\n\r\n')
check_match "HTTP/1.0 closes" '^HTTP/1.1 200 OK.*Connection: close' "$(tr '\n' ' ' <<<"$out")"
check_match "garbage is 400" '^HTTP/1.1 400 ' "$(raw 'garbage\r\n\r\n')"
check_match "bad version is 400" '^HTTP/1.1 400 ' "$(raw 'GET / HTTP/9.9\r\n\r\n')"
check_match "chunked body is 400" '^HTTP/1.1 400 ' "$(raw 'GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n')"
out=$(raw 'GET /item/1 HTTP/1.1\r\nContent-Length: 5\r\n\r\nhelloGET /item/2 HTTP/1.1\r\nConnection: close\r\n\r\n')
check_match "request body skipped" '"id":"1".*"id":"2"' "$(tr '\n' ' ' <<<"$out")"
check "body over 1 MiB is 413" 413 "$("${C[@]}" -o /dev/null -w '%{http_code}' -H 'Content-Length: 2000000' $B/item/1)"
BIG=$(head -c 10240 /dev/zero | tr '\0' a)
check "10 KB header is 431" 431 "$("${C[@]}" -o /dev/null -w '%{http_code}' -H "X-Big: $BIG" $B/item/1)"
check "server alive after abuse" 200 "$("${C[@]}" -o /dev/null -w '%{http_code}' $B/item/1)"

# ---- OAuth2 ----

T="$B/oauth/token"
tok=$("${C[@]}" -u enrichfarm:mock-secret -d grant_type=client_credentials -d scope=x "$T")
check_match "token endpoint issues a bearer token" '^\{"access_token":"mpt\.[0-9]+\.[0-9a-f]+","token_type":"Bearer","expires_in":3600,"scope":"x"\}$' "$tok"
check "client in the form body works" 200 "$("${C[@]}" -o /dev/null -w '%{http_code}' -d 'grant_type=client_credentials&client_id=enrichfarm&client_secret=mock-secret' "$T")"
check_match "a wrong secret is 401 invalid_client" '"error":"invalid_client"' "$("${C[@]}" -u enrichfarm:nope -d grant_type=client_credentials "$T")"
check_match "another grant is 400" '"error":"unsupported_grant_type"' "$("${C[@]}" -u enrichfarm:mock-secret -d grant_type=password "$T")"
at=$(sed 's/.*"access_token":"\([^"]*\)".*/\1/' <<<"$tok")
"${C[@]}" -o /dev/null "$B/control?oauth=1"
check "with oauth on, no token is 401" 401 "$("${C[@]}" -o /dev/null -w '%{http_code}' $B/item/1)"
check "with oauth on, a valid token passes" 200 "$("${C[@]}" -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $at" $B/item/1)"
"${C[@]}" -o /dev/null "$B/oauth/revoke"
check "a revoked token is 401" 401 "$("${C[@]}" -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $at" $B/item/1)"
"${C[@]}" -o /dev/null "$B/control?oauth=0"
check_match "the referee counts fetches and refusals" '"token_fetches":2,"token_fetches_early":1,"token_refused":1' "$("${C[@]}" $B/stats)"

# ---- Batch endpoints ----

"${C[@]}" $B/stats/reset >/dev/null
check "batch GET: found ids only, in order, each once" '{"data":["1","2","3"]}' \
    "$("${C[@]}" "$B/items?ids=1,2,10,abc,%33,2,2000" | python3 -c 'import json,sys; print(json.dumps({"data":[e["id"] for e in json.load(sys.stdin)["data"]]}, separators=(",",":")))')"
check "batch GET: an item as /item/{id} gives it" "$("${C[@]}" $B/item/7 | python3 -c 'import json,sys; print(json.load(sys.stdin))')" \
    "$("${C[@]}" "$B/items?ids=7" | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"][0])')"
check "batch GET: no ids is 400" 400 "$("${C[@]}" -o /dev/null -w '%{http_code}' "$B/items")"
check "batch GET: 1001 ids is 400" 400 "$("${C[@]}" -o /dev/null -w '%{http_code}' "$B/items?ids=$(seq -s, 1 1001)")"
check "batch POST: found ids with their data" '5:Item 5 7:Item 7' \
    "$("${C[@]}" -X POST -d '{"requests":[{"id":"5"},{"id":20},{"id":7},{"id":null}]}' $B/items/bulk | python3 -c 'import json,sys; print(" ".join(r["id"] + ":" + r["data"]["title"] for r in json.load(sys.stdin)["results"]))')"
check "batch POST: a body of another shape is 400" 400 "$("${C[@]}" -o /dev/null -w '%{http_code}' -X POST -d '[1,2]' $B/items/bulk)"
check "POST elsewhere is still 405" 405 "$("${C[@]}" -o /dev/null -w '%{http_code}' -X POST -d '{}' $B/item/1)"
out=$(timeout 10 python3 - "$PORT" <<'PY'
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
s.sendall(b'POST /items/bulk HTTP/1.1\r\nContent-Length: 25\r\n\r\n{"requests":[{')
time.sleep(0.3)
s.sendall(b'"id":"9"}]}GET /item/1 HTTP/1.1\r\nConnection: close\r\n\r\n')
data = b""
while True:
    b = s.recv(65536)
    if not b:
        break
    data += b
print(data.decode().replace("\r", "").replace("\n", " "))
PY
)
check_match "batch POST: a body in two pieces, then the next request" '"id":"9".*"id":"1"' "$out"
"${C[@]}" "$B/control?batch_fail=1" >/dev/null
check "batch_fail: a batch of 2 gets 503" 503 "$("${C[@]}" -o /dev/null -w '%{http_code}' "$B/items?ids=1,2")"
check "batch_fail: a batch of 1 still answers" 200 "$("${C[@]}" -o /dev/null -w '%{http_code}' "$B/items?ids=1")"
check "batch_fail: only K batches fail" 200 "$("${C[@]}" -o /dev/null -w '%{http_code}' "$B/items?ids=1,2")"
"${C[@]}" "$B/control?batch_fail=0" >/dev/null
check "batch counters in /stats" '10 18 10 1' "$("${C[@]}" $B/stats | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["batch_requests"], d["batch_ids"], d["batch_found"], d["batch_failed_503"])')"

# ---- Stop ----

kill -TERM "$PID"
for _ in $(seq 100); do
    kill -0 "$PID" 2>/dev/null || break
    sleep 0.05
done
if kill -0 "$PID" 2>/dev/null; then
    not_ok "SIGTERM stops the server"
else
    wait "$PID"
    check "clean exit on SIGTERM" 0 "$?"
    PID=
fi
if grep -qE 'AddressSanitizer|runtime error|LeakSanitizer| ERROR ' "$TMP/err"; then
    not_ok "no errors on stderr" "$(grep -E 'Sanitizer|runtime error|ERROR' "$TMP/err" | head -3)"
else
    ok "no errors on stderr"
fi
finish
