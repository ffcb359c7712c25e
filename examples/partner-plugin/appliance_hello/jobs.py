"""The hello.count background job: `appliance jobs run hello.count hello` runs it now."""

from datetime import datetime, timedelta

from sqlalchemy import func, select

from appliance.db import db
from appliance.jobs import JobContext, JobKind

from .models import Greeting


def count(ctx: JobContext) -> None:
    """Count the greetings, reporting progress and counts as it goes."""
    ctx.progress(10, "Counting greetings")
    n = db.session.scalar(select(func.count()).select_from(Greeting))
    ctx.count(greetings=n)
    ctx.progress(100, f"{n} greeting(s)")


def every(spec: dict, now: datetime) -> datetime:
    """Schedules look like {"hours": 6}: the next run is that long after `now`."""
    return now + timedelta(hours=int(spec.get("hours", 24)))


COUNT = JobKind("hello.count", "Count greetings", count, next_run=every)
