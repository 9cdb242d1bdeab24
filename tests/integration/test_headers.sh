#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# ef-test: parallel
# Every header a recipe declares reaches the provider: a step with 20
# headers (the recipe allows up to 32), received by a tiny listener that
# records what it is sent.  Before the fix headers 17 and on were dropped.
source "$(dirname "$0")/lib.sh"
ef_setup
D=$EF_TMP

cat >"$D/listen.py" <<'PY'
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        with open(sys.argv[2], "a") as f:
            for k, v in self.headers.items():
                f.write("%s: %s\n" % (k, v))
        body = b'{"title":"t"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
s = http.server.HTTPServer(("127.0.0.1", 0), H)
open(sys.argv[1] + ".tmp", "w").write(str(s.server_address[1]))
import os; os.rename(sys.argv[1] + ".tmp", sys.argv[1])
s.serve_forever()
PY
ef_spawn "$D/listen.log" python3 "$D/listen.py" "$D/port" "$D/headers"
ef_wait_for 10 'test -s "$D/port"' || { fail "listener started" "no port"; ef_finish; }
PORT=$(cat "$D/port")
hdrs=$(for i in $(seq 1 20); do printf '%s"X-H%d: v%d-{id}"' "$([ "$i" -gt 1 ] && echo ,)" "$i" "$i"; done)
cat >"$D/p.json" <<JSON
{"providers": {"items": {
   "steps": [{"method": "GET", "url": "http://127.0.0.1:$PORT/item/{id}", "headers": [$hdrs]}],
   "extract": {"title": "/title"}, "timeout_ms": 5000, "retries": 0}}}
JSON
id=$(echo 7 | "$BIN/enqueuer" --provider items - 2>/dev/null)
ef_worker_start "$D/w.log" --providers "$D/p.json"
if ef_wait_job "$id" completed 20; then ok "job completes"; else fail "job completes" "$(job_field "$id" status)"; fi
got=$(cat "$D/headers" 2>/dev/null)
contains "header 1 arrived" "X-H1: v1-7" "$got"
contains "header 16 arrived" "X-H16: v16-7" "$got"
contains "header 17 arrived" "X-H17: v17-7" "$got"
contains "header 20 arrived" "X-H20: v20-7" "$got"
eq "all 20 headers arrived" 20 "$(grep -c '^X-H' <<<"$got")"
ef_finish
