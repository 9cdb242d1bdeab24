#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The recipe library (examples/, docs/providers.md "The recipe library"):
# each recipe is run as shipped against mockprov acting like its API, only
# its base URL taken from the environment (${X_API_BASE:-real default}),
# with exact counts against mockprov's truth and a spot check of the
# extracted fields:
#   tmdb.json          search then details (TMDB v3)
#   people-batch.json  a bulk POST of up to 100 people per request
#   rate-headers.json  a REST API that states its limit only in its headers
#                      (GitHub style, the reset in epoch seconds): no 429
#   oauth.json         an OAuth2 client-credentials API: one token fetch
#                      (its token_url is not a template: the port is
#                      substituted in a copy, nothing else)
source "$(dirname "$0")/lib.sh"
ef_setup
ENQ="$BIN/enqueuer"
D=$EF_TMP
EX="$EF_ROOT/examples"
RAN=""

# counts ID QUEUE: "updated U conflicts C not_found N errors E"
counts() {
  echo "updated $(job_field "$1" updated "$2") conflicts $(job_field "$1" conflicts "$2")" \
    "not_found $(job_field "$1" not_found "$2") errors $(job_field "$1" errors "$2")"
}
# truth KIND CATALOG FILE: the same line from mockprov's own catalogue
truth() {
  "$BIN/mockprov" --expect "$1" --catalog "$2" <"$3" | awk '{c[$2]++} END {
    printf "updated %d conflicts %d not_found %d errors 0", c["updated"], c["conflicts"], c["not_found"]}'
}
# json URL POINTER-EXPR: one value of a mockprov answer (python expression on j)
json() { curl -s "$1" | python3 -c "import json,sys; j=json.load(sys.stdin); print($2)"; }
# run NAME RECIPE PROVIDER INPUT SECONDS [worker flags]: a worker on queue
# NAME with the shipped recipe file, one job; the job id in JOB
run() {
  local name=$1 recipe=$2 prov=$3 input=$4 secs=$5; shift 5
  ef_worker_start "$D/$name.log" --queue "$name" --providers "$recipe" "$@"
  WPID=$EF_LAST_PID
  ef_wait_for 10 "[ -n \"\$(rcli HGET farm:providers $prov)\" ]"
  JOB=$("$ENQ" --queue "$name" --provider "$prov" "$input" 2>"$D/$name.enq")
  local t0=$SECONDS
  if ef_wait_job "$JOB" completed "$secs" "$name"; then
    ok "$name: $(basename "$recipe"): job completed in $((SECONDS - t0)) s"
  else
    fail "$name: job completes" "status '$(job_field "$JOB" status "$name")' $(cat "$D/$name.enq") $(tail -3 "$D/$name.log")"
  fi
  RAN="$RAN $(basename "$recipe")"
}
stop_worker() { kill -TERM "$WPID" 2>/dev/null; wait "$WPID" 2>/dev/null; }

# ---- TMDB: search then details (examples/tmdb.json) ----
CAT=300
ef_mock_start tmdb --catalog $CAT || fail "tmdb: mockprov starts"
P=$MOCK_PORT
"$BIN/mockprov" --dump-movies-csv --catalog $CAT --rows 80 >"$D/movies.csv"
export TMDB_API_BASE="http://127.0.0.1:$P" TMDB_TOKEN=mock-token
run tmdb "$EX/tmdb.json" tmdb "$D/movies.csv" 30 --concurrency 8
eq "tmdb: exact counts against the truth" "$(truth movies $CAT "$D/movies.csv")" "$(counts "$JOB" tmdb)"
check "tmdb: some rows are conflicts and some not_found (the catalogue's ambiguity)" \
  test "$(job_field "$JOB" conflicts tmdb)" -ge 1 -a "$(job_field "$JOB" not_found tmdb)" -ge 1
# a row the truth calls updated: its movie found the way the recipe finds it
row=$("$BIN/mockprov" --expect movies --catalog $CAT <"$D/movies.csv" | awk '$2 == "updated" {print $1; exit}')
line=$(awk -F, -v r="$row" '$1 == r' "$D/movies.csv")
title=$(printf '%s' "$line" | python3 -c "import csv,sys; print(next(csv.reader(sys.stdin))[1])")
year=${line##*,}
q=$(python3 -c "import sys,urllib.parse as u; print(u.quote(sys.argv[1]))" "$title")
mid=$(json "http://127.0.0.1:$P/3/search/movie?query=$q&year=$year" "j['results'][0]['id']")
det="http://127.0.0.1:$P/3/movie/$mid?append_to_response=credits"
H="farm:{tmdb}:movie:$row"
eq "tmdb: row $row ($title, $year): tmdb_id" "$mid" "$(rcli HGET "$H" tmdb_id)"
eq "tmdb: row $row: imdb_id" "$(json "$det" "j['imdb_id']")" "$(rcli HGET "$H" imdb_id)"
eq "tmdb: row $row: runtime" "$(json "$det" "j['runtime']")" "$(rcli HGET "$H" runtime)"
eq "tmdb: row $row: release_date" "$(json "$det" "j['release_date']")" "$(rcli HGET "$H" release_date)"
eq "tmdb: row $row: director (credits)" "$(json "$det" "j['credits']['crew'][0]['name']")" "$(rcli HGET "$H" director)"
eq "tmdb: row $row: genres" "$(json "$det" "json.dumps([g['name'] for g in j['genres']], separators=(',', ':'))")" \
  "$(rcli HGET "$H" genres | python3 -c "import json,sys; print(json.dumps(json.load(sys.stdin), separators=(',', ':')))")"
sum=$(rcli HGET farm:providers tmdb)
contains "tmdb: the published summary keeps the url template" '${TMDB_API_BASE:-https://api.themoviedb.org}/3/movie/{movie_id}' "$sum"
eq "tmdb: the summary holds no filled base URL" "" "$(printf '%s' "$sum" | grep -o "127.0.0.1:$P")"
stop_worker
kill -TERM "$MOCK_PID" 2>/dev/null

# ---- a bulk POST people-enrichment API (examples/people-batch.json) ----
CAT=500 # ids above it, and multiples of 10, are unknown to the API
ef_mock_start people --catalog $CAT --rate 10 --per 1 --burst 10 || fail "people: mockprov starts"
P=$MOCK_PORT
export PEOPLE_API_BASE="http://127.0.0.1:$P" PEOPLE_API_KEY=mock-key
seq 1 600 >"$D/people.ids"
run people "$EX/people-batch.json" people-bulk "$D/people.ids" 30 --concurrency 4
eq "people: exact counts against the truth" "$(truth items $CAT "$D/people.ids")" "$(counts "$JOB" people)"
eq "people: no 429" 0 "$(mock_stat "$P" responses_429)"
reqs=$(mock_stat "$P" requests)
eq "people: every request was a bulk POST" "$reqs" "$(mock_stat "$P" batch_requests)"
check "people: 600 people in at most 12 requests ($reqs)" test "$reqs" -le 12
eq "people: person:7 title" "Item 7" "$(rcli HGET 'farm:{people}:person:7' title)"
eq "people: person:7 price" "$(json "http://127.0.0.1:$P/item/7" "j['price']")" "$(rcli HGET 'farm:{people}:person:7' price)"
eq "people: person:7 tags" "$(json "http://127.0.0.1:$P/item/7" "json.dumps(j['tags'], separators=(',', ':'))")" \
  "$(rcli HGET 'farm:{people}:person:7' tags | tr -d ' ')"
eq "people: an unknown person has no result" "" "$(rcli HGET 'farm:{people}:person:510' title)"
stop_worker
kill -TERM "$MOCK_PID" 2>/dev/null

# ---- a REST API that sends rate headers (examples/rate-headers.json) ----
# 4 requests/s, burst 4, stated only in X-RateLimit-* with the reset in
# epoch seconds; the recipe has no rate: Remaining: 0 pauses the farm.
CAT=100
ef_mock_start rate --catalog $CAT --rate 4 --per 1 --burst 4 --rate-headers 3 || fail "rate: mockprov starts"
P=$MOCK_PORT
export CATALOG_API_BASE="http://127.0.0.1:$P" CATALOG_API_TOKEN=mock-token
seq 1 30 >"$D/rate.ids"
run rate "$EX/rate-headers.json" catalog "$D/rate.ids" 30 --concurrency 8
eq "rate: exact counts against the truth" "$(truth items $CAT "$D/rate.ids")" "$(counts "$JOB" rate)"
eq "rate: 0 x 429: Remaining: 0 was obeyed" 0 "$(mock_stat "$P" responses_429)"
eq "rate: one request per entity" 30 "$(mock_stat "$P" requests)"
pen=$(rcli HGET "farm:ratelimit:{catalog}" penalties)
check "rate: the headers paused the farm (${pen:-0} times)" test "${pen:-0}" -ge 1
eq "rate: product:7 title" "Item 7" "$(rcli HGET 'farm:{rate}:product:7' title)"
eq "rate: product:7 price" "$(json "http://127.0.0.1:$P/item/7" "j['price']")" "$(rcli HGET 'farm:{rate}:product:7' price)"
stop_worker
kill -TERM "$MOCK_PID" 2>/dev/null

# ---- an OAuth-protected API (examples/oauth.json) ----
# Its token_url is not a template, so this one file gets the test's port by
# substitution (its host and port only); tokens last an hour: one fetch.
CAT=200
ef_mock_start oauth --catalog $CAT --oauth 1 --client-id lib-client --client-secret lib-s3cret ||
  fail "oauth: mockprov starts"
P=$MOCK_PORT
export OAUTH_CLIENT_ID=lib-client OAUTH_CLIENT_SECRET=lib-s3cret
sed "s|127.0.0.1:8088|127.0.0.1:$P|g" "$EX/oauth.json" >"$D/oauth.json"
eq "oauth: only the base URL differs from the shipped file" \
  "$(sed "s|127.0.0.1:8088|HOST|g" "$EX/oauth.json")" "$(sed "s|127.0.0.1:$P|HOST|g" "$D/oauth.json")"
seq 1 150 >"$D/oauth.ids"
run oauth "$D/oauth.json" items "$D/oauth.ids" 30 --concurrency 8
eq "oauth: exact counts against the truth" "$(truth items $CAT "$D/oauth.ids")" "$(counts "$JOB" oauth)"
eq "oauth: one token for the whole job" 1 \
  "$(curl -s "http://127.0.0.1:$P/stats" | python3 -c "import json,sys; print(json.load(sys.stdin)['oauth']['token_fetches'])")"
eq "oauth: no request refused for its token" 0 \
  "$(curl -s "http://127.0.0.1:$P/stats" | python3 -c "import json,sys; print(json.load(sys.stdin)['by_status'].get('401', 0))")"
eq "oauth: result:items:7 title" "Item 7" "$(rcli HGET 'farm:{oauth}:result:items:7' title)"
stop_worker
kill -TERM "$MOCK_PID" 2>/dev/null

# ---- every recipe of the library ran ----
for f in tmdb.json people-batch.json rate-headers.json oauth.json; do
  [ -f "$EX/$f" ] || continue
  contains "library: examples/$f was run" " $f" "$RAN"
done
ef_finish
