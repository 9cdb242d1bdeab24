# SPDX-License-Identifier: MIT
# RQ peer, enqueue side: one RQ job per entity, added with
# Queue.enqueue_many in batches of 1000 on one pipeline (RQ's documented
# bulk path), result_ttl=0 (no result kept: the fast path for
# fire-and-forget jobs).  usage: enqueue.py REDIS_SOCKET IDS_FILE
import sys

from redis import Redis
from rq import Queue

import tasks


def main():
    sock, path = sys.argv[1], sys.argv[2]
    r = Redis(unix_socket_path=sock)
    q = Queue("bench", connection=r)
    with open(path) as f:
        ids = [line.strip() for line in f if line.strip()]
    for i in range(0, len(ids), 1000):
        datas = [Queue.prepare_data(tasks.enrich, args=(x,), result_ttl=0) for x in ids[i:i + 1000]]
        with r.pipeline() as pipe:
            q.enqueue_many(datas, pipeline=pipe)
            pipe.execute()
    print(len(ids))


main()
