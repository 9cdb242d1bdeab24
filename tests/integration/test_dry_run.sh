#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# ef-test: parallel
# A dry run predicts the real run: for each result policy (keep, overwrite),
# a dry run on a store gives exactly the counts the real run then gives on
# the same store, and writes no result hash.  The store and the job are
# made so that every outcome shows: two entities of one job writing one
# result hash with different values (keep: the second is a conflict, which
# a dry run used to miss), the same value twice (no conflict), a stored
# value that differs, a key of the wrong type (an error), a provider miss.
source "$(dirname "$0")/lib.sh"
ef_setup
D=$EF_TMP
K='farm:{default}'
ENQ="$BIN/enqueuer"

ef_mock_start mock || { fail "mockprov starts"; ef_finish; }
recipe() { # NAME POLICY
  printf '"%s": {"steps": [{"method": "GET", "url": "http://127.0.0.1:%s/item/{id}"}],
    "extract": {"title": "/title"}, "timeout_ms": 5000, "retries": 3,
    "results": {"key": "grp:%s:{grp}", "policy": "%s"}}' "$1" "$MOCK_PORT" "$1" "$2"
}
printf '{"providers": {%s, %s}}\n' "$(recipe keep keep)" "$(recipe over overwrite)" >"$D/p.json"
ef_worker_start "$D/w.log" --providers "$D/p.json" --concurrency 8
ef_wait_for 10 '[ "$(rcli HLEN farm:providers)" = 2 ]' || fail "worker starts" "$(cat "$D/w.log")"

cat >"$D/in.ndjson" <<'EOF2'
{"id":"1","grp":"a"}
{"id":"2","grp":"a"}
{"id":"3","grp":"b"}
{"id":"4","grp":"c"}
{"id":"6","grp":"f"}
{"id":"6","grp":"f"}
{"id":"10","grp":"e"}
{"id":"7","grp":"g"}
EOF2

# store P: the same starting store for the dry and the real run
store() {
  rcli DEL "$K:grp:$1:a" "$K:grp:$1:f" "$K:grp:$1:g" "$K:grp:$1:b" "$K:grp:$1:c" >/dev/null
  rcli HSET "$K:grp:$1:b" title 'Stored Before' >/dev/null
  rcli SET "$K:grp:$1:c" not-a-hash >/dev/null
}
counts() { rcli HMGET "$K:job:$1" updated conflicts not_found errors processed | tr '\n' ' ' | sed 's/ $//'; }
run() { # PROVIDER [--dry-run]: prints the job's counts once it completes
  local id
  id=$("$ENQ" --provider "$1" ${2:-} --format ndjson --chunk-size 3 "$D/in.ndjson" 2>>"$D/enq.log")
  if ef_wait_job "$id" completed 30; then counts "$id"; else echo "not completed: $(job_field "$id" status)"; fi
}

# keep: a=1 updated, 2 conflict; b conflict; c error; f updated twice; e not_found; g updated
# overwrite: a, b, f, f, g updated; c error; e not_found
for case in "keep:4 2 1 1 8" "over:6 0 1 1 8"; do
  p=${case%%:*} want=${case#*:}
  store "$p"
  dry=$(run "$p" --dry-run)
  eq "$p: dry run writes no result hash" "0 0 0 Stored Before" \
    "$(rcli EXISTS "$K:grp:$p:a") $(rcli EXISTS "$K:grp:$p:f") $(rcli EXISTS "$K:grp:$p:g") $(rcli HGET "$K:grp:$p:b" title)"
  store "$p"
  real=$(run "$p")
  eq "$p: the real run's counts (updated conflicts not_found errors processed)" "$want" "$real"
  eq "$p: the dry run predicted them" "$real" "$dry"
done
ef_finish
