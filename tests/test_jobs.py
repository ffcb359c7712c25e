"""The jobs service: runs, one per target, progress, schedules, interruption."""

import json
import re
import threading
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from appliance import hookimpl
from appliance.auth import create_admin, new_token
from appliance.db import db, utcnow
from appliance.jobs import JobFailed, JobKind, Jobs
from appliance.models import Enterprise, JobRun, JobSchedule, User
from tests.conftest import PASSWORD, Browser

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


busy: list[str] = []  # while not empty, the "quiet" kind has work to do


def quiet(ctx):
    if busy:
        ctx.count(delivered=len(busy))
    else:
        ctx.noop("Nothing waiting")


QUIET = [JobKind("quiet", "Quiet job", quiet, next_run=every_hour)]


def _tick_and_wait(jobs, at):
    started = jobs.tick(now=at)
    assert len(started) == 1
    return jobs.wait(started[0])


def test_scheduled_noop_runs_fold_into_one_row_until_a_run_does_something(app):
    jobs = Jobs(app, QUIET)
    try:
        with app.app_context():
            jobs.schedule("quiet", "host", {}, now=datetime(2026, 1, 1, 8))
            db.session.commit()
            since = _tick_and_wait(jobs, datetime(2026, 1, 1, 9, 0, 1)).started_at
            for hour in (10, 11):
                last = _tick_and_wait(jobs, datetime(2026, 1, 1, hour, 0, 2))
            rows = db.session.scalars(select(JobRun).order_by(JobRun.id)).all()
            assert [(r.id, r.state, json.loads(r.counts), r.message) for r in rows] == \
                [(last.id, "succeeded", {"noop": 3}, "Nothing waiting")]
            assert rows[0].started_at == since < rows[0].finished_at
            busy.append("x")
            loud = _tick_and_wait(jobs, datetime(2026, 1, 1, 12, 0, 3))
            busy.clear()
            again = _tick_and_wait(jobs, datetime(2026, 1, 1, 13, 0, 4))
            by_hand, _ = jobs.submit("quiet", "host", triggered_by="admin")
            jobs.wait(by_hand.id)
            db.session.expire_all()
            rows = db.session.scalars(select(JobRun).order_by(JobRun.id)).all()
            assert [(r.id, json.loads(r.counts)) for r in rows] == [
                (last.id, {"noop": 3}), (loud.id, {"delivered": 1}), (again.id, {"noop": 1}),
                (by_hand.id, {"noop": 1})]  # a run asked for by hand is never folded
    finally:
        jobs.shutdown()


def test_flow_through_reports_a_noop_and_its_scheduled_runs_fold(app, admin):
    jobs = app.extensions["appliance"].jobs
    with app.app_context():
        for _ in range(3):
            run, _ = jobs.submit("network_elements.flow", "host", triggered_by="schedule")
            jobs.wait(run.id)
        rows = db.session.scalars(select(JobRun).where(
            JobRun.kind == "network_elements.flow")).all()
        assert [(r.state, json.loads(r.counts), r.message) for r in rows] == \
            [("succeeded", {"noop": 3}, "No change to deliver")]
        since = f"{rows[0].started_at:%Y-%m-%d %H:%M:%S}"
    shown = admin.get(f"/jobs/{rows[0].id}").get_data(as_text=True)
    assert f"No-op, 3 times since {since}, last " in shown


class Targets:
    """A plugin whose runs of target "t:acme" belong to the enterprise acme-01."""

    @hookimpl
    def appliance_job_targets(self, enterprise):
        return ["t:acme"] if enterprise.eid == "acme-01" else []


def _runs(app, rows):
    with app.app_context():
        ents = [Enterprise(name="Acme", eid="acme-01"), Enterprise(name="Globex", eid="globex-02")]
        db.session.add_all(ents)
        db.session.add_all([JobRun(kind=k, target=t, label=f"{k} {t}", state=s, counts=c)
                            for k, t, s, c in rows])
        db.session.commit()
        return [e.id for e in ents]


def test_hook_appliance_job_targets_filters_the_jobs_page_and_api(make_app):
    app = make_app(EXTRA_PLUGINS=[("targets", Targets())])
    acme, globex = _runs(app, [
        ("slow", "t:acme", "failed", "{}"), ("slow", "t:other", "succeeded", "{}"),
        ("boom", "t:acme", "succeeded", '{"noop": 143}'), ("boom", "t:x", "interrupted", "{}")])
    with app.app_context():
        create_admin("admin", PASSWORD)
        secret = new_token(db.session.scalar(select(User)), "tests")
    client = app.test_client()
    adm = Browser(client)
    adm.login()
    got = adm.get("/jobs").get_data(as_text=True)
    assert got.count("no-op, 143 times since") == 1 and 'class="noop"' in got
    assert 'id="f-enterprise"' in got and ">Acme (acme-01)</option>" in got

    def labels(query):
        html = adm.get(f"/jobs?{query}", htmx=True).get_data(as_text=True)
        return sorted(re.findall(r"<td>([a-z]+ t:[a-z]+)</td>", html))

    assert labels(f"enterprise={acme}") == ["boom t:acme", "slow t:acme"]
    assert labels(f"enterprise={globex}") == []
    assert labels("state=attention") == ["boom t:x", "slow t:acme"]
    assert labels("state=noop") == ["boom t:acme"]
    assert labels("kind=slow&state=succeeded") == ["slow t:other"]
    auth = {"Authorization": f"Bearer {secret}"}
    listed = client.get(f"/api/v1/jobs?enterprise={acme}&state=attention", headers=auth)
    assert [r["label"] for r in listed.get_json()["items"]] == ["slow t:acme"]
    noop = client.get("/api/v1/jobs?state=noop", headers=auth).get_json()["items"]
    assert [(r["label"], r["noop"]) for r in noop] == [("boom t:acme", 143)]
    bad = client.get("/api/v1/jobs?state=sleeping", headers=auth)
    assert bad.status_code == 422 and bad.get_json()["fields"][0]["field"] == "state"
    params = {p["name"] for p in client.get("/api/v1/openapi.json", headers=auth)
              .get_json()["paths"]["/api/v1/jobs"]["get"]["parameters"]}
    assert {"state", "kind", "enterprise"} <= params
