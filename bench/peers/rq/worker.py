# SPDX-License-Identifier: MIT
# RQ peer, worker side: one rq.SimpleWorker (jobs run in the worker process,
# no fork per job: RQ's documented fast path) in burst mode (exits when the
# queue is empty).  RQ runs one job at a time per process; bench/run starts
# several.  Prints one JSON line: first_ms, last_ms, done, rss_hwm_kb.
# usage: worker.py REDIS_SOCKET
import json
import logging
import sys

from redis import Redis
from rq import Queue, SimpleWorker

import tasks


def main():
    r = Redis(unix_socket_path=sys.argv[1])
    w = SimpleWorker([Queue("bench", connection=r)], connection=r)
    w.work(burst=True, logging_level="WARNING")
    hwm = 0
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                hwm = int(line.split()[1])
    print(json.dumps({"first_ms": tasks.first_ms, "last_ms": tasks.last_ms, "done": tasks.done,
                      "rss_hwm_kb": hwm}))


logging.basicConfig(level=logging.WARNING)
main()
