#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# ef-test: parallel
# Hostile input.  The enqueuer against files meant to hurt it (NUL bytes,
# invalid UTF-8, a 1 GB single line streamed through a pipe, stray CRs,
# UTF-16, files of separators only, huge CSV headers, 100k columns, deeply
# nested NDJSON): each fails with the file and line named, exit 1, bounded
# memory, and nothing left in Redis.  Then statusd against hostile job ids
# and queue names in every route that takes one, bad methods, headers and
# bodies: every answer a 4xx (501/505 where HTTP says so), statusd alive
# after, no key created or changed, and - read from `redis-cli MONITOR` -
# no command naming a key outside farm:, nor a hash tag that is not a
# valid queue name.
source "$(dirname "$0")/lib.sh"
ef_setup
ENQ="$BIN/enqueuer"
SD="$BIN/statusd"
D=$EF_TMP
Q='farm:{default}'
RSS_LIMIT_KB=20480

# ---- the enqueuer ----

# nothing_left NAME: no job key, nothing pending, no job indexed
nothing_left() {
  local keys pend jobs enq
  keys=$(rcli --scan --pattern "$Q:job:*" | head -3)
  pend=$(rcli LLEN "$Q:pending")
  jobs=$(rcli ZCARD "$Q:jobs")
  enq=$(rcli ZCARD "$Q:enqueuing")
  if [ -z "$keys" ] && [ "$pend$jobs$enq" = 000 ]; then
    ok "$1: nothing left in Redis"
  else
    fail "$1: nothing left in Redis" "keys='$keys' pending=$pend jobs=$jobs enqueuing=$enq"
  fi
}

# bad_file NAME WANT FILE [enqueuer flags]: exit 1, stderr holds WANT
# (the file and line), nothing left in Redis
bad_file() {
  local name=$1 want=$2 file=$3 rc
  shift 3
  timeout 20 "$ENQ" --provider items "$@" "$file" >"$D/out" 2>"$D/err"
  rc=$?
  eq "$name: exit 1" 1 "$rc"
  contains "$name: error names the line" "$want" "$(cat "$D/err")"
  eq "$name: no job id printed" "" "$(cat "$D/out")"
  nothing_left "$name"
}

# bad_stream NAME WANT FORMAT PRODUCER...: like bad_file with the input
# streamed from PRODUCER through a pipe; peak RSS under RSS_LIMIT_KB
bad_stream() {
  local name=$1 want=$2 fmt=$3 rc rss
  shift 3
  "$@" | timeout 60 /usr/bin/time -f %M -o "$D/rss" "$ENQ" --provider items --format "$fmt" - \
    >"$D/out" 2>"$D/err"
  rc=${PIPESTATUS[1]}
  eq "$name: exit 1" 1 "$rc"
  contains "$name: error names the line" "$want" "$(cat "$D/err")"
  rss=$(tail -1 "$D/rss")
  if [ "${rss:-999999}" -lt "$RSS_LIMIT_KB" ] 2>/dev/null; then
    ok "$name: peak RSS ${rss} KB < $RSS_LIMIT_KB KB"
  else
    fail "$name: peak RSS bounded" "${rss:-?} KB"
  fi
  nothing_left "$name"
}

gig() { head -c 1G /dev/zero | tr '\0' "$1"; }
line_1g() { printf '1\n'; gig a; }
csv_1g() { printf 'id,title\n1,x\n'; gig a; }
csv_1g_commas() { printf 'id,title\n1,x\n'; gig ,; }
ndjson_1g() { printf '{"id":"1"}\n{"id":"'; gig a; printf '"}\n'; }

cases=0
# NUL bytes
printf '1\n2\na\0b\n3\n' >"$D/nul.txt"
bad_file "NUL in a line" "nul.txt:3: id contains control character 0x00" "$D/nul.txt"
printf 'id,title\n1,a\n2,b\0c\n' >"$D/nul.csv"
bad_file "NUL in a CSV field" "nul.csv:3: NUL byte in field 2" "$D/nul.csv"
printf '{"id":"1"}\n{"id":"2","t":"\0"}\n' >"$D/nul.ndjson"
bad_file "NUL in NDJSON" "nul.ndjson:2: NUL byte" "$D/nul.ndjson"
printf '\0\0\0\0\n' >"$D/allnul.txt"
bad_file "NUL-only file" "allnul.txt:1:" "$D/allnul.txt"
cases=$((cases + 4))

# invalid UTF-8 (a lone continuation byte, an overlong, a surrogate, UTF-16)
printf '1\n\x80abc\n' >"$D/utf8.txt"
bad_file "invalid UTF-8 (lines)" "utf8.txt:2: id is not valid UTF-8" "$D/utf8.txt"
printf 'id,title\n1,ok\n2,\xc0\xaf\n' >"$D/utf8.csv"
bad_file "overlong UTF-8 (CSV)" "utf8.csv:3: invalid UTF-8 in field 2" "$D/utf8.csv"
printf '{"id":"1"}\n{"id":"\xed\xa0\x80"}\n' >"$D/utf8.ndjson"
bad_file "surrogate in NDJSON" "utf8.ndjson:2: invalid UTF-8" "$D/utf8.ndjson"
printf '\xff\xfe1\x002\x00\n\x00' >"$D/utf16.txt"
bad_file "UTF-16 file with its BOM" "utf16.txt:1:" "$D/utf16.txt"
cases=$((cases + 4))

# CR: CRLF files are fine; a CR inside a line is not an id
printf 'a\r\nb\r\n' >"$D/crlf.txt"
if j=$("$ENQ" --provider items "$D/crlf.txt" 2>"$D/err"); then
  eq "CRLF lines accepted without the CR" '{"id":"a"}
{"id":"b"}' "$(rcli HGET "$Q:job:$j:chunks" 0)"
else
  fail "CRLF lines accepted" "$(cat "$D/err")"
fi
rcli FLUSHALL >/dev/null
printf '\xef\xbb\xbfid,title\r\n1,"x\r\ny"\r\n' >"$D/bom.csv"
if j=$("$ENQ" --provider items "$D/bom.csv" 2>"$D/err"); then
  eq "BOM + CRLF CSV accepted, BOM dropped, quoted CRLF kept" '{"id":"1","title":"x\r\ny"}' \
    "$(rcli HGET "$Q:job:$j:chunks" 0)"
else
  fail "BOM + CRLF CSV accepted" "$(cat "$D/err")"
fi
rcli FLUSHALL >/dev/null
printf '1\n2\ra\n' >"$D/cr.txt"
bad_file "bare CR inside a line" "cr.txt:2: id contains control character 0x0d" "$D/cr.txt"
cases=$((cases + 3))

# separators only
printf '\n\n  \n\t\n\r\n' >"$D/blank.txt"
bad_file "blank lines only" "blank.txt: empty input" "$D/blank.txt"
printf ',,,,\n,,,,\n' >"$D/commas.csv"
bad_file "commas only (CSV)" "commas.csv:1: CSV header column 1 has no name" "$D/commas.csv"
printf 'id\n,\n' >"$D/sep2.csv"
bad_file "a row of separators (CSV)" "sep2.csv:2: 2 fields, the header has 1" "$D/sep2.csv"
printf '\n\n\n' >"$D/blank.ndjson"
bad_file "blank NDJSON" "blank.ndjson: empty input" "$D/blank.ndjson"
cases=$((cases + 4))

# CSV headers: very long, 100k columns, unterminated quotes
{ printf 'id,'; head -c 2000000 /dev/zero | tr '\0' h; printf '\n1,2\n'; } >"$D/longhdr.csv"
bad_file "2 MB CSV header" "longhdr.csv:1: record is longer than 1048576 bytes" "$D/longhdr.csv"
python3 -c "
import sys
print(','.join(['id'] + ['c%d' % i for i in range(100000)]))
print(','.join(['1'] + ['v'] * 100000))" >"$D/wide.csv"
t0=$SECONDS
bad_file "100k columns" "wide.csv:1: more than 16384 fields" "$D/wide.csv"
check "100k columns: refused within 5 s" test $((SECONDS - t0)) -le 5
printf 'id,title\n1,"never closed\n2,x\n' >"$D/quote.csv"
bad_file "unterminated quote" "quote.csv:2: unterminated quoted field" "$D/quote.csv"
printf 'id,id\n1,2\n' >"$D/dup.csv"
bad_file "duplicate column" "dup.csv:1: CSV header names column 'id' twice" "$D/dup.csv"
cases=$((cases + 4))

# deeply nested NDJSON, wrong shapes
python3 -c "
print('{\"id\":\"1\"}')
print('{\"id\":\"2\",\"x\":' + '[' * 100000 + ']' * 100000 + '}')" >"$D/deep.ndjson"
bad_file "100k nested arrays (NDJSON)" "deep.ndjson:2: malformed JSON" "$D/deep.ndjson"
python3 -c "print('{\"id\":\"1\",\"x\":' + '{\"a\":' * 50000 + '1' + '}' * 50000 + '}')" >"$D/deepobj.ndjson"
bad_file "50k nested objects (NDJSON)" "deepobj.ndjson:1: malformed JSON" "$D/deepobj.ndjson"
printf '{"id":"1"}\n{"id":{"a":1}}\n' >"$D/idobj.ndjson"
bad_file "object as id" "idobj.ndjson:2: field 'id' must be a string or an integer" "$D/idobj.ndjson"
{ printf '1\n'; head -c 600 /dev/zero | tr '\0' x; printf '\n'; } >"$D/longid.txt"
bad_file "600-byte id" "longid.txt:2: id is 600 bytes, the limit is 512" "$D/longid.txt"
cases=$((cases + 4))

# 1 GB single lines streamed through a pipe: the error names the line,
# memory stays bounded (the line is consumed, never held)
if [ -x /usr/bin/time ]; then
  bad_stream "1 GB line (lines)" "stdin:2: line is longer than 1048576 bytes" lines line_1g
  bad_stream "1 GB line (CSV)" "stdin:3: record is longer than 1048576 bytes" csv csv_1g
  bad_stream "1 GB of commas (CSV)" "stdin:3: more than 16384 fields" csv csv_1g_commas
  bad_stream "1 GB line (NDJSON)" "stdin:2: line is longer than 1048576 bytes" ndjson ndjson_1g
  cases=$((cases + 4))
else
  skip "1 GB lines" "/usr/bin/time is not installed (apt-get install time)"
fi
echo "enqueuer hostile cases: $cases"

# ---- statusd ----

rcli FLUSHALL >/dev/null
printf '1\n2\n3\n' >"$D/ok.txt"
J=$("$ENQ" --provider items "$D/ok.txt" 2>/dev/null)
check "a real job to aim at" test -n "$J"

rm -f "$D/sd.port"
ef_spawn "$D/statusd.log" "$SD" --listen 127.0.0.1:0 --port-file "$D/sd.port" --log-level debug \
  --header-timeout-ms 1500
SDPID=$EF_LAST_PID
ef_wait_for 5 test -s "$D/sd.port" || { fail "statusd starts" "$(cat "$D/statusd.log")"; ef_finish; }
PORT=$(cat "$D/sd.port")
ef_wait_for 5 "curl -sf http://127.0.0.1:$PORT/health" || fail "statusd healthy" "$(cat "$D/statusd.log")"

snapshot() {
  rcli --scan | sort | while read -r k; do
    printf '%s %s ' "$k" "$(rcli TYPE "$k")"
    rcli DUMP "$k" | md5sum
  done
}
snapshot >"$D/before"

redis-cli -s "$D/redis.sock" MONITOR >"$D/monitor.log" 2>&1 &
MONPID=$!
EF_PIDS+=("$MONPID")
ef_wait_for 5 'grep -q OK "$D/monitor.log"'

# The requests, sent raw by python (bytes a client library would refuse to
# send).  Prints "GROUP<TAB>STATUS<TAB>EXPECT<TAB>LABEL" per request.
cat >"$D/hostile.py" <<'PY'
import socket, sys, json
port = int(sys.argv[1]); job = sys.argv[2].encode()
out = []

def send(raw, timeout=5.0):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    data = b""
    try:
        try:
            s.sendall(raw)
        except OSError:
            pass
        while b"\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    except OSError:
        pass
    finally:
        s.close()
    parts = data.split(b"\r\n", 1)[0].split(b" ")
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0

def req(method, target, headers=b"", body=None, version=b"HTTP/1.1"):
    h = b"Host: 127.0.0.1\r\nConnection: close\r\n" + headers
    if body is not None:
        h += b"Content-Length: %d\r\n" % len(body)
    return method + b" " + target + b" " + version + b"\r\n" + h + b"\r\n" + (body or b"")

def run(group, label, raw, expect="4xx"):
    code = send(raw)
    out.append("%s\t%d\t%s\t%s" % (group, code, expect, label.decode("latin-1")[:60].encode("unicode_escape").decode()))

ids = [b"..", b"../", b"..%2F..%2Fetc%2Fpasswd", b"%2e%2e", b"*", b"%2A", b"{", b"}", b"%7B",
       b"%7D", b"{default}", b"a%0Ab", b"a%0D%0AX-Injected:%201", b"a%00b", b"%00",
       b"farm:{default}:pending", b"a:b", b"a%3Ab", b"x" * 65, b"x" * 10240, b"%FF%FE",
       b"%", b"%G0", b"a%20b", b"a+b", b"%C3%A9", b"a.b", b"\\x"]
queues = [b"../", b"../x", b"%2F", b"*", b"%2A", b"{", b"}", b"%7B", b"%7D", b"{default}",
          b"%7Bdefault%7D", b"a%0Ab", b"%0A", b"a%0D", b"%00", b"a%00b", b"farm:x", b"a:b",
          b"x" * 65, b"x" * 10240, b"%FF", b"a%20b", b"a+b", b"%", b"a,b", b"a/b", b"%C3%A9"]

# job ids in every route that takes one
for i in ids:
    for m, tail in [(b"GET", b""), (b"HEAD", b""), (b"GET", b"/errors"), (b"GET", b"/results"),
                    (b"GET", b"/events"), (b"POST", b"/cancel"), (b"POST", b"/pause"),
                    (b"POST", b"/resume"), (b"POST", b"/retry-errors")]:
        run("id " + m.decode() + " /jobs/ID" + tail.decode(), i, req(m, b"/jobs/" + i + tail, body=b"" if m == b"POST" else None))
    run("id raw newline", i, b"GET /jobs/a\n" + i + b" HTTP/1.1\r\nHost: h\r\n\r\n")
    body = json.dumps({"provider": "items", "ids": ["1"], "job_id": i.decode("latin-1")}).encode()
    run("id POST /jobs job_id", i, req(b"POST", b"/jobs", body=body))

# queue names in every route that takes one
for q in queues:
    qs = b"?queue=" + q
    for m, path in [(b"GET", b"/jobs"), (b"GET", b"/jobs/" + job), (b"GET", b"/jobs/" + job + b"/errors"),
                    (b"GET", b"/jobs/" + job + b"/results"), (b"GET", b"/jobs/" + job + b"/events"),
                    (b"GET", b"/events"), (b"POST", b"/jobs/" + job + b"/cancel"),
                    (b"POST", b"/jobs/" + job + b"/pause"), (b"POST", b"/jobs/" + job + b"/retry-errors")]:
        run("queue " + m.decode() + " " + path.decode().replace(job.decode(), "J") + "?queue=", q,
            req(m, path + qs, body=b"" if m == b"POST" else None))
    for verb in [b"pause", b"resume"]:
        run("queue POST /queues/Q/" + verb.decode(), q, req(b"POST", b"/queues/" + q + b"/" + verb, body=b""))
    body = json.dumps({"provider": "items", "ids": ["1"], "queue": q.decode("latin-1")}).encode()
    run("queue POST /jobs queue", q, req(b"POST", b"/jobs", body=body))

# methods
for m in [b"DELETE", b"PUT", b"PATCH", b"OPTIONS", b"TRACE", b"CONNECT", b"get", b"FOO",
          b"G@T", b"GE T", b"", b"X" * 40, b"GET\x00", b"\x16\x03\x01"]:
    for path in [b"/jobs/" + job, b"/jobs", b"/health", b"/queues/default/pause"]:
        run("method", m + b" " + path, req(m, path))

# headers
big = b"X-Big: " + b"a" * 9000 + b"\r\n"
hdrs = {
    "9 KB header (431)": (req(b"GET", b"/health", big), "431"),
    "70 headers (431)": (req(b"GET", b"/health", b"".join(b"X-%d: 1\r\n" % n for n in range(70))), "431"),
    "control char in value": (req(b"GET", b"/health", b"X-A: a\x01b\r\n"), "400"),
    "bare CR in header": (req(b"GET", b"/health", b"X-A: a\rb\r\n"), "400"),
    "obs-fold": (req(b"GET", b"/health", b"X-A: a\r\n b\r\n"), "400"),
    "no colon": (req(b"GET", b"/health", b"X-A\r\n"), "400"),
    "space before colon": (req(b"GET", b"/health", b"X-A : b\r\n"), "400"),
    "NUL in name": (req(b"GET", b"/health", b"X\x00A: b\r\n"), "400"),
    "two Content-Length": (req(b"POST", b"/jobs", b"Content-Length: 1\r\nContent-Length: 2\r\n"), "400"),
    "negative Content-Length": (req(b"POST", b"/jobs", b"Content-Length: -1\r\n"), "400"),
    "hex Content-Length": (req(b"POST", b"/jobs", b"Content-Length: 0x10\r\n"), "400"),
    "huge Content-Length": (req(b"POST", b"/jobs", b"Content-Length: 99999999999999999999\r\n"), "400"),
    "Content-Length over max-body": (req(b"POST", b"/jobs", b"Content-Length: 5000000\r\n"), "413"),
    "Expect with big body": (req(b"POST", b"/jobs", b"Expect: 100-continue\r\nContent-Length: 5000000\r\n"), "413"),
    "Transfer-Encoding (501)": (req(b"POST", b"/jobs", b"Transfer-Encoding: chunked\r\n") + b"0\r\n\r\n", "501"),
    "TE and CL": (req(b"POST", b"/jobs", b"Transfer-Encoding: chunked\r\nContent-Length: 3\r\n"), "400"),
    "no Host in 1.1": (b"GET /health HTTP/1.1\r\n\r\n", "400"),
    "two Host": (req(b"GET", b"/health", b"Host: b\r\n"), "400"),
    "HTTP/2.0 (505)": (req(b"GET", b"/health", version=b"HTTP/2.0"), "505"),
    "HTTP/1.2 (505)": (req(b"GET", b"/health", version=b"HTTP/1.2"), "505"),
    "HTTP/x": (req(b"GET", b"/health", version=b"HTTP/x"), "400"),
    "no version": (b"GET /health\r\nHost: h\r\n\r\n", "400"),
    "absolute-form target": (req(b"GET", b"http://127.0.0.1/health"), "400"),
    "TLS client hello": (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 64, "400"),
    "body slower than header timeout (408)": (req(b"POST", b"/jobs", b"Content-Length: 10\r\n") + b"{", "408"),
    "empty request line": (b"\r\n\r\n\r\n \r\n\r\n", "400"),
    "8 KB of CRLF": (b"\r\n" * 4200, "4xx"),
}
for label, (raw, expect) in hdrs.items():
    run("header", label.encode(), raw, expect)

# bodies of POST /jobs
bodies = [b"", b"{", b"null", b"[]", b"\"x\"", b"a=b&c=d", b"{\"provider\":\"items\"}",
          b"{\"provider\":\"items\",\"ids\":[]}", b"{\"provider\":\"items\",\"ids\":\"1\"}",
          b"{\"provider\":\"items\",\"ids\":[\"a\\nb\"]}", b"{\"provider\":\"items\",\"ids\":[\"\\u0000\"]}",
          b"{\"provider\":\"items\",\"ids\":[\"" + b"x" * 600 + b"\"]}",
          b"{\"provider\":\"items\",\"ids\":[{}]}", b"{\"provider\":\"items\",\"ids\":[null]}",
          b"{\"provider\":\"items\",\"entities\":[{\"id\":{\"a\":1}}]}",
          b"{\"provider\":\"items\",\"entities\":[{\"x\":1}]}",
          b"{\"provider\":\"../\",\"ids\":[\"1\"]}", b"{\"provider\":\"{a}\",\"ids\":[\"1\"]}",
          b"{\"provider\":\"" + b"p" * 100 + b"\",\"ids\":[\"1\"]}",
          b"{\"provider\":\"items\",\"ids\":[\"1\"],\"chunk_size\":0}",
          b"{\"provider\":\"items\",\"ids\":[\"1\"],\"chunk_size\":-1}",
          b"{\"provider\":\"items\",\"ids\":[\"1\"],\"chunk_size\":1e12}",
          b"{\"provider\":\"items\",\"ids\":[\"1\"],\"chunk_size\":\"5\"}",
          b"{\"provider\":\"items\",\"ids\":[\"1\"],\"priority\":\"urgent\"}",
          b"{\"provider\":\"items\",\"ids\":[\"1\"],\"dry_run\":\"yes\"}",
          b"{\"provider\":\"items\",\"ids\":[\"\xff\"]}", b"\x00\x00\x00",
          b"{\"provider\":\"items\",\"ids\":[\"1\"]} trailing",
          b"[" * 100000, b"{\"a\":" * 50000]
for b in bodies:
    run("body POST /jobs", b, req(b"POST", b"/jobs", b"Content-Type: application/json\r\n", b))
for b in [b"{}", b"x" * 100000, b"\x00"]:
    run("body on a GET", b, req(b"GET", b"/jobs/bad%7Bid", body=b))
    run("body on a job verb", b, req(b"POST", b"/jobs/a%0A/cancel", body=b))

print("\n".join(out))
PY
timeout 50 python3 "$D/hostile.py" "$PORT" "$J" >"$D/answers" 2>"$D/py.err"
check "hostile requests sent" test -s "$D/answers"
[ -s "$D/py.err" ] && cat "$D/py.err"

# one check per group: every answer as expected
nreq=$(wc -l <"$D/answers")
while IFS= read -r g; do
  bad=$(awk -F'\t' -v g="$g" '$1 == g {
      ok = ($3 == "4xx") ? ($2 >= 400 && $2 < 500) : ($2 == $3)
      if (!ok) printf "%s -> %s (want %s); ", $4, $2, $3 }' "$D/answers")
  n=$(awk -F'\t' -v g="$g" '$1 == g' "$D/answers" | wc -l)
  if [ -z "$bad" ]; then ok "statusd $g: $n requests, all refused"; else fail "statusd $g" "$bad"; fi
done < <(cut -f1 "$D/answers" | awk '!seen[$0]++')
echo "statusd hostile requests: $nreq"

check "statusd alive after" kill -0 "$SDPID"
eq "statusd answers /health after" 200 "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/health")"
eq "the real job still served" 200 "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/jobs/$J")"
sleep 0.2
kill "$MONPID" 2>/dev/null
wait "$MONPID" 2>/dev/null
snapshot >"$D/after"
if cmp -s "$D/before" "$D/after"; then
  ok "no key created, removed or changed ($(wc -l <"$D/after") keys)"
else
  fail "no key touched" "$(diff "$D/before" "$D/after" | head -10)"
fi

# Every key named in a command seen by MONITOR (ours and the scripts') is
# under farm:, and every hash tag in it is a valid queue/provider name.
cat >"$D/monitor.py" <<'PY'
import re, sys
tok = re.compile(r'"((?:[^"\\]|\\.)*)"')
def unq(s):
    return re.sub(r'\\x([0-9a-fA-F]{2})|\\(.)', lambda m: chr(int(m.group(1), 16)) if m.group(1)
                  else {"n": "\n", "r": "\r", "t": "\t", "a": "\a", "b": "\b"}.get(m.group(2), m.group(2)), s)
keyless = {"ping", "info", "client", "script", "select", "auth", "hello", "multi", "exec", "discard",
           "time", "command", "quit", "echo", "role", "readonly", "scan", "wait", "monitor"}
forbidden = {"flushall", "flushdb", "keys", "config", "debug", "shutdown", "save", "bgsave", "module",
             "migrate", "restore", "swapdb", "replicaof", "slaveof", "acl"}
multi = {"del", "unlink", "exists", "touch", "mget", "watch", "subscribe", "unsubscribe",
         "psubscribe", "punsubscribe", "ssubscribe"}
good_tag = re.compile(r'^[A-Za-z0-9_.-]{1,64}$')
bad = []; n = 0
for line in open(sys.argv[1], errors="replace"):
    args = [unq(a) for a in tok.findall(line)]
    if not args:
        continue
    cmd, args = args[0].lower(), args[1:]
    n += 1
    if cmd in forbidden:
        bad.append("forbidden command " + cmd); continue
    if cmd in keyless:
        continue
    if cmd in ("eval", "evalsha", "eval_ro", "evalsha_ro", "fcall"):
        keys = args[2:2 + int(args[1])] if len(args) > 1 and args[1].isdigit() else []
    elif cmd in multi:
        keys = args
    elif cmd in ("blmove", "lmove", "rpoplpush", "brpoplpush", "smove"):
        keys = args[:2]
    elif cmd in ("blpop", "brpop", "bzpopmin", "bzpopmax"):
        keys = args[:-1]
    else:
        keys = args[:1]
    for k in keys:
        m = re.search(r'\{([^}]*)\}', k)
        if not k.startswith("farm:") or "\n" in k or "\0" in k or (m and not good_tag.match(m.group(1))):
            bad.append("%s %r" % (cmd, k))
print(n)
for b in bad[:10]:
    print("BAD " + b)
PY
mon=$(python3 "$D/monitor.py" "$D/monitor.log")
nmon=$(echo "$mon" | head -1)
if echo "$mon" | grep -q '^BAD'; then
  fail "MONITOR: every key under farm: with a valid hash tag" "$(echo "$mon" | grep '^BAD')"
elif [ "${nmon:-0}" -gt 0 ]; then
  ok "MONITOR: $nmon commands, every key under farm: with a valid hash tag"
else
  fail "MONITOR saw commands" "$(head -5 "$D/monitor.log")"
fi
kill -TERM "$SDPID"
rc=0
wait "$SDPID" || rc=$?
eq "statusd exits 0 on SIGTERM after all that" 0 "$rc"
# no hostile byte split a log line: every line starts with a timestamp
badlog=$(grep -cvE '^[0-9]{4}-[0-9]{2}-[0-9]{2}T' "$D/statusd.log")
eq "statusd log: no line forged by a hostile request" 0 "$badlog"
ef_finish
