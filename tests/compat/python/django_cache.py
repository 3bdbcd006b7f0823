"""A Django application's cache through django-redis (Debian
python3-django-redis), with its sessions in that cache
(SESSION_ENGINE = "django.contrib.sessions.backends.cache").

Usage: HATCHECK_ADDR=host:port [HATCHECK_PASSWORD=p] KEY_PREFIX=p \
       python3 django_cache.py all | write | read SESSION_KEY

  all    exercises the cache API (set/get/add/incr/decr, get_many,
         set_many (a MULTI pipeline), delete_many, get_or_set, ttl, expire,
         persist, touch, keys (KEYS), iter_keys and delete_pattern (SCAN
         MATCH COUNT), incr_version, lock (redis-py's Lock: SET NX PX, Lua
         through EVALSHA)) and sessions (create, modify, load in a second
         SessionStore, cycle_key, flush), and prints "ok"
  write  stores known values and a session and prints the session key
  read   checks what write stored

Each mismatch is printed on stderr as "CHECK: got ..., want ..." and the
script exits 1. KEY_PREFIX keeps runs apart on one server.
"""
import os
import sys

import django_app

django_app.setup()

from django.contrib.sessions.backends.cache import SessionStore  # noqa: E402
from django.core.cache import cache  # noqa: E402
from django_redis import get_redis_connection  # noqa: E402

raw = get_redis_connection("default")
prefix = os.environ["KEY_PREFIX"]
failed = []


def check(what, got, want):
    if got != want:
        failed.append("%s: got %r, want %r" % (what, got, want))


def within(what, got, low, high):
    if got is None or not low <= got <= high:
        failed.append("%s: got %r, want %d..%d" % (what, got, low, high))


def finish(out):
    if failed:
        print("\n".join(failed), file=sys.stderr)
        sys.exit(1)
    print(out)


def cache_api():
    # Strings and pickled values; django-redis stores ints as plain
    # integers so that INCRBY works on them.
    check("set", cache.set("s", "value"), True)
    check("get", cache.get("s"), "value")
    check("get missing", cache.get("missing", "dflt"), "dflt")
    cache.set("obj", {"a": [1, 2.5, None], "b": ("t",)})
    check("get pickled", cache.get("obj"), {"a": [1, 2.5, None], "b": ("t",)})
    cache.set("n", 10)
    check("raw int", raw.get("%s:1:n" % prefix), b"10")
    check("has_key", cache.has_key("n"), True)
    check("has_key missing", cache.has_key("missing"), False)

    # add: SET NX PX.
    check("add new", cache.add("a", 1), True)
    check("add existing", cache.add("a", 2), False)
    check("after add", cache.get("a"), 1)

    # incr/decr: a Lua script (EXISTS then INCRBY).
    check("incr", cache.incr("n"), 11)
    check("incr 5", cache.incr("n", 5), 16)
    check("decr", cache.decr("n"), 15)
    check("decr 20", cache.decr("n", 20), -5)
    check("get after incr", cache.get("n"), -5)
    try:
        cache.incr("nope")
        failed.append("incr of a missing key: no ValueError")
    except ValueError:
        pass
    check("incr ignore_key_check", cache.incr("fresh", 3, ignore_key_check=True), 3)
    # INCRBY past 2**63-1 fails inside the script (a ResponseError);
    # django-redis then falls back to GET and SET of a pickled integer,
    # keeping the TTL.
    cache.set("big", 2**63 - 1, timeout=100)
    check("incr overflow", cache.incr("big"), 2**63)
    check("get after overflow", cache.get("big"), 2**63)
    within("ttl kept after overflow", cache.ttl("big"), 1, 100)

    # Many at once: MGET, a MULTI/EXEC pipeline, DEL with several keys.
    cache.set_many({"m1": "one", "m2": 2, "m3": [3]}, timeout=100)
    check("get_many", dict(cache.get_many(["m1", "m2", "m3", "m4"])), {"m1": "one", "m2": 2, "m3": [3]})
    within("set_many ttl", cache.ttl("m2"), 1, 100)
    check("delete_many", cache.delete_many(["m1", "m2", "m4"]), 2)
    check("get_many after delete", dict(cache.get_many(["m1", "m2", "m3"])), {"m3": [3]})
    check("delete", cache.delete("m3"), 1)
    check("delete missing", cache.delete("m3"), 0)

    # get_or_set: GET, then SET NX PX, then GET.
    check("get_or_set new", cache.get_or_set("gos", lambda: "computed"), "computed")
    check("get_or_set existing", cache.get_or_set("gos", "other"), "computed")

    # Lifetimes: TTL, EXPIRE, PERSIST, PEXPIRE (touch), SET PX.
    cache.set("t", "x", timeout=100)
    within("ttl", cache.ttl("t"), 1, 100)
    within("pttl", cache.pttl("t"), 1, 100000)
    check("ttl missing", cache.ttl("missing"), 0)
    check("persist", cache.persist("t"), True)
    check("ttl after persist", cache.ttl("t"), None)
    check("expire", cache.expire("t", 50), True)
    within("ttl after expire", cache.ttl("t"), 1, 50)
    check("touch", cache.touch("t", 500), True)
    within("ttl after touch", cache.ttl("t"), 51, 500)
    check("touch None", cache.touch("t", None), True)
    check("ttl after touch None", cache.ttl("t"), None)
    check("touch missing", cache.touch("missing", 10), False)
    cache.set("forever", "y", timeout=None)
    check("ttl of timeout=None", cache.ttl("forever"), None)
    check("set timeout=0 deletes", cache.set("forever", "z", timeout=0), True)
    check("after timeout=0", cache.get("forever"), None)

    # Versions: the value moves to key version 2 with its TTL.
    cache.set("v", "ver", timeout=100)
    check("incr_version", cache.incr_version("v"), 2)
    check("old version", cache.get("v"), None)
    check("new version", cache.get("v", version=2), "ver")
    within("new version ttl", cache.ttl("v", version=2), 1, 100)

    # KEYS and SCAN MATCH COUNT with a glob pattern.
    for i in range(30):
        cache.set("scan:%02d" % i, i)
    cache.set("scan_other", 0)
    want = sorted("scan:%02d" % i for i in range(30))
    check("keys", sorted(cache.keys("scan:*")), want)
    check("iter_keys", sorted(cache.iter_keys("scan:*", itersize=7)), want)
    check("keys ?", sorted(cache.keys("scan:0?")), want[:10])
    check("delete_pattern", cache.delete_pattern("scan:1*", itersize=4), 10)
    check("keys after delete_pattern", sorted(cache.keys("scan:*")), want[:10] + want[20:])
    check("delete_pattern none", cache.delete_pattern("scan:9*"), 0)
    check("scan_other kept", cache.get("scan_other"), 0)

    # redis-py's Lock: SET NX PX to take it, EVALSHA (SCRIPT LOAD after
    # NOSCRIPT) of its Lua scripts to release, extend and reacquire.
    lock = cache.lock("job", timeout=30)
    check("lock acquire", lock.acquire(blocking=False), True)
    check("lock owned", lock.owned(), True)
    other = cache.lock("job", timeout=30)
    check("second lock", other.acquire(blocking=False), False)
    check("locked", other.locked(), True)
    check("other owned", other.owned(), False)
    check("extend", lock.extend(30), True)
    within("ttl after extend", cache.ttl("job"), 31, 60)
    check("reacquire", lock.reacquire(), True)
    within("ttl after reacquire", cache.ttl("job"), 1, 30)
    # A holder whose lock expired and was taken by another: the release
    # script finds another token and returns 0.
    stale = cache.lock("job", timeout=30)
    stale.local.token = b"expired-holder"
    try:
        stale.release()
        failed.append("release of a lock another holds: no error")
    except Exception as e:
        check("foreign release", type(e).__name__, "LockNotOwnedError")
    check("still owned", lock.owned(), True)
    lock.release()
    check("locked after release", other.locked(), False)
    check("second lock after release", other.acquire(blocking=False), True)
    with cache.lock("ctx", timeout=10, blocking_timeout=5):
        check("with lock", cache.lock("ctx").locked(), True)
    check("after with", cache.lock("ctx").locked(), False)
    other.release()


def sessions():
    s = SessionStore()
    s["user"] = "alice"
    s["cart"] = [1, 2]
    s.save()
    key = s.session_key
    check("session key", len(key or ""), 32)
    check("session stored", raw.exists("%s:1:django.contrib.sessions.cache%s" % (prefix, key)), 1)
    within("session ttl", cache.ttl("django.contrib.sessions.cache" + key), 1, 1440)

    # A second request loads it, modifies it.
    s2 = SessionStore(session_key=key)
    check("loaded", dict(s2.items()), {"user": "alice", "cart": [1, 2]})
    s2["cart"] = s2["cart"] + [3]
    del s2["user"]
    s2.save()
    check("modified", dict(SessionStore(session_key=key).items()), {"cart": [1, 2, 3]})
    check("exists", s2.exists(key), True)

    # cycle_key: a new key with the data, the old one deleted.
    s3 = SessionStore(session_key=key)
    s3.load()
    s3.cycle_key()
    new = s3.session_key
    check("cycled key differs", new != key, True)
    check("old key gone", s3.exists(key), False)
    check("under the new key", dict(SessionStore(session_key=new).items()), {"cart": [1, 2, 3]})

    # flush (logout): the data deleted, a fresh empty session.
    s4 = SessionStore(session_key=new)
    s4.load()
    s4.flush()
    check("flushed key gone", s4.exists(new), False)
    check("after flush", dict(SessionStore(session_key=new).items()), {})

    # An unknown key is not adopted: a new key is made on save.
    s5 = SessionStore(session_key="x" * 32)
    check("unknown key empty", dict(s5.items()), {})
    s5["a"] = 1
    s5.save()
    check("unknown key replaced", s5.session_key != "x" * 32, True)


def write():
    cache.set("kept", {"k": "v"}, timeout=1000)
    cache.set("counter", 41, timeout=None)
    s = SessionStore()
    s["user"] = "bob"
    s.save()
    return s.session_key


def read(key):
    check("kept", cache.get("kept"), {"k": "v"})
    within("kept ttl", cache.ttl("kept"), 1, 1000)
    check("counter incr", cache.incr("counter"), 42)
    check("counter ttl", cache.ttl("counter"), None)
    check("session", dict(SessionStore(session_key=key).items()), {"user": "bob"})


action = sys.argv[1]
if action == "all":
    cache_api()
    sessions()
    finish("ok")
elif action == "write":
    finish(write())
elif action == "read":
    read(sys.argv[2])
    finish("ok")
else:
    sys.exit("unknown action " + action)
