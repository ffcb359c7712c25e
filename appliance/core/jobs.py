"""Core: the Jobs page with live progress, and the host's housekeeping job."""

import json
from datetime import datetime, timedelta

import click
from flask import Blueprint, current_app, jsonify, request
from flask.cli import with_appcontext
from sqlalchemy import delete, select

from appliance import auth
from appliance.api import INT, NULL_STR, STR, TIME, ApiBlueprint, obj, paged
from appliance.db import db, found, utcnow
from appliance.host import host
from appliance.jobs import ACTIVE, JobKind
from appliance.listing import Column, paginate, query_params
from appliance.models import JobRun
from appliance.plugins import declare
from appliance.ui import Panel, Tab, render, render_block

COLUMNS = [
    Column("created", "Queued (UTC)", JobRun.created_at),
    Column("kind", "Kind", JobRun.kind),
    Column("label", "Job", JobRun.label),
    Column("state", "State", JobRun.state),
    Column("progress", "Progress", JobRun.progress),
    Column("message", "Message"),
]
KEEP_RUNS_DAYS = 90

bp = Blueprint("jobs", __name__)
api = ApiBlueprint("jobs_api", __name__, url_prefix="/jobs", tag="jobs")


def as_dict(r: JobRun) -> dict:
    return {"id": r.id, "kind": r.kind, "target": r.target, "label": r.label, "state": r.state,
            "progress": r.progress, "counts": json.loads(r.counts or "{}"),
            "message": r.message, "triggered_by": r.triggered_by,
            "created_at": _iso(r.created_at), "started_at": _iso(r.started_at),
            "finished_at": _iso(r.finished_at), "owner": r.owner or None,
            "heartbeat_at": _iso(r.heartbeat_at)}


def _iso(t: datetime | None) -> str | None:
    return t.isoformat() + "Z" if t else None


def _page(args, per_page, adjustable=False):
    args = {"sort": "created", "dir": "desc", **dict(args.items())}
    return paginate(select(JobRun), COLUMNS, args, "created", search=(JobRun.label, JobRun.kind,
                    JobRun.message), per_page=per_page, tiebreak=JobRun.id,
                    adjustable=adjustable)


def _run(run_id: int) -> JobRun:
    db.session.expire_all()
    return found(JobRun, run_id, "job run")


@bp.get("/jobs")
def index():
    return render("jobs/index.html", block="table", page=_page(request.args,
                  current_app.config["PAGE_SIZE"]))


@bp.get("/jobs/<int:run_id>")
def show(run_id):
    return render("jobs/show.html", block="progress", run=_run(run_id))


@bp.get("/jobs/<int:run_id>/progress")
def progress(run_id):
    """The polling partial: it stops polling once the run has ended."""
    return render_block("jobs/show.html", "progress", run=_run(run_id))


@bp.get("/jobs/panel")
def panel():
    runs = db.session.scalars(select(JobRun).order_by(JobRun.id.desc()).limit(5)).all()
    return render_block("jobs/index.html", "panel", runs=runs)


RUN = obj(["id", "kind", "state"], id=INT, kind=STR, target=NULL_STR, label=NULL_STR,
          state=STR, progress=INT, counts={"type": "object"}, message=NULL_STR,
          triggered_by=NULL_STR, created_at=TIME, started_at=TIME, finished_at=TIME,
          owner=NULL_STR, heartbeat_at=TIME)


@api.op("", summary="Recent job runs (?q=, ?sort=, ?dir=, ?page=, ?per_page=)",
        response=paged(RUN), query=query_params(COLUMNS))
def api_list():
    return jsonify(_page(request.args, 100, adjustable=True).json(as_dict))


@api.op("/<int:run_id>", summary="One job run, with its progress", response=RUN)
def api_get(run_id):
    return jsonify(as_dict(_run(run_id)))


def housekeeping(ctx) -> None:
    """Forget old failed logins and job runs older than KEEP_RUNS_DAYS."""
    auth.prune_failures()
    ctx.progress(50)
    cutoff = utcnow() - timedelta(days=KEEP_RUNS_DAYS)
    n = db.session.execute(delete(JobRun).where(JobRun.finished_at < cutoff,
                                                JobRun.state.notin_(ACTIVE))).rowcount
    db.session.commit()
    ctx.count(runs_removed=n)


def daily(spec: dict, now: datetime) -> datetime:
    hour = int(spec.get("hour", 3))
    nxt = now.replace(hour=hour, minute=0, second=0, microsecond=0)
    return nxt if nxt > now else nxt + timedelta(days=1)


@click.group("jobs")
def jobs_cli():
    """Background jobs."""


@jobs_cli.command("list")
@click.option("--limit", default=20, show_default=True)
@with_appcontext
def jobs_list(limit):
    """Show recent job runs."""
    for r in db.session.scalars(select(JobRun).order_by(JobRun.id.desc()).limit(limit)):
        click.echo(f"#{r.id:<5} {r.state:<11} {r.progress:>3}% {r.kind:<20} {r.label} {r.message}")


@jobs_cli.command("run")
@click.argument("kind")
@click.argument("target")
@with_appcontext
def jobs_run(kind, target):
    """Run a job now and wait for it to end."""
    jobs = host().jobs
    if kind not in jobs.kinds:
        raise click.ClickException(f"Unknown job kind {kind!r}; known: {', '.join(jobs.kinds)}")
    run, _ = jobs.submit(kind, target, triggered_by="cli")
    run = jobs.wait(run.id, timeout=3600)
    click.echo(f"#{run.id} {run.state} {run.message} {run.counts}")
    if run.state != "succeeded":
        raise SystemExit(1)


declare(__name__, title="Jobs", description="Background job runs and schedules.",
        blueprints=[bp], api_blueprints=[api], nav_tabs=[Tab("Jobs", "jobs.index", order=910)],
        dashboard_panels=[Panel("Recent jobs", "jobs.panel", order=90)],
        job_kinds=[JobKind("housekeeping", "Housekeeping", housekeeping, next_run=daily,
                           default_spec={"hour": 3})],
        cli_commands=[jobs_cli])

