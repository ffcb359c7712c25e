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
from appliance.hookspecs import hookimpl
from appliance.host import host
from appliance.job_history import ATTENTION, NOOP, noops
from appliance.jobs import ACTIVE, ENDED, JobKind
from appliance.listing import Column, paginate, query_params
from appliance.models import Enterprise, JobRun
from appliance.plugins import declare
from appliance.summary import Figure, Summary, when
from appliance.ui import Tab, render, render_block
from appliance.validation import Field, max_length, one_of

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


#: ?state= of the list: a run's state, or "attention" (failed or interrupted), or "noop".
STATES = (*ACTIVE, *ENDED, "attention", NOOP)
FILTERS = (Field("state", "State", (one_of(STATES),), required=False),
           Field("kind", "Kind", (max_length(64),), required=False),
           Field("enterprise", "Enterprise", required=False, type="integer"))
#: How far back the home page looks for runs that need attention.
ATTENTION_DAYS = 7


def as_dict(r: JobRun) -> dict:
    return {"id": r.id, "kind": r.kind, "target": r.target, "label": r.label, "state": r.state,
            "noop": noops(r.counts), "progress": r.progress, "counts": json.loads(r.counts or "{}"),
            "message": r.message, "triggered_by": r.triggered_by,
            "created_at": _iso(r.created_at), "started_at": _iso(r.started_at),
            "finished_at": _iso(r.finished_at), "owner": r.owner or None,
            "heartbeat_at": _iso(r.heartbeat_at)}


def _iso(t: datetime | None) -> str | None:
    return t.isoformat() + "Z" if t else None


def filtered(args):
    """The runs ?state=, ?kind= and ?enterprise= (an enterprise's id: the runs whose target
    a plugin names for it, appliance_job_targets) keep; Invalid for a bad value."""
    state, kind, ent_id = (f.clean(args.get(f.name)) for f in FILTERS)
    stmt = select(JobRun)
    if state == "attention":
        stmt = stmt.where(JobRun.state.in_(ATTENTION))
    elif state == NOOP:
        stmt = stmt.where(JobRun.counts.like(f'{{"{NOOP}": %'))
    elif state:
        stmt = stmt.where(JobRun.state == state)
    if kind:
        stmt = stmt.where(JobRun.kind == kind)
    if ent_id is not None:
        ent = db.session.get(Enterprise, ent_id)
        targets = [t for found_ in host().plugins.hook.appliance_job_targets(enterprise=ent)
                   for t in found_] if ent is not None else []
        stmt = stmt.where(JobRun.target.in_(targets))
    return stmt


def _page(args, per_page, adjustable=False):
    stmt = filtered(args)
    args = {"sort": "created", "dir": "desc", **dict(args.items())}
    return paginate(stmt, COLUMNS, args, "created", search=(JobRun.label, JobRun.kind,
                    JobRun.message), per_page=per_page, tiebreak=JobRun.id,
                    adjustable=adjustable)


def choices() -> dict:
    """The filters' options: the loaded job kinds and the enterprises."""
    kinds = sorted(host().jobs.kinds.values(), key=lambda k: k.title.lower())
    ents = db.session.execute(select(Enterprise.id, Enterprise.name, Enterprise.eid)
                              .order_by(Enterprise.name)).all()
    return {"kinds": kinds, "enterprises": ents}


def _run(run_id: int) -> JobRun:
    db.session.expire_all()
    return found(JobRun, run_id, "job run")


@bp.get("/jobs")
def index():
    return render("jobs/index.html", block="table", page=_page(
        request.args, current_app.config["PAGE_SIZE"]), filters=request.args, noops=noops,
        **choices())


@bp.get("/jobs/<int:run_id>")
def show(run_id):
    return render("jobs/show.html", block="progress", run=_run(run_id))


@bp.get("/jobs/<int:run_id>/progress")
def progress(run_id):
    """The polling partial: it stops polling once the run has ended."""
    return render_block("jobs/show.html", "progress", run=_run(run_id))


@hookimpl
def appliance_home_summary() -> list[Summary]:
    """The home page's card: the runs of the last days that failed or were interrupted."""
    runs, total = host().jobs.needing_attention(utcnow() - timedelta(days=ATTENTION_DAYS))
    rows = [[r.label, Figure("State", r.state, "bad" if r.state == "failed" else "warn"),
             when(r.finished_at or r.created_at), r.message] for r in runs]
    return [Summary("Jobs needing attention", order=90, figures=[
        Figure(f"Failed or interrupted, last {ATTENTION_DAYS} days", total,
               "bad" if total else "ok")], columns=["Job", "State", "Ended", "Message"],
        rows=rows, empty="Every job of the last days went well.", wide=bool(rows),
        link=("Jobs needing attention", "/jobs?state=attention"))]


def _filter(field: Field, description: str) -> dict:
    return {"name": field.name, "in": "query", "required": False, "description": description,
            "schema": {k: v for k, v in field.json_schema().items() if k != "title"}}


QUERY = [_filter(FILTERS[0], "A state, or attention (failed or interrupted), or noop (the "
                             "folded runs that found nothing to do)"),
         _filter(FILTERS[1], "A job kind"),
         _filter(FILTERS[2], "An enterprise's id: its runs")]
RUN = obj(["id", "kind", "state"], id=INT, kind=STR, target=NULL_STR, label=NULL_STR,
          state=STR, noop={**INT, "description": "How many runs that found nothing to do "
                                                 "this row stands for (0: not one)"},
          progress=INT, counts={"type": "object"}, message=NULL_STR,
          triggered_by=NULL_STR, created_at=TIME, started_at=TIME, finished_at=TIME,
          owner=NULL_STR, heartbeat_at=TIME)


@api.op("", summary="Recent job runs (?state=, ?kind=, ?enterprise=, ?q=, ?sort=, ?dir=, "
        "?page=, ?per_page=)", response=paged(RUN), query=[*QUERY, *query_params(COLUMNS)])
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
        job_kinds=[JobKind("housekeeping", "Housekeeping", housekeeping, next_run=daily,
                           default_spec={"hour": 3})],
        cli_commands=[jobs_cli])

