"""A python3-rq (Debian, rq 1.13) application: jobs enqueued, a burst
worker, results and registries checked.

Usage: HATCHECK_ADDR=host:port [HATCHECK_PASSWORD=p] RUN=name \
       python3 rq_app.py enqueue | work | check

  enqueue  enqueues the run's jobs (fixed ids) and checks them before any
           worker: queued, deferred (depends_on), scheduled (enqueue_at,
           enqueue_in), canceled, job TTL
  work     runs rq's Worker on the run's queues in burst mode with its
           scheduler (it forks a work horse per job, as rq does), until the
           queues are empty
  check    checks the results: return values, statuses, the finished,
           failed, deferred, scheduled and canceled registries, retries,
           the order of a dependency chain, result and failure TTLs

Each mismatch is printed on stderr as "CHECK: got ..., want ..." and the
script exits 1; enqueue and check print "ok". RUN prefixes the queues and
job ids, keeping runs apart on one server.

RQ_RESULTS_IN_HASH=1 makes rq take the server for Redis 4: rq keeps a
job's result in the job's hash instead of a stream (XADD, XREVRANGE),
which it does for every server of version 5 or later.
"""
import os
import sys
import warnings
from datetime import datetime, timedelta, timezone

from redis import Redis
from rq import Queue, Retry, Worker
from rq.exceptions import NoSuchJobError
from rq.job import Job

import rq_jobs

# job.result and job.exc_info, which the brief's applications still use,
# are deprecated in rq 1.12.
warnings.filterwarnings("ignore", category=DeprecationWarning)

host, port = os.environ["HATCHECK_ADDR"].rsplit(":", 1)
conn = Redis(host=host, port=int(port), password=os.environ.get("HATCHECK_PASSWORD") or None)
if os.environ.get("RQ_RESULTS_IN_HASH"):
    # rq.utils.get_version caches the server's version on the connection.
    setattr(conn, "__rq_redis_server_version", (4, 0, 0))
run = os.environ["RUN"]
q = Queue(run, connection=conn)
high = Queue(run + "-high", connection=conn)
idle = Queue(run + "-idle", connection=conn)  # no worker listens
log = run + ":log"
failed = []


def jid(name):
    return "%s-%s" % (run, name)


def check(what, got, want):
    if got != want:
        failed.append("%s: got %r, want %r" % (what, got, want))


def within(what, got, low, high):
    if got is None or not low <= got <= high:
        failed.append("%s: got %r, want %d..%d" % (what, got, low, high))


def finish():
    if failed:
        print("\n".join(failed), file=sys.stderr)
        sys.exit(1)
    print("ok")


def job(name):
    return Job.fetch(jid(name), connection=conn)


def enqueue():
    q.enqueue(rq_jobs.add, 2, 3, job_id=jid("add"), result_ttl=100)
    q.enqueue(rq_jobs.boom, job_id=jid("boom"), failure_ttl=300)
    q.enqueue(rq_jobs.record, log, "gone", job_id=jid("no-result"), result_ttl=0)
    q.enqueue(rq_jobs.add, 1, 1, job_id=jid("kept"), result_ttl=-1)
    q.enqueue(rq_jobs.flaky, run + ":flaky", job_id=jid("flaky"), retry=Retry(max=2))
    q.enqueue(rq_jobs.annotate, job_id=jid("meta"), meta={"given": "m"})
    # A chain across two queues: c waits for b, b for a.
    a = q.enqueue(rq_jobs.record, log, "a", job_id=jid("a"))
    b = high.enqueue(rq_jobs.record, log, "b", job_id=jid("b"), depends_on=a)
    q.enqueue(rq_jobs.record, log, "c", job_id=jid("c"), depends_on=[b])
    q.enqueue(rq_jobs.record, log, "orphan", job_id=jid("after-boom"), depends_on=jid("boom"))
    # enqueue_many: one pipeline.
    q.enqueue_many([Queue.prepare_data(rq_jobs.add, (i, i), job_id=jid("many%d" % i)) for i in range(3)])
    q.enqueue_at(datetime.now(timezone.utc) - timedelta(seconds=5), rq_jobs.add, 10, 20, job_id=jid("due"))
    q.enqueue_in(timedelta(hours=1), rq_jobs.add, 0, 0, job_id=jid("later"))
    q.enqueue(rq_jobs.add, 0, 1, job_id=jid("canceled")).cancel()
    idle.enqueue(rq_jobs.add, 0, 2, job_id=jid("ttl"), ttl=1000)

    check("add status", job("add").get_status(), "queued")
    check("b status", job("b").get_status(), "deferred")
    check("c status", job("c").get_status(), "deferred")
    check("deferred registry", sorted(q.deferred_job_registry.get_job_ids()), sorted([jid("c"), jid("after-boom")]))
    check("deferred registry high", high.deferred_job_registry.get_job_ids(), [jid("b")])
    check("scheduled registry", sorted(q.scheduled_job_registry.get_job_ids()), sorted([jid("due"), jid("later")]))
    check("later status", job("later").get_status(), "scheduled")
    later = q.scheduled_job_registry.get_scheduled_time(job("later"))
    within("later scheduled in", int((later - datetime.now(timezone.utc)).total_seconds()),
           3000, 3600)
    check("canceled status", job("canceled").get_status(), "canceled")
    check("canceled registry", q.canceled_job_registry.get_job_ids(), [jid("canceled")])
    names = ["add", "boom", "no-result", "kept", "flaky", "meta", "a", "many0", "many1", "many2"]
    check("queue job ids", q.job_ids, [jid(n) for n in names])
    check("queue count", q.count, len(names))
    # A queue is listed once a job was put in it (b is only deferred).
    check("queues", sorted(x.name for x in Queue.all(connection=conn) if x.name.startswith(run)),
          [run, run + "-idle"])
    within("job ttl", conn.ttl("rq:job:" + jid("ttl")), 1, 1000)
    finish()


def work():
    w = Worker([high, q], connection=conn)
    w.work(burst=True, with_scheduler=True, logging_level="WARNING")


def check_results():
    add = job("add")
    check("add status", add.get_status(), "finished")
    check("add return_value", add.return_value(), 5)
    check("add result", add.result, 5)
    within("add result ttl", conn.ttl(add.key), 1, 100)
    check("add in finished registry", add.id in q.finished_job_registry, True)

    boom = job("boom")
    check("boom status", boom.get_status(), "failed")
    check("boom in failed registry", q.failed_job_registry.get_job_ids(), [jid("boom")])
    check("boom exc_info", "ZeroDivisionError" in (boom.exc_info or ""), True)
    within("boom failure ttl", conn.ttl(boom.key), 1, 300)
    check("after-boom stays deferred", job("after-boom").get_status(), "deferred")

    try:
        job("no-result")
        failed.append("result_ttl=0: the job is still stored")
    except NoSuchJobError:
        pass
    check("no-result not in finished registry", jid("no-result") in q.finished_job_registry, False)
    check("kept return_value", job("kept").return_value(), 2)
    check("kept ttl", conn.ttl("rq:job:" + jid("kept")), -1)

    flaky = job("flaky")
    check("flaky status", flaky.get_status(), "finished")
    check("flaky return_value", flaky.return_value(), "second attempt")
    check("flaky retries_left", flaky.retries_left, 1)
    check("flaky attempts", conn.get(run + ":flaky"), b"2")

    meta = job("meta")
    check("meta return_value", meta.return_value(), "m")
    check("meta", meta.get_meta(), {"given": "m", "progress": 100})

    check("chain order", [x.decode() for x in conn.lrange(log, 0, -1) if x in (b"a", b"b", b"c")], ["a", "b", "c"])
    check("gone ran", conn.lrange(log, 0, -1).count(b"gone"), 1)
    for name in ("a", "b", "c"):
        check(name + " status", job(name).get_status(), "finished")
    check("many", [job("many%d" % i).return_value() for i in range(3)], [0, 2, 4])
    check("due status", job("due").get_status(), "finished")
    check("due return_value", job("due").return_value(), 30)
    check("later still scheduled", q.scheduled_job_registry.get_job_ids(), [jid("later")])
    check("canceled not run", job("canceled").get_status(), "canceled")
    check("ttl job untouched", job("ttl").get_status(), "queued")

    check("queue empty", q.count, 0)
    check("high empty", high.count, 0)
    check("started registry empty", q.started_job_registry.get_job_ids(), [])
    check("deferred registry", q.deferred_job_registry.get_job_ids(), [jid("after-boom")])
    check("finished registry", sorted(q.finished_job_registry.get_job_ids()),
          sorted(jid(n) for n in ["add", "kept", "flaky", "meta", "a", "c", "many0", "many1", "many2", "due"]))
    check("workers left", [w.name for w in Worker.all(connection=conn) if run in ",".join(w.queue_names())], [])
    finish()


action = sys.argv[1]
if action == "enqueue":
    enqueue()
elif action == "work":
    work()
elif action == "check":
    check_results()
else:
    sys.exit("unknown action " + action)
