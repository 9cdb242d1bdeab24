#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# ef-test: parallel
# The results export keeps the types of the extracted values, the same in
# `enqueuer results` and statusd's /jobs/ID/results: numbers stay numbers,
# arrays and objects stay JSON, strings stay strings; a number out of range
# (1e999999) is an error for its entity, never "null".  Also the enqueuer's
# small manners: `results | head -1` ends quietly on SIGPIPE, and
# retry-errors on a job with no errored entity says so and exits 4.
source "$(dirname "$0")/lib.sh"
ef_setup
ENQ="$BIN/enqueuer"
Q='farm:{default}'
D=$EF_TMP

# a provider answering fixed documents: the mock provider has no floats out
# of range nor objects
cat >"$D/typed.py" <<'PY'
import http.server, os, sys
DOCS = {
    "1": b'{"title": "T1", "price": 456.13, "genres": ["Drama"], "meta": {"a": 1, "b": [true, null]}, "year": 1999}',
    "2": b'{"title": "T2", "price": 1e999999, "genres": []}',
    "3": b'{"title": "T3", "price": "12.5", "genres": [{"n": "x"}]}',
    "4": b'{"title": "T4", "meta": {"deep": [1e999999]}}',
}
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        body = DOCS.get(self.path.rsplit("/", 1)[1])
        if body is None:
            body = b'{"error": "not found"}'
            self.send_response(404)
        else:
            self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write(str(s.server_address[1]))
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
s.serve_forever()
PY
ef_spawn "$D/typed.log" python3 "$D/typed.py" "$D/typed.port"
ef_wait_for 10 test -s "$D/typed.port" || { fail "typed provider starts" "$(cat "$D/typed.log")"; ef_finish; }
TP=$(cat "$D/typed.port")
cat >"$D/typed.json" <<JSON
{"providers": {"items": {
   "steps": [{"method": "GET", "url": "http://127.0.0.1:$TP/item/{id}"}],
   "extract": {"title": "/title", "price": "/price", "genres": "/genres", "meta": "/meta",
               "year": "/year"},
   "timeout_ms": 5000, "retries": 0}}}
JSON
ef_worker_start "$D/w.log" --providers "$D/typed.json" --concurrency 4
ef_wait_for 10 '[ "$(rcli HEXISTS farm:providers items)" = 1 ]'

# pyget JSON-LINES N EXPR: evaluates EXPR on line N (from 1) parsed as `d`
pyget() {
  python3 -c 'import json,sys
d=json.loads(sys.argv[1].splitlines()[int(sys.argv[2]) - 1])
print(eval(sys.argv[3]))' "$1" "$2" "$3" 2>&1
}

# ---- typed values ----
printf '1\n2\n3\n4\n5\n' >"$D/ids"
id=$("$ENQ" --provider items --chunk-size 10 "$D/ids" 2>/dev/null)
if ef_wait_job "$id" completed 30; then ok "typed job completed"; else fail "typed job completed" "$(job_field "$id" status)"; fi
res=$("$ENQ" results "$id")
eq "results: one line per entity" 5 "$(echo "$res" | wc -l)"
eq "results: a number stays a number" "float 456.13" "$(pyget "$res" 1 'type(d["result"]["price"]).__name__ + " " + repr(d["result"]["price"])')"
eq "results: an integer stays a number" "int 1999" "$(pyget "$res" 1 'type(d["result"]["year"]).__name__ + " " + repr(d["result"]["year"])')"
eq "results: an array stays an array" "['Drama']" "$(pyget "$res" 1 'd["result"]["genres"]')"
eq "results: an object stays an object" "{'a': 1, 'b': [True, None]}" "$(pyget "$res" 1 'd["result"]["meta"]')"
eq "results: a string stays a string" "str 12.5" "$(pyget "$res" 3 'type(d["result"]["price"]).__name__ + " " + d["result"]["price"]')"
eq "results: an array of objects" "[{'n': 'x'}]" "$(pyget "$res" 3 'd["result"]["genres"]')"
eq "results: 1e999999 is an error" "errors False" "$(pyget "$res" 2 'd["outcome"] + " " + str("result" in d)')"
eq "results: 1e999999 deep inside an object too" "errors" "$(pyget "$res" 4 'd["outcome"]')"
eq "results: a missing id is not_found" "not_found" "$(pyget "$res" 5 'd["outcome"]')"
eq "results: no null price anywhere" 0 "$(echo "$res" | grep -c '"price":null')"
errs=$(rcli LRANGE "$Q:job:$id:errors" 0 -1)
contains "the error says why" "field price: number out of range" "$errs"
contains "the deep one too" "field meta: number out of range" "$errs"
eq "job counters" "2 2 1" "$(job_field "$id" updated) $(job_field "$id" errors) $(job_field "$id" not_found)"
# the result hash keeps the values as text (its values are strings)
eq "result hash: a number as its JSON text" "456.13" "$(rcli HGET "$Q:result:items:1" price)"
eq "result hash: an array as JSON" '["Drama"]' "$(rcli HGET "$Q:result:items:1" genres)"
eq "result hash: no entity for the out-of-range one" 0 "$(rcli EXISTS "$Q:result:items:2")"

# ---- results --format csv|ndjson ----
eq "results --format ndjson: the default's lines" "$res" "$("$ENQ" results "$id" --format ndjson)"
"$ENQ" results "$id" --format csv --output "$D/res.csv"; rc=$?
eq "results --format csv: exit 0" 0 "$rc"
csvget() {
  python3 -c 'import csv,sys
rows=list(csv.DictReader(open(sys.argv[1], newline="")))
print(eval(sys.argv[2]))' "$D/res.csv" "$1" 2>&1
}
eq "csv: a header row then one row per entity" 5 "$(csvget 'len(rows)')"
eq "csv: the columns" "id,outcome,title,price,genres,meta,year" "$(head -1 "$D/res.csv" | tr -d '\r')"
eq "csv: CRLF line ends (RFC 4180)" 6 "$(grep -c $'\r$' "$D/res.csv")"
eq "csv: values of row 1" "1 updated T1 456.13 1999" "$(csvget '" ".join(rows[0][k] for k in ("id","outcome","title","price","year"))')"
eq "csv: an array as JSON, quoted" '["Drama"]' "$(csvget 'rows[0]["genres"]')"
eq "csv: an object as JSON, quoted" '{"a":1,"b":[true,null]}' "$(csvget 'rows[0]["meta"]')"
eq "csv: an entity without result has empty fields" "not_found||" "$(csvget 'rows[4]["outcome"] + "|" + rows[4]["title"] + "|" + rows[4]["price"]')"
out=$("$ENQ" results "$id" --format lines 2>&1); rc=$?
eq "results --format lines: refused" "1" "$rc"
contains "results --format lines: says why" "--format must be ndjson or csv" "$out"

# statusd gives the same lines
rm -f "$D/sd.port"
ef_spawn "$D/sd.log" "$BIN/statusd" --listen 127.0.0.1:0 --port-file "$D/sd.port"
if ef_wait_for 5 test -s "$D/sd.port"; then
  sres=$(curl -s "http://127.0.0.1:$(cat "$D/sd.port")/jobs/$id/results")
  eq "statusd: the same lines as enqueuer results" "$res" "$sres"
  eq "statusd: a number stays a number" "float" "$(pyget "$sres" 1 'type(d["result"]["price"]).__name__')"
  eq "statusd: an array stays an array" "list" "$(pyget "$sres" 1 'type(d["result"]["genres"]).__name__')"
  eq "statusd: ?outcome=errors" "2" "$(curl -s "http://127.0.0.1:$(cat "$D/sd.port")/jobs/$id/results?outcome=errors" | wc -l)"
else
  fail "statusd starts" "$(cat "$D/sd.log")"
fi

# ---- retry-errors on a job with no errored entity ----
printf '1\n3\n' >"$D/good"
gid=$("$ENQ" --provider items "$D/good" 2>/dev/null)
ef_wait_job "$gid" completed 30 || fail "good job completed" "$(job_field "$gid" status)"
njobs=$(rcli ZCARD "$Q:jobs")
out=$("$ENQ" retry-errors "$gid" 2>"$D/retry.err"); rc=$?
eq "retry-errors, no errors: exit status 4" 4 "$rc"
eq "retry-errors, no errors: no job id printed" "" "$out"
contains "retry-errors, no errors: says so" "has no errored entities: nothing to retry" "$(cat "$D/retry.err")"
check "retry-errors, no errors: not 'empty input'" bash -c "! grep -q 'empty input' '$D/retry.err'"
eq "retry-errors, no errors: no job made" "$njobs" "$(rcli ZCARD "$Q:jobs")"
rid=$("$ENQ" retry-errors "$id" 2>/dev/null); rc=$?
eq "retry-errors with errors: exit 0" 0 "$rc"
eq "retry-errors with errors: the errored entities" 2 "$(job_field "$rid" total)"

# ---- results | head -1: quiet, ended by SIGPIPE ----
# a job bigger than a pipe's buffer, in a queue no worker serves
seq 1 4000 >"$D/big"
bid=$("$ENQ" --queue big --provider items "$D/big" 2>/dev/null)
"$ENQ" --queue big results "$bid" 2>"$D/pipe.err" | head -1 >"$D/pipe.out"
rc=${PIPESTATUS[0]}
eq "results | head -1: the first line" '{"entity":{"id":"1"},"outcome":"pending"}' "$(cat "$D/pipe.out")"
eq "results | head -1: nothing on stderr" "" "$(cat "$D/pipe.err")"
eq "results | head -1: ended by SIGPIPE (128 + 13)" 141 "$rc"
# a full read still exits 0
eq "results: full read exits 0" "4000 0" "$("$ENQ" --queue big results "$bid" | wc -l) ${PIPESTATUS[0]}"

check "sanitizers quiet" bash -c "! grep -l 'runtime error\|ERROR: AddressSanitizer\|LeakSanitizer' '$D'/*.log"
ef_finish
