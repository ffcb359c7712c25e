"""What the job runs left behind: how a run's end is written (quiet runs folded), and the
queries over past runs that pages and plugins need (so none reads the job tables itself).

A run that found nothing to do says so (`JobContext.noop`). A scheduled one is then folded
into the previous run of its kind and target when that was a scheduled no-op too: one row
stands for the whole streak, its counts `{"noop": n}`, `started_at` when the first of them
started and `finished_at` when the last ended. Any other run of that kind and target ends
the streak, so the Jobs page reads "no-op, 143 times since ..." between the runs that did
something, instead of one row a minute.
"""

import json
from datetime import datetime

from sqlalchemy import Connection, delete, func, select, update

from appliance.db import db
from appliance.models import JobRun, JobSchedule

#: The count a no-op run (or a folded streak of them) carries: how many runs it stands for.
NOOP = "noop"
#: The states of a run that needs the administrator's look.
ATTENTION = ("failed", "interrupted")


def noops(counts: str | dict | None) -> int:
    """How many no-op runs a row stands for (0: it is not one)."""
    if isinstance(counts, str):
        counts = json.loads(counts or "{}")
    return int((counts or {}).get(NOOP, 0))


def write_end(run_id: int, owner: str, values: dict) -> None:
    """Record a run's end (only while `owner` owns it), folding a quiet scheduled run."""
    quiet = values.get("quiet", False)
    with db.engine.begin() as conn:
        ended = conn.execute(update(JobRun).where(JobRun.id == run_id, JobRun.owner == owner)
                             .values(**{k: v for k, v in values.items() if k != "quiet"}))
        if quiet and ended.rowcount == 1:  # not a run another process took as interrupted
            fold(conn, run_id)


def fold(conn: Connection, run_id: int) -> None:
    """Mark an ended run a no-op and, when it was scheduled and so was the previous run of
    its kind and target (a no-op or a streak of them), take that row's place."""
    run = conn.execute(select(JobRun.kind, JobRun.target, JobRun.triggered_by,
                              JobRun.started_at).where(JobRun.id == run_id)).first()
    if run is None:
        return
    n, since = 1, run.started_at
    if run.triggered_by == "schedule":
        prev = conn.execute(select(JobRun.id, JobRun.state, JobRun.counts, JobRun.triggered_by,
                                   JobRun.started_at).where(
            JobRun.kind == run.kind, JobRun.target == run.target, JobRun.id < run_id)
            .order_by(JobRun.id.desc()).limit(1)).first()
        if prev is not None and prev.triggered_by == "schedule" and \
                prev.state == "succeeded" and (k := noops(prev.counts)):
            n, since = k + 1, prev.started_at or since
            conn.execute(delete(JobRun).where(JobRun.id == prev.id))
    conn.execute(update(JobRun).where(JobRun.id == run_id)
                 .values(counts=json.dumps({NOOP: n}), started_at=since))


class History:
    """The job service's queries over past runs (mixed into appliance.jobs.Jobs)."""

    @staticmethod
    def recent(kind: str, targets: list[str], per_target: int = 8) -> dict[str, list[JobRun]]:
        """The last `per_target` ended runs of `kind` for each target (oldest first), in one
        query, whatever the number of targets."""
        if not targets:
            return {}
        ranked = select(JobRun.id, func.row_number().over(
            partition_by=JobRun.target, order_by=JobRun.id.desc()).label("n")).where(
            JobRun.kind == kind, JobRun.target.in_(targets),
            JobRun.state.in_(("succeeded", *ATTENTION))).subquery()
        rows = db.session.scalars(select(JobRun).join(ranked, ranked.c.id == JobRun.id)
                                  .where(ranked.c.n <= per_target).order_by(JobRun.id)).all()
        out: dict[str, list[JobRun]] = {t: [] for t in targets}
        for r in rows:
            out[r.target].append(r)
        return out

    @staticmethod
    def next_runs(kind: str, targets: list[str]) -> dict[str, datetime | None]:
        """When each target's schedule of `kind` fires next (naive UTC; None: never)."""
        if not targets:
            return {}
        found = dict(db.session.execute(select(JobSchedule.target, JobSchedule.next_run_at)
                                        .where(JobSchedule.kind == kind,
                                               JobSchedule.target.in_(targets))).all())
        return {t: found.get(t) for t in targets}

    @staticmethod
    def needing_attention(since: datetime, limit: int = 5) -> tuple[list[JobRun], int]:
        """The newest runs since `since` that failed or were interrupted, and how many
        there are."""
        where = (JobRun.state.in_(ATTENTION), JobRun.created_at >= since)
        total = db.session.scalar(select(func.count()).select_from(JobRun).where(*where))
        runs = db.session.scalars(select(JobRun).where(*where)
                                  .order_by(JobRun.id.desc()).limit(limit)).all()
        return list(runs), total or 0
