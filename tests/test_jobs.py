"""The jobs service: runs, one per target, progress, schedules, interruption."""

import json
import threading
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from appliance.db import db, utcnow
from appliance.jobs import JobFailed, JobKind, Jobs
from appliance.models import JobRun, JobSchedule

gate = threading.Event()


def slow(ctx):
    ctx.progress(40, "halfway")
    ctx.count(added=3)
    assert gate.wait(10)


def boom(ctx):
    raise JobFailed("LDAP bind failed: invalid credentials")


def every_hour(spec, now):
    return now + timedelta(hours=1)


def clash(ctx):
    """Break a unique constraint in the job's session, as a buggy job could."""
    db.session.add_all([JobSchedule(kind="x", target="same", spec="{}"),
                        JobSchedule(kind="x", target="same", spec="{}")])
    db.session.flush()


KINDS = [JobKind("slow", "Slow job", slow, next_run=every_hour),
         JobKind("boom", "Failing job", boom), JobKind("clash", "Clashing job", clash)]


@pytest.fixture
def jobs(app):
    j = Jobs(app, KINDS)
    yield j
    gate.set()
    j.shutdown()


def test_run_reports_progress_then_succeeds(app, jobs):
    gate.clear()
    with app.app_context():
        run, created = jobs.submit("slow", "t:1")
        assert created
        for _ in range(200):
            db.session.expire_all()
            if db.session.get(JobRun, run.id).counts != "{}":
                break
            threading.Event().wait(0.02)
        live = db.session.get(JobRun, run.id)
        assert (live.state, live.message, json.loads(live.counts)) == \
            ("running", "halfway", {"added": 3})
        again, created = jobs.submit("slow", "t:1")  # one run at a time per target
        assert not created and again.id == run.id
        gate.set()
        done = jobs.wait(run.id)
        assert (done.state, done.progress) == ("succeeded", 100)


def test_failure_keeps_the_message(app, jobs):
    with app.app_context():
        run, _ = jobs.submit("boom", "t:2")
        done = jobs.wait(run.id)
        assert (done.state, done.message) == ("failed", "LDAP bind failed: invalid credentials")


def test_progress_partial_polls_while_active_and_stops_when_ended(app, admin, jobs):
    gate.clear()
    with app.app_context():
        run, _ = jobs.submit("slow", "t:3")
    active = admin.get(f"/jobs/{run.id}/progress", htmx=True).get_data(as_text=True)
    assert 'hx-trigger="every 1s"' in active
    gate.set()
    with app.app_context():
        jobs.wait(run.id)
    ended = admin.get(f"/jobs/{run.id}/progress", htmx=True).get_data(as_text=True)
    assert "every 1s" not in ended and 'data-state="succeeded"' in ended
    assert "added: 3" in ended


def test_schedules_survive_a_restart_and_tick_starts_due_runs(app, jobs, make_app):
    gate.set()
    with app.app_context():
        jobs.schedule("slow", "t:4", {"every": "hour"}, now=datetime(2026, 1, 1, 9))
        db.session.commit()
    # A new process (a new app over the same data) sees the schedule.
    later = make_app()
    j2 = Jobs(later, KINDS)
    try:
        with later.app_context():
            sched = db.session.scalar(select(JobSchedule).where(JobSchedule.target == "t:4"))
            assert sched.next_run_at == datetime(2026, 1, 1, 10)
            assert j2.tick(now=datetime(2026, 1, 1, 9, 30)) == []
            started = j2.tick(now=datetime(2026, 1, 1, 10, 1))
            assert len(started) == 1
            assert j2.wait(started[0]).state == "succeeded"
            sched = db.session.scalar(select(JobSchedule).where(JobSchedule.target == "t:4"))
            assert sched.next_run_at == datetime(2026, 1, 1, 11, 1)
            assert sched.last_run_id == started[0]
    finally:
        j2.shutdown()


def test_schedules_of_unloaded_kinds_are_left_alone(app, jobs):
    with app.app_context():
        db.session.add(JobSchedule(kind="gone.plugin", target="x", spec="{}",
                                   next_run_at=utcnow() - timedelta(days=1)))
        db.session.commit()
        assert jobs.tick() == []
        assert db.session.scalar(select(JobSchedule).where(JobSchedule.kind == "gone.plugin"))


def test_runs_left_running_are_marked_interrupted_at_start(app, jobs):
    """A running run without a heartbeat (its process stopped) is interrupted; a queued
    one stays queued for a worker (tests/test_job_owners.py has the rest)."""
    with app.app_context():
        db.session.add_all([JobRun(kind="slow", target="a", state="running"),
                            JobRun(kind="slow", target="b", state="queued"),
                            JobRun(kind="slow", target="c", state="succeeded")])
        db.session.commit()
        assert jobs.recover() == 1
        states = dict(db.session.execute(select(JobRun.target, JobRun.state)).all())
        assert states == {"a": "interrupted", "b": "queued", "c": "succeeded"}


def test_housekeeping_job_from_the_core_runs(app, runner):
    from appliance.cli import cli

    result = runner.invoke(cli, ["jobs", "run", "housekeeping", "host"])
    assert result.exit_code == 0 and "succeeded" in result.output
    listed = runner.invoke(cli, ["jobs", "list"])
    assert "housekeeping" in listed.output


def test_jobs_api(app, api):
    with app.app_context():
        run, _ = app.extensions["appliance"].jobs.submit("housekeeping", "host")
        app.extensions["appliance"].jobs.wait(run.id)
    got = api("GET", f"/api/v1/jobs/{run.id}").get_json()
    assert got["state"] == "succeeded" and got["counts"] == {"runs_removed": 0}
    assert api("GET", "/api/v1/jobs").get_json()["total"] == 1
    assert api("GET", "/api/v1/jobs/999").status_code == 404


def test_default_schedules_are_created_once(app):
    jobs = app.extensions["appliance"].jobs
    with app.app_context():
        jobs.ensure_default_schedules()
        jobs.ensure_default_schedules()
        rows = db.session.scalars(select(JobSchedule).where(
            JobSchedule.kind == "housekeeping")).all()
        assert len(rows) == 1 and rows[0].next_run_at.hour == 3


def test_unschedule(app, jobs):
    with app.app_context():
        jobs.schedule("slow", "t:9", {})
        db.session.commit()
        jobs.unschedule("slow", "t:9")
        db.session.commit()
        assert db.session.scalar(select(JobSchedule).where(JobSchedule.target == "t:9")) is None


def test_a_job_whose_flush_fails_ends_failed_and_frees_its_target(app, jobs):
    with app.app_context():
        run, _ = jobs.submit("clash", "t:3")
        done = jobs.wait(run.id)
        assert done.state == "failed"
        assert done.message.startswith("Unexpected error: IntegrityError: (")
        assert "uq_job_schedule_kind" in done.message or "UNIQUE constraint" in done.message
        assert "[SQL:" not in done.message and "\n" not in done.message
        again, created = jobs.submit("clash", "t:3")
        assert created and jobs.wait(again.id).state == "failed"
        assert db.session.scalar(select(JobSchedule).where(JobSchedule.target == "same")) \
            is None
