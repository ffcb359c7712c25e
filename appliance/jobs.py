"""Background jobs shared by plugins: kinds, runs with progress, and persistent schedules."""

import json
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from appliance.db import db, utcnow
from appliance.models import JobRun, JobSchedule
from appliance.validation import Field, int_range, one_of

log = logging.getLogger(__name__)

#: A job run as plugins see it (read its state, progress, counts, message; never write it).
Run = JobRun

ACTIVE = ("queued", "running")
ENDED = ("succeeded", "failed", "interrupted")


class JobFailed(Exception):
    """Raise from a job to end it as failed with a message for the administrator."""


@dataclass(frozen=True)
class JobKind:
    name: str
    title: str
    run: Callable[["JobContext"], None]
    # (schedule spec, now) -> next run time (naive UTC) or None; None means never scheduled.
    next_run: Callable[[dict, datetime], datetime | None] | None = None
    # A schedule (target "host") created at start-up when none exists yet.
    default_spec: dict | None = None
    # (counts, params) -> the message of a run the appliance stopped; None: a generic one.
    interrupted: Callable[[dict, dict], str] | None = None


def storable(text: str, limit: int = 2000) -> str:
    """Text every database keeps: bytes that were not UTF-8 and NULs escaped, cut at
    `limit` characters (a message that cannot be stored would leave its run unended)."""
    text = text.replace("\x00", "\\x00").encode("utf-8", "backslashreplace").decode("utf-8")
    return text if len(text) <= limit else text[:limit - 1] + "…"


class JobContext:
    """What a running job sees: its target and params, and ways to report progress.

    Progress is written on a connection of its own, so it shows while the job's own
    transaction is still open and is never committed by accident with the job's work.
    """

    def __init__(self, run: JobRun):
        self.run_id = run.id
        self.kind = run.kind
        self.target = run.target
        self.params = json.loads(run.params or "{}")
        self.counts: dict[str, int] = {}

    def _write(self, **values) -> None:
        if values.get("message") is not None:
            values["message"] = storable(values["message"])
        with db.engine.begin() as conn:
            conn.execute(update(JobRun).where(JobRun.id == self.run_id).values(**values))

    def progress(self, percent: float, message: str | None = None) -> None:
        values = {"progress": max(0, min(100, int(percent)))}
        if message is not None:
            values["message"] = message
        self._write(**values)

    def count(self, **counts: int) -> None:
        """Set counters (added, updated, removed, skipped, ...) shown with the run."""
        self.counts.update(counts)
        self._write(counts=json.dumps(self.counts))

    def count_with_work(self, **counts: int) -> None:
        """Set counters in the job's own transaction: they commit, or roll back, with the
        work they count (so a stopped appliance leaves them true)."""
        self.counts.update(counts)
        db.session.execute(update(JobRun).where(JobRun.id == self.run_id)
                           .values(counts=json.dumps(self.counts))
                           .execution_options(synchronize_session=False))


def _rollback() -> None:
    try:
        db.session.rollback()
    except Exception:
        log.exception("rolling back a job's session failed")


def _reason(exc: BaseException, prefix: str) -> str:
    """An exception as a run's message: its first line only (SQLAlchemy's errors go on with
    the statement and its parameters, which are not for the page)."""
    try:
        text = str(exc)
    except Exception:
        text = ""
    if not prefix:
        return text
    first = text.splitlines()[0][:300] if text.strip() else ""
    return f"{prefix}{exc.__class__.__name__}: {first}"


# --- "every N days at hour:minute AM/PM", in the appliance's time zone --------------------

#: The schedule fields of the seeds' pages (synchronizers, peers), validated as one group.
SCHEDULE_FIELDS = (
    Field("days", "Frequency (days)", (int_range(0, 365),), type="integer",
          help="Every how many days; 0 means only when you click Sync Now."),
    Field("hour", "Hour", (int_range(1, 12),), type="integer"),
    Field("minute", "Minute", (int_range(0, 59),), type="integer"),
    Field("ampm", "AM/PM", (one_of(("AM", "PM")),)),
)


def days_spec(values: dict, tz: ZoneInfo, now: datetime | None = None,
              old: dict | None = None) -> dict:
    """The schedule spec for validated SCHEDULE_FIELDS values.

    The anchor (the local date of the first run) is kept while the fields stay the same, so
    saving a page again does not move an "every 7 days" schedule.
    """
    spec = {k: values[k] for k in ("days", "hour", "minute", "ampm")}
    spec["tz"] = tz.key
    if old and old.get("anchor") and all(old.get(k) == v for k, v in spec.items()):
        spec["anchor"] = old["anchor"]
    elif spec["days"]:
        first = every_n_days({**spec, "days": 1}, now or utcnow())
        spec["anchor"] = first.replace(tzinfo=UTC).astimezone(tz).date().isoformat()
    return spec


def every_n_days(spec: dict, now: datetime) -> datetime | None:
    """Next run (naive UTC) of a days_spec after `now` (naive UTC); None when days is 0."""
    n = int(spec.get("days") or 0)
    if n <= 0:
        return None
    tz = ZoneInfo(spec.get("tz") or "UTC")
    local_now = now.replace(tzinfo=UTC).astimezone(tz)
    at = clock(int(spec["hour"]) % 12 + (12 if spec["ampm"] == "PM" else 0), int(spec["minute"]))
    anchor = date.fromisoformat(spec.get("anchor") or local_now.date().isoformat())
    day = local_now.date()
    if off := (day - anchor).days % n:
        day += timedelta(days=n - off)
    while (when := datetime.combine(day, at, tzinfo=tz)) <= local_now:
        day += timedelta(days=n)
    return when.astimezone(UTC).replace(tzinfo=None)


class Jobs:
    """The job runner of one app."""

    def __init__(self, app, kinds: list[JobKind]):
        self.app = app
        self.kinds = {k.name: k for k in kinds}
        self._pool = ThreadPoolExecutor(max_workers=app.config["JOB_WORKERS"],
                                        thread_name_prefix="job")
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None

    # --- runs -----------------------------------------------------------------------------
    def submit(self, kind: str, target: str, params: dict | None = None, label: str = "",
               triggered_by: str = "") -> tuple[JobRun, bool]:
        """Queue a run; return (run, True), or (the active run for target, False)."""
        if kind not in self.kinds:
            raise KeyError(f"Unknown job kind {kind!r}")
        run = JobRun(kind=kind, target=target, label=label or self.kinds[kind].title,
                     params=json.dumps(params or {}), triggered_by=triggered_by)
        db.session.add(run)
        try:
            db.session.commit()
        except IntegrityError:
            db.session.rollback()
            active = db.session.scalar(select(JobRun).where(JobRun.target == target,
                                                            JobRun.state.in_(ACTIVE)))
            if active is None:  # it ended in between: try once more
                return self.submit(kind, target, params, label, triggered_by)
            return active, False
        self._pool.submit(self._execute, run.id)
        return run, True

    def _execute(self, run_id: int) -> None:
        """Run a queued run; it ends succeeded or failed with a reason, whatever happens."""
        with self.app.app_context():
            try:
                run = db.session.get(JobRun, run_id)
                if run is None or run.state != "queued":
                    return
                run.state, run.started_at = "running", utcnow()
                db.session.commit()
                kind, ctx = run.kind, JobContext(run)
            except Exception:
                log.exception("job #%s could not start", run_id)
                self._end(run_id, "failed", "The job could not start (see the log)")
                return
            state, message = "succeeded", None
            try:
                self.kinds[kind].run(ctx)
            except JobFailed as exc:
                state, message = "failed", _reason(exc, "")
            except BaseException as exc:  # a job's bug, whatever it raises, ends its run
                _rollback()  # a failed flush leaves the session unusable until then
                log.exception("job %s #%s failed", kind, run_id)
                state, message = "failed", _reason(exc, "Unexpected error: ")
            finally:
                _rollback()  # anything the job left uncommitted is not kept
            self._end(run_id, state, message)

    def _end(self, run_id: int, state: str, message: str | None) -> None:
        """Record a run's end; if that fails (a message the database refuses), record that
        it failed, so no run stays running."""
        values = {"state": state, "finished_at": utcnow()}
        if state == "succeeded":
            values["progress"] = 100
        if message is not None:
            values["message"] = storable(message)
        try:
            try:
                with db.engine.begin() as conn:
                    conn.execute(update(JobRun).where(JobRun.id == run_id).values(**values))
            except Exception:
                log.exception("job #%s: its end could not be recorded", run_id)
                with db.engine.begin() as conn:
                    conn.execute(update(JobRun).where(JobRun.id == run_id).values(
                        state="failed", finished_at=utcnow(),
                        message=f"The job ended {state} but its message could not be stored "
                                "(see the log)"))
        except Exception:
            log.exception("job #%s: its failure could not be recorded either", run_id)
        finally:
            db.session.remove()

    # --- queries plugins need (so none reads the job tables itself) ----------------------
    @staticmethod
    def get(run_id: int) -> Run | None:
        """One run by id, or None."""
        return db.session.get(JobRun, run_id)

    @staticmethod
    def active(target: str) -> Run | None:
        """The queued or running run for `target`, or None."""
        return db.session.scalar(select(JobRun).where(JobRun.target == target,
                                                      JobRun.state.in_(ACTIVE)))

    @staticmethod
    def last(target: str) -> Run | None:
        """The newest run for `target`, whatever its state, or None."""
        return db.session.scalar(select(JobRun).where(JobRun.target == target)
                                 .order_by(JobRun.id.desc()).limit(1))

    @staticmethod
    def next_run_at(kind: str, target: str) -> datetime | None:
        """When (kind, target)'s schedule fires next (naive UTC), or None."""
        return db.session.scalar(select(JobSchedule.next_run_at).where(
            JobSchedule.kind == kind, JobSchedule.target == target))

    def wait(self, run_id: int, timeout: float = 30) -> JobRun:
        """Block until the run ended (for the CLI and tests); return it."""
        deadline = time.monotonic() + timeout
        while True:
            db.session.expire_all()
            run = db.session.get(JobRun, run_id)
            if run.state in ENDED or time.monotonic() > deadline:
                return run
            time.sleep(0.05)

    def recover(self) -> int:
        """Mark runs left queued or running by a stopped process as interrupted, with what
        their kind says was done (their counts are kept)."""
        runs = db.session.execute(select(JobRun.id, JobRun.kind, JobRun.counts, JobRun.params)
                                  .where(JobRun.state.in_(ACTIVE))).all()
        for run in runs:
            db.session.execute(update(JobRun).where(JobRun.id == run.id).values(
                state="interrupted", finished_at=utcnow(),
                message=self.interrupted_message(run.kind, run.counts, run.params)))
        db.session.commit()
        return len(runs)

    def interrupted_message(self, kind: str, counts: str | None, params: str | None) -> str:
        """The message of a run its process left unended (counts and params as stored)."""
        k = self.kinds.get(kind)
        if k is not None and k.interrupted is not None:
            try:
                return storable(k.interrupted(json.loads(counts or "{}"),
                                              json.loads(params or "{}")))
            except Exception:
                log.exception("the interrupted message of a %s run failed", kind)
        return "The appliance stopped while this job was running"

    # --- schedules ------------------------------------------------------------------------
    def schedule(self, kind: str, target: str, spec: dict,
                 now: datetime | None = None) -> JobSchedule:
        """Create or change the schedule of (kind, target); it survives restarts."""
        k = self.kinds[kind]
        sched = db.session.scalar(select(JobSchedule).where(JobSchedule.kind == kind,
                                                            JobSchedule.target == target))
        if sched is None:
            sched = JobSchedule(kind=kind, target=target)
            db.session.add(sched)
        sched.spec = json.dumps(spec)
        sched.next_run_at = k.next_run(spec, now or utcnow()) if k.next_run else None
        return sched

    def ensure_default_schedules(self) -> None:
        """Schedule every kind that has a default spec and no schedule yet."""
        for k in self.kinds.values():
            if k.default_spec is not None and not db.session.scalar(select(JobSchedule.id).where(
                    JobSchedule.kind == k.name)):
                self.schedule(k.name, "host", k.default_spec)
        db.session.commit()

    def unschedule(self, kind: str, target: str) -> None:
        sched = db.session.scalar(select(JobSchedule).where(JobSchedule.kind == kind,
                                                            JobSchedule.target == target))
        if sched is not None:
            db.session.delete(sched)

    def tick(self, now: datetime | None = None) -> list[int]:
        """Start every due schedule of a loaded kind; return the new run ids."""
        now = now or utcnow()
        due = db.session.scalars(select(JobSchedule).where(
            JobSchedule.next_run_at <= now, JobSchedule.kind.in_(list(self.kinds)))).all()
        started = []
        for sched in due:
            kind = self.kinds[sched.kind]
            run, created = self.submit(sched.kind, sched.target, label=kind.title,
                                       triggered_by="schedule")
            sched.last_run_id = run.id
            spec = json.loads(sched.spec)
            sched.next_run_at = kind.next_run(spec, now) if kind.next_run else None
            db.session.commit()
            if created:
                started.append(run.id)
        return started

    def start(self) -> None:
        """Start the scheduler thread (serve only; tests call tick())."""
        if self._ticker:
            return

        def loop():
            while not self._stop.wait(self.app.config["SCHEDULER_INTERVAL"]):
                try:
                    with self.app.app_context():
                        self.tick()
                except Exception:
                    log.exception("scheduler tick failed")

        self._ticker = threading.Thread(target=loop, name="scheduler", daemon=True)
        self._ticker.start()

    def shutdown(self) -> None:
        self._stop.set()
        self._pool.shutdown(wait=True, cancel_futures=True)
