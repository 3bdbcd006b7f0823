"""One request of a Flask application with Flask-Session's Redis interface
(Debian python3-flask-session over redis-py), driven by Flask's test
client with the session cookie, as a browser sends it.
Flask-Session has no id regeneration: regenerate copies the data into a
new session and clears the old one, as an application does.

Usage: HATCHECK_ADDR=host:port [SESSION_TTL=s] python3 flask_session_app.py ACTION [ID]
Actions as in ../php/session.php.
"""
import datetime
import json
import os
import sys
import time
import warnings

# Debian's Flask-Session 0.3.2 reads app.config["SESSION_COOKIE_NAME"], which Flask
# 2.2 deprecates: not this test's concern.
warnings.simplefilter("ignore", DeprecationWarning)

import redis
from flask import Flask, session
from flask_session import Session

host, port = os.environ["HATCHECK_ADDR"].rsplit(":", 1)
app = Flask(__name__)
app.config.update(
    SESSION_TYPE="redis",
    SESSION_PERMANENT=False,  # no "_permanent" key: a cleared session is deleted
    SESSION_REDIS=redis.Redis(host=host, port=int(port), password=os.environ.get("HATCHECK_PASSWORD") or None),
    PERMANENT_SESSION_LIFETIME=datetime.timedelta(seconds=int(os.environ.get("SESSION_TTL", "1440"))),
)
Session(app)
action = sys.argv[1]
sid = sys.argv[2] if len(sys.argv) > 2 else None
out = []


@app.route("/<act>")
def handle(act):
    if act == "create":
        session["n"] = 0
        session["user"] = "alice"
    elif act == "read":
        data = dict(session)
        out.append(json.dumps(data, sort_keys=True, separators=(",", ":")) if data else "[]")
    elif act == "incr":
        n = session["n"]
        time.sleep(0.03)
        session["n"] = n + 1
    elif act == "take":  # first half of regenerate: read and clear the old session
        out.append(dict(session))
        session.clear()
    elif act == "put":  # second half: the data in a new session
        session.update(json.loads(os.environ["SESSION_DATA"]))
    elif act == "destroy":
        session.clear()
    else:
        raise SystemExit("unknown action " + act)
    return "ok"


def request(act, cookie):
    client = app.test_client()
    if cookie:
        client.set_cookie("localhost", app.config["SESSION_COOKIE_NAME"], cookie)
    resp = client.get("/" + act)
    assert resp.status_code == 200, resp.status_code
    for header in resp.headers.getlist("Set-Cookie"):
        name, _, rest = header.partition("=")
        if name == app.config["SESSION_COOKIE_NAME"]:
            return rest.split(";", 1)[0]
    return ""


if action == "regenerate":
    request("take", sid)
    os.environ["SESSION_DATA"] = json.dumps(out.pop())
    print(request("put", None))
else:
    new = request(action, sid)
    for line in out:
        print(line)
    if action == "create":
        print(new)
