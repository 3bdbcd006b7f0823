"""One request of a Django application whose sessions live in the cache
backend, with django-redis as the cache (Debian python3-django-redis):
SESSION_ENGINE = "django.contrib.sessions.backends.cache".

Usage: HATCHECK_ADDR=host:port [SESSION_TTL=s] python3 django_session.py ACTION [ID]
Actions as in ../php/session.php.
"""
import json
import sys
import time

import django_app

django_app.setup()

from django.contrib.sessions.backends.cache import SessionStore  # noqa: E402

action = sys.argv[1]
session = SessionStore(session_key=sys.argv[2] if len(sys.argv) > 2 else None)
if action == "create":
    session["n"] = 0
    session["user"] = "alice"
    session.save()
    print(session.session_key)
elif action == "read":
    data = dict(session.items())
    print(json.dumps(data, sort_keys=True, separators=(",", ":")) if data else "[]")
elif action == "incr":
    n = session["n"]
    time.sleep(0.03)
    session["n"] = n + 1
    session.save()
elif action == "regenerate":
    session.cycle_key()
    print(session.session_key)
elif action == "destroy":
    session.delete()
else:
    sys.exit("unknown action " + action)
