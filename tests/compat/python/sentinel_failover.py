"""redis-py's Sentinel client against a hatcheck cluster, through a leader kill.

Usage: sentinel_failover.py <service> host:port [host:port ...]

Every node is listed as a sentinel. The script writes through the master
the client discovers, prints "ready <master>", waits for a line on stdin
(the test kills the leader meanwhile), then writes until a write succeeds
again, and prints "ok <old master> -> <new master> <value read back>".
"""
import sys
import time

import redis
from redis.sentinel import Sentinel

service = sys.argv[1]
sentinels = [(a.rsplit(":", 1)[0], int(a.rsplit(":", 1)[1])) for a in sys.argv[2:]]
s = Sentinel(sentinels, socket_timeout=2.0)
before = "%s:%d" % s.discover_master(service)
master = s.master_for(service, socket_timeout=10.0)
master.set("py:session", "before")
assert master.get("py:session") == b"before"
print("ready", before, flush=True)
sys.stdin.readline()

deadline = time.time() + 20
last_error = None
while time.time() < deadline:
    try:
        master.set("py:session", "after")
        break
    except (redis.ConnectionError, redis.TimeoutError, redis.ResponseError) as e:
        last_error = e
        time.sleep(0.1)
else:
    print("fail: no write succeeded after the leader was killed:", last_error, flush=True)
    sys.exit(1)

after = "%s:%d" % s.discover_master(service)
role = master.execute_command("ROLE")[0]
value = master.get("py:session").decode()
print("ok", before, "->", after, value, role.decode() if isinstance(role, bytes) else role, flush=True)
