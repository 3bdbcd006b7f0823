"""redis-py as an ACL user: username= and password=.

Usage: acl_user.py HOST PORT USER PASSWORD

Writes and reads a key under app1:, then tries a key outside its pattern
and FLUSHALL, and prints one line per step.
"""
import sys

import redis

host, port, user, password = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
r = redis.Redis(host=host, port=port, username=user, password=password, socket_timeout=10)
print("whoami", r.acl_whoami())
r.set("app1:sess", "v", ex=60)
print("get", r.get("app1:sess").decode())
for name, call in (("other", lambda: r.get("other")), ("flushall", lambda: r.flushall())):
    try:
        call()
        print(name, "allowed")
    except redis.exceptions.NoPermissionError as e:
        print(name, "NOPERM", e)
