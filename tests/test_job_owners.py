"""Jobs shared by several processes, in one test process: each `Jobs` here is one process's
(its own owner id), all on one database. tests/test_jobs_processes.py does the same with
real `appliance serve` processes."""

import json
import sqlite3
import subprocess
import sys
import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.exc import OperationalError

from appliance.db import db, utcnow
from appliance.jobs import JobKind, Jobs
from appliance.models import JobRun, JobSchedule
from appliance.validation import Conflict
from tests import postgres_server
from tests.servers import wait_until

gate = threading.Event()


def held(ctx):
    ctx.progress(10, "waiting for the test")
    assert gate.wait(30)


def quick(ctx):
    ctx.count(done=1)


def every_hour(spec, now):
    return now + timedelta(hours=1)


def database_gone(ctx):
    raise OperationalError("SELECT 1", {}, Exception("server closed the connection "
                                                    "unexpectedly\nsecond line"))


KINDS = [JobKind("held", "Held job", held), JobKind("quick", "Quick job", quick),
         JobKind("tick.a", "Schedule A", quick, next_run=every_hour),
         JobKind("tick.b", "Schedule B", quick, next_run=every_hour),
         JobKind("gone", "Database gone", database_gone)]


@pytest.fixture
def two(make_app):
    """Two processes' job runners on one database, beating every 0.1 s."""
    gate.clear()
    app = make_app(JOB_HEARTBEAT_SECONDS=0.1, JOB_STALE_BEATS=3)
    runners = [Jobs(app, KINDS), Jobs(app, KINDS)]
    yield app, runners
    gate.set()
    for j in runners:
        j.shutdown()


def state(run_id: int) -> JobRun:
    db.session.expire_all()
    return db.session.get(JobRun, run_id)


def test_owners_are_told_apart(two):
    app, (a, b) = two
    assert a.owner.id != b.owner.id
    host, pid, token = a.owner.id.rsplit(":", 2)
    assert pid.isdigit() and len(token) > 8 and host


def test_a_live_run_survives_another_start_up_and_a_second_start_is_refused(two):
    app, (a, b) = two
    with app.app_context():
        run, created = a.submit("held", "t:1", label="Held for t:1")
        assert created
        assert wait_until(lambda: state(run.id).progress == 10)
        started = state(run.id).heartbeat_at
        assert state(run.id).owner == a.owner.id
        assert b.recover() == 0  # the other process's start-up
        # The owner beats: its heartbeat moves on while the run is held.
        assert wait_until(lambda: state(run.id).heartbeat_at > started)
        assert b.owner.sweep() == 0  # the other process's periodic check
        for j in (a, b):
            again, created = j.submit("held", "t:1")
            assert (again.id, created) == (run.id, False)
            with pytest.raises(Conflict) as refused:
                j.start_run("held", "t:1")
            assert refused.value.rule() == "already_running"
            assert str(refused.value).startswith(f"Held for t:1 is already running (job run "
                                                 f"#{run.id}, running since ")
            assert f"pid {a.owner.id.split(':')[1]})" in str(refused.value)
        # Another kind on the same target, or the same kind on another target, may run.
        other, created = b.submit("quick", "t:1")
        assert created and b.wait(other.id).state == "succeeded"
        gate.set()
        assert a.wait(run.id).state == "succeeded"
        assert a.submit("held", "t:1")[1]  # ended: it may start again


def test_a_run_whose_owner_stopped_beating_is_interrupted_by_whoever_notices(two):
    app, (a, b) = two
    now = utcnow()
    with app.app_context():
        fresh = JobRun(kind="quick", target="fresh", state="running", owner="elsewhere:42:x-1",
                       heartbeat_at=now - timedelta(seconds=0.2))
        stale = JobRun(kind="quick", target="stale", state="running", owner="elsewhere:43:x-2",
                       heartbeat_at=now - timedelta(seconds=0.4), counts='{"done": 3}')
        db.session.add_all([fresh, stale])
        db.session.commit()
        assert a.owner.sweep(now) == 1  # stale after 3 beats of 0.1 s
        assert b.owner.sweep(now) == 0  # already done, by the first that noticed
        assert (state(stale.id).state, state(stale.id).message, state(stale.id).counts) == (
            "interrupted", "The appliance stopped while this job was running", '{"done": 3}')
        assert state(stale.id).finished_at == now
        assert state(fresh.id).state == "running"


def test_at_start_up_runs_of_a_dead_process_of_this_machine_are_interrupted_at_once(two):
    app, (a, b) = two
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    dead_pid = int(gone.stdout)
    host, _pid, token = a.owner.id.rsplit(":", 2)
    node = token.split("-")[0]
    with app.app_context():
        run = JobRun(kind="quick", target="d", state="running", heartbeat_at=utcnow(),
                     owner=f"{host}:{dead_pid}:{node}-deadbeef")
        elsewhere = JobRun(kind="quick", target="e", state="running", heartbeat_at=utcnow(),
                           owner=f"another-host:{dead_pid}:{node}-deadbeef")
        db.session.add_all([run, elsewhere])
        db.session.commit()
        assert b.owner.sweep() == 0  # the periodic check goes by heartbeats only
        assert b.recover() == 1
        assert state(run.id).state == "interrupted"
        assert state(elsewhere.id).state == "running"  # another machine: its heartbeat decides


def test_a_web_process_queues_and_a_worker_process_runs(make_app):
    web_app = make_app(ROLE="web")
    worker_app = make_app()
    web, worker = Jobs(web_app, KINDS), Jobs(worker_app, KINDS)
    try:
        with web_app.app_context():
            run, created = web.submit("quick", "q:1")
            assert created and run.state == "queued"  # a web process only queues it
        with worker_app.app_context():
            assert state(run.id).state == "queued"
            assert worker.dispatch() == 1
            done = worker.wait(run.id)
            assert (done.state, done.owner, json.loads(done.counts)) == (
                "succeeded", worker.owner.id, {"done": 1})
            assert worker.dispatch() == 0
    finally:
        web.shutdown()
        worker.shutdown()


def test_a_worker_offers_no_more_than_its_free_workers(make_app):
    gate.clear()
    app = make_app(JOB_WORKERS=1, ROLE="web")
    queuer = Jobs(app, KINDS)
    worker_app = make_app(JOB_WORKERS=1)
    worker = Jobs(worker_app, KINDS)
    try:
        with app.app_context():
            first = queuer.submit("held", "w:1")[0].id
            second = queuer.submit("held", "w:2")[0].id
        with worker_app.app_context():
            assert worker.dispatch() == 1
            assert wait_until(lambda: state(first).state == "running")
            assert worker.dispatch() == 0 and state(second).state == "queued"
            gate.set()
            worker.wait(first)
            assert wait_until(lambda: worker.dispatch() == 1)
            assert worker.wait(second).state == "succeeded"
    finally:
        gate.set()
        queuer.shutdown()
        worker.shutdown()


def test_schedules_due_together_each_fire_exactly_once_whoever_ticks(two):
    app, (a, b) = two
    due = utcnow().replace(second=0, microsecond=0)
    with app.app_context():
        for kind in ("tick.a", "tick.b"):  # the same target, as the built-in ones share "host"
            db.session.add(JobSchedule(kind=kind, target="host", spec="{}", next_run_at=due))
        db.session.commit()
    start = threading.Barrier(4)
    started: list[int] = []

    def tick(j):
        with app.app_context():
            start.wait()
            started.extend(j.tick(now=due + timedelta(seconds=30)))

    threads = [threading.Thread(target=tick, args=(j,)) for j in (a, b, a, b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    with app.app_context():
        runs = db.session.execute(select(JobRun.kind, func.count()).where(
            JobRun.triggered_by == "schedule").group_by(JobRun.kind)).all()
        assert dict(runs) == {"tick.a": 1, "tick.b": 1} and len(started) == 2
        scheds = db.session.scalars(select(JobSchedule).where(
            JobSchedule.kind.in_(["tick.a", "tick.b"]))).all()
        assert {s.next_run_at for s in scheds} == {due + timedelta(seconds=30, hours=1)}
        assert sorted(s.last_run_id for s in scheds) == sorted(started)
        for run_id in started:
            assert a.wait(run_id).state == "succeeded"


def test_a_schedule_whose_due_time_another_process_claimed_is_not_fired_again(two):
    app, (a, b) = two
    due = utcnow() - timedelta(minutes=1)
    with app.app_context():
        db.session.add(JobSchedule(kind="tick.a", target="host", spec="{}", next_run_at=due))
        db.session.commit()
        # b read the schedule as due; a fires it first; b's claim then matches nothing.
        db.session.execute(update(JobSchedule).values(next_run_at=due + timedelta(hours=1)))
        db.session.commit()
        claimed = db.session.execute(update(JobSchedule).where(
            JobSchedule.next_run_at == due).values(next_run_at=None)).rowcount
        db.session.rollback()
        assert claimed == 0
        assert b.tick(now=due + timedelta(seconds=1)) == []


def test_a_job_whose_database_went_away_fails_with_the_reason(two, monkeypatch):
    """The job's own query fails, and so does recording its end at first: the end is
    recorded at a later heartbeat, once the database answers again."""
    app, (a, _b) = two
    real = Jobs._write_end
    failures = iter([True, True])

    def flaky(self, run_id, values):
        if next(failures, False):
            raise OperationalError("UPDATE job_run", {}, Exception("connection refused"))
        return real(self, run_id, values)

    monkeypatch.setattr(Jobs, "_write_end", flaky)
    with app.app_context():
        run, _ = a.submit("gone", "g:1")
        assert wait_until(lambda: state(run.id).state == "failed", timeout=10)
        done = state(run.id)
        assert done.message == ("The database could not be used: OperationalError: "
                                "(builtins.Exception) server closed the connection unexpectedly")
        assert done.finished_at is not None and next(failures, "used") == "used"


def writes_when_let(ctx):
    assert gate.wait(30)
    db.session.execute(update(JobRun).where(JobRun.id == ctx.run_id).values(label="written"))
    db.session.commit()


def test_a_job_that_finds_the_database_locked_fails_saying_so_once_it_can(make_app):
    """SQLite's form of a database gone away: another process holds its write lock longer
    than APPLIANCE_DB_BUSY_SECONDS (test_a_job_whose_database_went_away_fails_with_the_reason
    is the same on any store, with the failures made up)."""
    app = make_app(JOB_HEARTBEAT_SECONDS=0.1, DB_BUSY_SECONDS=0.3)
    url = app.config["SQLALCHEMY_DATABASE_URI"]
    if not url.startswith("sqlite"):
        pytest.skip("holds SQLite's file lock; on PostgreSQL the made-up failures test covers it")
    jobs = Jobs(app, [*KINDS, JobKind("writer", "Writer", writes_when_let)])
    gate.clear()
    lock = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
    try:
        with app.app_context():
            run_id = jobs.submit("writer", "w")[0].id
            assert wait_until(lambda: state(run_id).state == "running")
            lock.execute("BEGIN EXCLUSIVE")
            gate.set()
            # The job's write and then the write of its end wait 0.3 s and give up.
            assert wait_until(lambda: run_id in jobs._unrecorded, timeout=10)
            assert state(run_id).state == "running"
            lock.execute("ROLLBACK")
            assert wait_until(lambda: state(run_id).state == "failed", timeout=10)
            done = state(run_id)
            assert done.message == ("The database could not be used: OperationalError: "
                                    "(sqlite3.OperationalError) database is locked")
            assert done.label == "Writer" and done.finished_at is not None
    finally:
        lock.close()
        gate.set()
        jobs.shutdown()


def test_a_stale_run_whose_row_a_transaction_holds_is_left_to_it(two):
    """On PostgreSQL a job that holds its own run's row locked (counts written with its
    work) is alive whatever its heartbeat says: the sweep passes it by until it lets go."""
    app, (a, _b) = two
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        pytest.skip("row locks are PostgreSQL's; SQLite locks the whole file")
    with app.app_context():
        run = JobRun(kind="quick", target="locked", state="running", owner="elsewhere:7:x-1",
                     heartbeat_at=utcnow() - timedelta(minutes=1))
        db.session.add(run)
        db.session.commit()
        with db.engine.connect() as holder:
            holder.execute(select(JobRun.id).where(JobRun.id == run.id).with_for_update())
            assert a.owner.sweep() == 0
            holder.rollback()
        assert a.owner.sweep() == 1 and state(run.id).state == "interrupted"


@pytest.mark.skipif(not postgres_server.enabled(), reason="PostgreSQL's own (a cluster of "
                    "this module's, stopped under it): runs in make test-pg (CI runs both)")
def test_a_job_running_when_postgresql_stops_fails_with_the_reason(own_cluster, make_app):
    app = make_app(DATABASE_URL=own_cluster.create_database(own_cluster.new_name()),
                   JOB_HEARTBEAT_SECONDS=0.1)
    jobs = Jobs(app, [*KINDS, JobKind("writer", "Writer", writes_when_let)])
    gate.clear()
    try:
        with app.app_context():
            run_id = jobs.submit("writer", "w")[0].id
            assert wait_until(lambda: state(run_id).state == "running")
            db.session.remove()
            own_cluster.stop_server()  # the job's connection is cut; new ones are refused
            try:
                gate.set()
                assert wait_until(lambda: run_id in jobs._unrecorded, timeout=15)
            finally:
                own_cluster.start_server()
            assert wait_until(lambda: state(run_id).state == "failed", timeout=15)
            done = state(run_id)
            assert done.message == ("The database could not be used: OperationalError: "
                                    "(psycopg.errors.AdminShutdown) terminating connection "
                                    "due to administrator command")
            assert done.label == "Writer" and done.finished_at is not None
    finally:
        gate.set()
        jobs.shutdown()
        with app.app_context():
            db.engine.dispose()
