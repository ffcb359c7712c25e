"""Which process a job run belongs to, and whether that process is still alive.

A process that claims a run becomes its owner ("host:pid:token", the token drawn when the
process starts). While it runs the run, the owner's heartbeat thread stamps the run's
`heartbeat_at` every JOB_HEARTBEAT_SECONDS. A running run not stamped for JOB_STALE_BEATS
beats belongs to a process that stopped (killed, its machine gone, cut off from the
database): whichever process sweeps first marks it interrupted. A run is never taken from
an owner that still beats.

At start-up a process also marks interrupted at once the runs of a process of the same
machine (same boot and pid namespace) that no longer exists: a restarted one-box appliance
does not wait for the heartbeats to age.
"""

import hashlib
import logging
import os
import secrets
import socket
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import select, update

from appliance.db import db, utcnow
from appliance.models import JobRun

log = logging.getLogger("appliance.jobs")


def _node() -> str:
    """This machine's boot and pid namespace, hashed ("" where that cannot be told): two
    owners of one node can ask the kernel whether the other's pid still exists."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        return ""
    return hashlib.sha256(f"{boot}\0{namespace}".encode()).hexdigest()[:8]


def _split(owner: str) -> tuple[str, int, str] | None:
    """(host, pid, node) of an owner id, or None for one that is not ours (or empty)."""
    try:
        host, pid, token = owner.rsplit(":", 2)
        return host, int(pid), token.split("-", 1)[0]
    except ValueError:
        return None


def describe(owner: str) -> str:
    """An owner as the administrator reads it: "host, pid N" (the token left out)."""
    parts = _split(owner)
    return f"{parts[0]}, pid {parts[1]}" if parts else (owner or "no process")


class Owner:
    """This process as the owner of the job runs it claims: claims, heartbeats, sweeps."""

    def __init__(self, app, interrupted_message: Callable[[str, str | None, str | None], str]):
        self.app = app
        self.node = _node()
        self.host = socket.gethostname()[:180]
        self.id = f"{self.host}:{os.getpid()}:{self.node or 'x'}-{secrets.token_hex(4)}"
        self.sweeping = False  # a worker process also looks for other owners' stale runs
        self.on_beat: list[Callable[[], None]] = []  # more work for each beat (in app context)
        self._message = interrupted_message
        self._running: set[int] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def interval(self) -> float:
        return float(self.app.config["JOB_HEARTBEAT_SECONDS"])

    @property
    def stale_after(self) -> timedelta:
        return timedelta(seconds=self.interval * int(self.app.config["JOB_STALE_BEATS"]))

    # --- the runs of this process --------------------------------------------------------
    def claim(self, run_id: int) -> bool:
        """Take a queued run (True), or find another process took it first (False)."""
        now = utcnow()
        with db.engine.begin() as conn:
            won = conn.execute(update(JobRun).where(JobRun.id == run_id, JobRun.state == "queued")
                               .values(state="running", owner=self.id, started_at=now,
                                       heartbeat_at=now)).rowcount == 1
        if won:
            with self._lock:
                self._running.add(run_id)
            self.start()
        return won

    def release(self, run_id: int) -> None:
        """The run's thread is done with it: stop beating for it."""
        with self._lock:
            self._running.discard(run_id)

    def beat(self) -> None:
        """Stamp this process's running runs: it is alive."""
        with self._lock:
            ids = sorted(self._running)
        if not ids:
            return
        with db.engine.begin() as conn:
            # A row its own job holds locked (PostgreSQL) waits for the next beat; sweeps
            # leave locked rows alone too.
            free = conn.scalars(select(JobRun.id).where(
                JobRun.id.in_(ids), JobRun.owner == self.id, JobRun.state == "running")
                .with_for_update(skip_locked=True)).all()
            if free:
                conn.execute(update(JobRun).where(JobRun.id.in_(free))
                             .values(heartbeat_at=utcnow()))

    # --- other processes' runs -----------------------------------------------------------
    def dead(self, owner: str) -> bool:
        """Whether `owner` was a process of this node whose pid no longer exists."""
        parts = _split(owner)
        if not self.node or parts is None or parts[0] != self.host or parts[2] != self.node:
            return False
        if owner == self.id or parts[1] == os.getpid():
            return False  # this process (or another Jobs in it): it beats for itself
        try:
            os.kill(parts[1], 0)
        except ProcessLookupError:
            return True
        except OSError:
            return False  # it exists (another user's process)
        return False  # it exists, or its pid was given to another: the heartbeat decides

    def sweep(self, now: datetime | None = None, at_start: bool = False) -> int:
        """Mark interrupted every running run whose owner stopped beating (at start-up also
        those of a dead process of this node); return how many this process marked."""
        now = now or utcnow()
        limit = now - self.stale_after
        with db.engine.connect() as conn:
            runs = conn.execute(select(JobRun.id, JobRun.kind, JobRun.counts, JobRun.params,
                                       JobRun.owner, JobRun.heartbeat_at)
                                .where(JobRun.state == "running")).all()
        with self._lock:
            mine = set(self._running)
        marked = 0
        for run in runs:
            stale = run.heartbeat_at is None or run.heartbeat_at < limit
            if run.id in mine or not (stale or (at_start and self.dead(run.owner))):
                continue
            # Only if it did not beat in between, and no transaction holds it locked (on
            # PostgreSQL: its job's, so its owner is alive): a live owner keeps its run.
            same = (JobRun.heartbeat_at.is_(None) if run.heartbeat_at is None
                    else JobRun.heartbeat_at == run.heartbeat_at)
            with db.engine.begin() as conn:
                if conn.scalar(select(JobRun.id).where(JobRun.id == run.id, same)
                               .with_for_update(skip_locked=True)) is None:
                    continue
                marked += conn.execute(update(JobRun).where(
                    JobRun.id == run.id, JobRun.state == "running", same).values(
                    state="interrupted", finished_at=now,
                    message=self._message(run.kind, run.counts, run.params))).rowcount
        return marked

    # --- the heartbeat thread ------------------------------------------------------------
    def start(self) -> None:
        """Start beating (once; the first claim does, and a worker process at start-up)."""
        with self._lock:
            if self._thread is not None or self._stop.is_set():
                return
            self._thread = threading.Thread(target=self._loop, name="job-heartbeat",
                                            daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            with self.app.app_context():
                for step in (self.beat, *self.on_beat, *([self.sweep] if self.sweeping else [])):
                    try:
                        step()
                    except Exception as exc:  # the database away, say: try again next beat
                        log.warning("job heartbeat: %s failed: %s", getattr(
                            step, "__name__", step), (str(exc).splitlines() or [""])[0][:300])

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
