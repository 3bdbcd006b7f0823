"""Job functions for rq_app.py, imported by the rq worker by name."""
from rq import get_current_job


def add(a, b):
    return a + b


def boom():
    return 1 / 0


def record(log, name):
    """Appends name to the list log (the order jobs ran in)."""
    get_current_job().connection.rpush(log, name)
    return name


def flaky(counter):
    """Fails on its first run, succeeds on the next."""
    if get_current_job().connection.incr(counter) < 2:
        raise RuntimeError("first attempt fails")
    return "second attempt"


def annotate():
    """Writes to the job's meta while it runs."""
    job = get_current_job()
    job.meta["progress"] = 100
    job.save_meta()
    return job.meta["given"]
