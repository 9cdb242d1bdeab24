# SPDX-License-Identifier: MIT
# RQ peer, the job function: the farm's per-entity work done the RQ way.
# GET BASE/item/{id} on a persistent keep-alive http.client connection (one
# per worker process, reopened if the server closed it), json.loads, and on
# 200 HSET result:items:{id} title on the worker's own Redis connection
# (rq.get_current_connection); 404 is "not found", anything else raises
# (RQ records the failure).  Keeps first/last timestamps for worker.py.
import http.client
import json
import os
import time

from rq import get_current_connection

_conn = None
first_ms = 0
last_ms = 0
done = 0


def _get(path):
    global _conn
    for attempt in (0, 1):
        if _conn is None:
            host, port = os.environ["BENCH_BASE"].split("//", 1)[1].split(":")
            _conn = http.client.HTTPConnection(host, int(port), timeout=5)
        try:
            _conn.request("GET", path)
            res = _conn.getresponse()
            return res.status, res.read()
        except (http.client.HTTPException, OSError):
            _conn.close()
            _conn = None
            if attempt:
                raise


def enrich(entity_id):
    global first_ms, last_ms, done
    if not first_ms:
        first_ms = int(time.time() * 1000)
    status, body = _get("/item/%s" % entity_id)
    if status == 200:
        doc = json.loads(body)
        get_current_connection().hset("result:items:%s" % entity_id, "title", str(doc["title"]))
    elif status != 404:
        raise RuntimeError("HTTP %d" % status)
    last_ms = int(time.time() * 1000)
    done += 1
