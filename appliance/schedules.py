"""Job schedules: stored per (kind, target), fired once per due time whichever processes
tick, and the seeds' "every N days at hour:minute AM/PM" specs (`appliance.jobs` offers
them to plugins)."""

import json
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from appliance.db import db, utcnow
from appliance.models import JobSchedule
from appliance.validation import Field, int_range, one_of

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


class Schedules:
    """The schedule half of appliance.jobs.Jobs (which gives `kinds` and `submit`)."""

    @staticmethod
    def next_run_at(kind: str, target: str) -> datetime | None:
        """When (kind, target)'s schedule fires next (naive UTC), or None."""
        return db.session.scalar(select(JobSchedule.next_run_at).where(
            JobSchedule.kind == kind, JobSchedule.target == target))

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
        """Schedule every kind that has a default spec and no schedule yet (target "host";
        each kind its own schedule). Processes starting together create each once."""
        for k in self.kinds.values():
            if k.default_spec is None or db.session.scalar(select(JobSchedule.id).where(
                    JobSchedule.kind == k.name)):
                continue
            self.schedule(k.name, "host", k.default_spec)
            try:
                db.session.commit()
            except IntegrityError:  # another process made it just now
                db.session.rollback()

    def unschedule(self, kind: str, target: str) -> None:
        sched = db.session.scalar(select(JobSchedule).where(JobSchedule.kind == kind,
                                                            JobSchedule.target == target))
        if sched is not None:
            db.session.delete(sched)

    def tick(self, now: datetime | None = None) -> list[int]:
        """Start every due schedule of a loaded kind; return the runs started here.

        A due time fires once whichever processes tick: a process claims it by moving
        next_run_at on from the value it read (only one such UPDATE matches), in the
        transaction that queues the run. Schedules of other kinds or targets due at the same
        time each fire too.
        """
        now = now or utcnow()
        due = db.session.execute(select(
            JobSchedule.id, JobSchedule.kind, JobSchedule.target, JobSchedule.spec,
            JobSchedule.next_run_at).where(JobSchedule.next_run_at <= now,
                                           JobSchedule.kind.in_(list(self.kinds)))
            .order_by(JobSchedule.next_run_at, JobSchedule.id)).all()
        started = []
        for sched in due:
            kind = self.kinds[sched.kind]
            following = kind.next_run(json.loads(sched.spec), now) if kind.next_run else None
            claimed = db.session.execute(
                update(JobSchedule).where(JobSchedule.id == sched.id,
                                          JobSchedule.next_run_at == sched.next_run_at)
                .values(next_run_at=following).execution_options(synchronize_session=False))
            if claimed.rowcount != 1:  # another process fired it
                db.session.rollback()
                continue
            run, created = self.submit(sched.kind, sched.target, label=kind.title,
                                       triggered_by="schedule")
            db.session.execute(update(JobSchedule).where(JobSchedule.id == sched.id)
                               .values(last_run_id=run.id)
                               .execution_options(synchronize_session=False))
            db.session.commit()
            if created:
                started.append(run.id)
        return started
