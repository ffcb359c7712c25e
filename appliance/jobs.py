"""Background jobs shared by plugins: kinds, runs with progress, and persistent schedules.

Several processes may share one database. Starting a job inserts a queued run, which the
database refuses while (kind, target) has an active one, whichever process asks. A worker
process claims a queued run (appliance.job_owners), becomes its owner and beats for it
while it runs; a run whose owner stopped beating is marked interrupted by whichever
process notices first. Schedules (appliance.schedules) are claimed the same way.
"""

import json
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from appliance.db import db, utcnow
from appliance.job_history import History, write_end
from appliance.job_owners import Owner, describe
from appliance.models import JobRun
from appliance.schedules import SCHEDULE_FIELDS as SCHEDULE_FIELDS
from appliance.schedules import Schedules
from appliance.schedules import days_spec as days_spec
from appliance.schedules import every_n_days as every_n_days
from appliance.validation import Conflict

log = logging.getLogger(__name__)

#: A job run as plugins see it (read its state, progress, counts, message; never write it).
Run = JobRun

ACTIVE = ("queued", "running")
ENDED = ("succeeded", "failed", "interrupted")
#: The database cannot be reached or used right now (rather than refusing a value).
UNREACHABLE = (OperationalError, InterfaceError, PoolTimeout)


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
        self.quiet: str | None = None

    def noop(self, message: str = "Nothing to do") -> None:
        """Say this run found nothing to do: it ends succeeded with `message`, and a
        scheduled one is folded with its quiet predecessors (appliance.job_history)."""
        self.quiet = message

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


def _guarded(step: Callable[[], object]) -> None:
    """One step of the scheduler thread: a failure is logged and tried again next time."""
    try:
        step()
    except Exception as exc:
        log.warning("jobs: %s failed:%s", step.__name__, _reason(exc, " "))


class Jobs(Schedules, History):
    """The job runner of one app (one process's share of the jobs of one database)."""

    def __init__(self, app, kinds: list[JobKind]):
        self.app = app
        self.kinds = {k.name: k for k in kinds}
        self._pool = ThreadPoolExecutor(max_workers=app.config["JOB_WORKERS"],
                                        thread_name_prefix="job")
        self._offered: set[int] = set()  # runs handed to the pool that have not ended here
        self._unrecorded: dict[int, dict] = {}  # ends the database could not take yet
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None
        self.owner = Owner(app, self.interrupted_message)
        self.owner.on_beat.append(self._record_unrecorded)

    @property
    def runs_here(self) -> bool:
        """Whether this process runs jobs (role all or worker), not only queues them (web)."""
        return self.app.config.get("ROLE", "all") != "web"

    # --- runs -----------------------------------------------------------------------------
    def submit(self, kind: str, target: str, params: dict | None = None, label: str = "",
               triggered_by: str = "") -> tuple[JobRun, bool]:
        """Queue a run; return (run, True), or (the active run of kind and target, False).

        The database itself refuses a second active run of (kind, target), whichever
        process asks. The session's pending changes commit with the new run. The run is
        then run here, or by a worker process when this one only serves pages (role web).
        """
        if kind not in self.kinds:
            raise KeyError(f"Unknown job kind {kind!r}")
        insert = postgresql.insert if db.session.get_bind().dialect.name == "postgresql" \
            else sqlite.insert
        run_id = db.session.execute(insert(JobRun).values(
            kind=kind, target=target, label=label or self.kinds[kind].title,
            params=json.dumps(params or {}), triggered_by=triggered_by, state="queued",
            created_at=utcnow()).on_conflict_do_nothing().returning(JobRun.id)).scalar()
        db.session.commit()
        if run_id is None:
            active = self.active(target, kind)
            if active is None:  # it ended in between: try once more
                return self.submit(kind, target, params, label, triggered_by)
            return active, False
        run = db.session.get(JobRun, run_id)
        if self.runs_here:
            self._offer(run_id)
        return run, True

    def start_run(self, kind: str, target: str, params: dict | None = None, label: str = "",
                  triggered_by: str = "") -> JobRun:
        """Queue a run, or raise Conflict (409) naming the active run of (kind, target)."""
        run, created = self.submit(kind, target, params, label, triggered_by)
        if not created:
            raise self.already_running(run)
        return run

    @staticmethod
    def already_running(run: JobRun) -> Conflict:
        """The 409 of a start refused because `run` is active: it names the run."""
        if run.state == "running" and run.started_at:
            message = (f"{run.label} is already running (job run #{run.id}, running since "
                       f"{run.started_at:%Y-%m-%d %H:%M:%S} UTC in {describe(run.owner)})")
        else:
            message = (f"{run.label} is already queued (job run #{run.id}, queued since "
                       f"{run.created_at:%Y-%m-%d %H:%M:%S} UTC, waiting for a worker)")
        return Conflict.because("already_running", message)

    def _offer(self, run_id: int) -> None:
        with self._lock:
            if run_id in self._offered:
                return
            self._offered.add(run_id)
        try:
            self._pool.submit(self._execute, run_id)
        except RuntimeError:  # shut down: it stays queued, for another worker or the next start
            with self._lock:
                self._offered.discard(run_id)

    def dispatch(self) -> int:
        """Offer queued runs of the loaded kinds, whichever process queued them, to this
        process's free workers (oldest first); return how many. A run goes to the process
        whose claim wins."""
        with self._lock:
            free = self.app.config["JOB_WORKERS"] - len(self._offered)
            offered = sorted(self._offered)
        if free <= 0:
            return 0
        ids = db.session.scalars(select(JobRun.id).where(
            JobRun.state == "queued", JobRun.kind.in_(list(self.kinds)),
            JobRun.id.notin_(offered)).order_by(JobRun.id).limit(free)).all()
        for run_id in ids:
            self._offer(run_id)
        return len(ids)

    def _execute(self, run_id: int) -> None:
        with self.app.app_context():
            try:
                if self.owner.claim(run_id):
                    try:
                        self._run(run_id)
                    finally:
                        self.owner.release(run_id)
            except Exception:  # the claim itself failed: the run stays queued
                log.exception("job #%s could not be claimed", run_id)
            finally:
                with self._lock:
                    self._offered.discard(run_id)

    def _run(self, run_id: int) -> None:
        """Run a claimed run; it ends succeeded or failed with a reason, whatever happens."""
        try:
            run = db.session.get(JobRun, run_id)
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
        except UNREACHABLE as exc:  # the database went away under the job
            log.exception("job %s #%s failed", kind, run_id)
            state, message = "failed", _reason(exc, "The database could not be used: ")
        except BaseException as exc:  # a job's bug, whatever it raises, ends its run
            _rollback()  # a failed flush leaves the session unusable until then
            log.exception("job %s #%s failed", kind, run_id)
            state, message = "failed", _reason(exc, "Unexpected error: ")
        finally:
            _rollback()  # anything the job left uncommitted is not kept
        quiet = state == "succeeded" and ctx.quiet is not None
        self._end(run_id, state, ctx.quiet if quiet else message, quiet)

    def _end(self, run_id: int, state: str, message: str | None, quiet: bool = False) -> None:
        """Record a run's end. If the database is away, try again at each heartbeat until
        it takes it (the run is not beaten for meanwhile)."""
        values = {"state": state, "finished_at": utcnow(), "quiet": quiet}
        if state == "succeeded":
            values["progress"] = 100
        if message is not None:
            values["message"] = storable(message)
        try:
            self._record_end(run_id, values)
        except Exception as exc:
            log.warning("job #%s: its end could not be recorded yet:%s", run_id,
                        _reason(exc, " "))
            with self._lock:
                self._unrecorded[run_id] = values
        finally:
            db.session.remove()

    def _record_end(self, run_id: int, values: dict) -> None:
        """Write the end; if the database refuses it (a message it cannot store), record
        that the run failed saying so, so no run stays running. Raise if it is away."""
        try:
            self._write_end(run_id, values)
        except UNREACHABLE:
            raise
        except Exception:
            log.exception("job #%s: its end could not be recorded", run_id)
            self._write_end(run_id, {
                "state": "failed", "finished_at": values["finished_at"],
                "message": f"The job ended {values['state']} but its message could not be "
                           "stored (see the log)"})

    def _write_end(self, run_id: int, values: dict) -> None:
        write_end(run_id, self.owner.id, values)

    def _record_unrecorded(self) -> None:
        with self._lock:
            waiting = list(self._unrecorded.items())
        for run_id, values in waiting:
            self._record_end(run_id, values)
            with self._lock:
                self._unrecorded.pop(run_id, None)

    # --- queries plugins need (so none reads the job tables itself) ----------------------
    @staticmethod
    def get(run_id: int) -> Run | None:
        """One run by id, or None."""
        return db.session.get(JobRun, run_id)

    @staticmethod
    def active(target: str, kind: str | None = None) -> Run | None:
        """The queued or running run for `target` (of `kind`, if given), or None."""
        stmt = select(JobRun).where(JobRun.target == target, JobRun.state.in_(ACTIVE))
        if kind is not None:
            stmt = stmt.where(JobRun.kind == kind)
        return db.session.scalars(stmt.order_by(JobRun.id).limit(1)).first()

    @staticmethod
    def last(target: str) -> Run | None:
        """The newest run for `target`, whatever its state, or None."""
        return db.session.scalar(select(JobRun).where(JobRun.target == target)
                                 .order_by(JobRun.id.desc()).limit(1))

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
        """At start-up: mark interrupted the runs whose process stopped (no heartbeat for
        JOB_STALE_BEATS beats, or a process of this machine that is gone), with what their
        kind says was done (their counts are kept). Live runs of other processes are left
        alone; queued runs stay queued for a worker."""
        return self.owner.sweep(at_start=True)

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

    # --- this process's threads -----------------------------------------------------------
    def start(self) -> None:
        """Run jobs in this process (serve, roles all and worker): claim queued runs of any
        process every JOB_POLL_SECONDS, fire due schedules every SCHEDULER_INTERVAL, and
        look for other processes' stale runs at each heartbeat. Tests call tick()."""
        if self._ticker:
            return
        self.owner.sweeping = True
        self.owner.start()

        def loop():
            next_tick = 0.0
            while not self._stop.wait(float(self.app.config["JOB_POLL_SECONDS"])):
                with self.app.app_context():
                    _guarded(self.dispatch)
                    if time.monotonic() >= next_tick:
                        next_tick = time.monotonic() + float(
                            self.app.config["SCHEDULER_INTERVAL"])
                        _guarded(self.tick)

        self._ticker = threading.Thread(target=loop, name="scheduler", daemon=True)
        self._ticker.start()

    def shutdown(self) -> None:
        """Stop taking runs, let the running ones end (still beating), then stop beating.
        Runs queued but not begun stay queued for another worker or the next start."""
        self._stop.set()
        self._pool.shutdown(wait=True, cancel_futures=True)
        self.owner.stop()
