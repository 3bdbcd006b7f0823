"""A reliable job queue worker on redis-py (Debian python3-redis), the way
Sidekiq-style and "reliable queue" workers use lists.

Usage: job_queue.py NAME host:port

The worker moves a job from the tail of "jobs" to the head of its own
processing list with BLMOVE (a blocking wait on the node it is connected
to), prints "done <job>" once it has handled it, then removes it from the
processing list with LREM. A job whose BLMOVE reply was lost stays in the
processing list, where a reliable queue's reaper finds it. Errors (a
failover) are retried. The worker exits after three idle seconds once the
file named by STOP_FILE exists.
"""
import os
import sys
import time

import redis

name, addr = sys.argv[1], sys.argv[2]
host, port = addr.rsplit(":", 1)
r = redis.Redis(host=host, port=int(port), socket_timeout=15.0)
processing = "jobs:processing:" + name
stop_file = os.environ["STOP_FILE"]
idle = 0


def retry(fn):
    while True:
        try:
            return fn()
        except (redis.ConnectionError, redis.TimeoutError, redis.ResponseError) as e:
            print("retry", type(e).__name__, e, file=sys.stdout, flush=True)
            time.sleep(0.1)


print("ready", flush=True)
while True:
    job = retry(lambda: r.blmove("jobs", processing, 1, "RIGHT", "LEFT"))
    if job is None:
        idle += 1
        if idle >= 3 and os.path.exists(stop_file):
            break
        continue
    idle = 0
    print("done", job.decode(), flush=True)
    retry(lambda: r.lrem(processing, 1, job))
