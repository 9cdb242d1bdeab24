# SPDX-License-Identifier: MIT
# Scenario 11, batch steps: entities per rate-limit token with batches of
# 100 against one entity per request, under the same limit.  A mockprov is
# the referee (--rate BT_L --per 1 --burst 2 BT_B, as in scenario 6, so
# that a few ms of jitter between the two buckets is not a 429; counting every request,
# 429 and id asked); three recipes with the same "rate" {BT_L per 1 s,
# burst BT_B}: one GET per entity (/item/{id}), a batch GET of up to 100
# ids (/items?ids=...) and a batch POST of up to 100 (/items/bulk, a JSON
# body), as in examples/people-batch.json.  Per run: entities per token
# (entities / the bucket's own `granted`), entities per request (the
# referee's count), the referee's 429s, the steady entity rate (the bucket
# starts full, so the first BT_B requests go at once: (requests - BT_B) x
# entities per request / (last - first request)).
# Sourced by bench/run.

scn_batch() {
  local kind ids
  b_mock_start BTMOCK --rate "$BT_L" --per 1 --burst $((2 * BT_B)) || return 1
  bt_recipes
  seq 1 "$BT_N1" >"$B_TMP/ids.bt.single"
  seq 1 "$BT_NB" >"$B_TMP/ids.bt.batch"
  for _ in $(seq 1 "$BT_REPS"); do
    for kind in single get post; do
      ids="$B_TMP/ids.bt.batch"
      [ "$kind" = single ] && ids="$B_TMP/ids.bt.single"
      bt_run "$kind" "$ids"
    done
    b_put bt.ratio.get "$(b_div "$(bt_last get eps)" "$(bt_last single eps)")"
    b_put bt.ratio.post "$(b_div "$(bt_last post eps)" "$(bt_last single eps)")"
  done
  b_stop "$BTMOCK_PID"
  bt_section >"$B_RES/md/97-batch.md"
  return 0
}

# bt_recipes: the three recipes (provider "items", same rate), in $B_TMP/r.bt.KIND.json.
bt_recipes() {
  local base="http://127.0.0.1:$BTMOCK_PORT" rate="\"rate\": {\"requests\": $BT_L, \"per_seconds\": 1, \"burst\": $BT_B}"
  cat >"$B_TMP/r.bt.single.json" <<EOF
{"providers": {"items": {
   "steps": [{"method": "GET", "url": "$base/item/{id}"}],
   "extract": {"title": "/title"}, $rate, "timeout_ms": 10000, "retries": 2}}}
EOF
  cat >"$B_TMP/r.bt.get.json" <<EOF
{"providers": {"items": {
   "steps": [{"name": "lookup", "method": "GET", "url": "$base/items?ids={ids}",
              "batch": {"max": 100, "ids": "query", "join": ",", "results": "/data", "id": "/id"}}],
   "extract": {"title": "/title"}, $rate, "timeout_ms": 10000, "retries": 2, "max_body": 4194304}}}
EOF
  cat >"$B_TMP/r.bt.post.json" <<EOF
{"providers": {"items": {
   "steps": [{"name": "bulk", "method": "POST", "url": "$base/items/bulk",
              "json": {"requests": "{ids}"},
              "batch": {"max": 100, "ids": "json", "item": {"id": "{id}"}, "results": "/results", "id": "/id"}}],
   "extract": {"title": "/data/title"}, $rate, "timeout_ms": 10000, "retries": 2, "max_body": 4194304}}}
EOF
}

bt_mock() { curl -s --max-time 5 "http://127.0.0.1:$BTMOCK_PORT/$1"; }
bt_num() { echo "$1" | grep -o "\"$2\":[0-9]*" | head -1 | cut -d: -f2; }
# bt_last KIND FIELD: the last value recorded for bt.KIND.FIELD (this repetition's)
bt_last() { tail -1 "$B_RES/v.bt.$1.$2" 2>/dev/null || echo n/a; }

# bt_run KIND IDS: one job through one fresh worker; records the figures.
bt_run() {
  local kind=$1 ids=$2 st req r429 first last granted n epr ept eps
  bt_mock stats/reset >/dev/null
  n=$(wc -l <"$ids")
  if ! b_farm_run "$B_TMP/r.bt.$kind.json" 1 "$CONC" "$ids" 120; then
    b_log "batch: $kind did not complete"
    return 1
  fi
  st=$(bt_mock stats)
  granted=$(rc HGET "farm:ratelimit:{items}" granted)
  req=$(bt_num "$st" requests) r429=$(bt_num "$st" responses_429)
  first=$(bt_num "$st" first_request_ms) last=$(bt_num "$st" last_request_ms)
  epr=$(b_div "$n" "$req")
  ept=$(b_div "$n" "$granted")
  eps=$(awk -v r="$req" -v b="$BT_B" -v e="$epr" -v a="$first" -v z="$last" \
    'BEGIN { if (z > a && r > b && e != "n/a") printf "%.1f", (r - b) * e * 1000 / (z - a); else print "n/a" }')
  b_put "bt.$kind.ept" "$ept"
  b_put "bt.$kind.epr" "$epr"
  b_put "bt.$kind.req" "$req"
  b_put "bt.$kind.429" "${r429:-n/a}"
  b_put "bt.$kind.eps" "$eps"
  b_log "batch $kind: $n entities, $req requests, $granted tokens, $r429 x 429, $ept entities/token," \
    "$eps entities/s steady"
}

bt_section() {
  echo "## 11. Batch steps: entities per token"
  echo
  echo "One provider limit for all three recipes, in the recipe (\`\"rate\": {\"requests\": $BT_L,"
  echo "\"per_seconds\": 1, \"burst\": $BT_B}\`) and in the referee (mockprov \`--rate $BT_L --per 1"
  echo "--burst $((2 * BT_B))\`, answering 429 past it; twice the farm's burst as in section 6, so that"
  echo "a few ms of jitter between the two buckets is not a 429): one GET per entity (\`/item/{id}\`, $BT_N1 entities),"
  echo "a batch GET of up to 100 ids in the URL (\`/items?ids=1,2,...\`, $BT_NB entities) and a batch"
  echo "POST of up to 100 in a JSON body (\`/items/bulk\`, $BT_NB entities), the two forms of"
  echo "\`examples/people-batch.json\` (docs/providers.md, \"Batch steps\"). One worker,"
  echo "\`--concurrency $CONC\`, chunk size 50, $BT_REPS repetitions. *Entities per token* = entities /"
  echo "the tokens the farm's bucket granted (\`granted\` in \`farm:ratelimit:{items}\`); *entities per"
  echo "request* = entities / the requests the referee saw (429s included). *Steady entities/s* ="
  echo "(requests - $BT_B) x entities per request / (last - first request), as the bucket starts"
  echo "full and the first $BT_B requests go at once. The ratio is batch / single of the same"
  echo "repetition."
  echo
  echo "| figure | median | min | max | runs |"
  echo "|---|---|---|---|---|"
  local k label
  for k in single get post; do
    case $k in single) label="1 per request (GET /item/{id})" ;; get) label="batch of 100, GET ?ids=" ;; *) label="batch of 100, POST JSON" ;; esac
    b_row "$label: **entities per token**" "bt.$k.ept"
    b_row "$label: entities per request" "bt.$k.epr"
    b_row "$label: requests seen by the referee" "bt.$k.req"
    b_row "$label: 429s from the referee" "bt.$k.429"
    b_row "$label: steady entities/s" "bt.$k.eps"
  done
  b_row "**ratio of steady entities/s, batch GET / single**" bt.ratio.get
  b_row "**ratio of steady entities/s, batch POST / single**" bt.ratio.post
  echo
  echo "The limit counts requests, so a batch of 100 takes one token for up to 100 entities: at"
  echo "$BT_L requests/s the batch recipes reach about 100 x $BT_L entities/s, where one request per"
  echo "entity stays at $BT_L. Fewer than 100 entities per token means batches that left before"
  echo "they filled (a token freed while fewer entities were waiting) and the last, partial batch."
  echo
}
