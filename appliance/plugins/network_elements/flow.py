"""Flow Through Provisioning: queued user changes delivered to MiVoice Business elements.

Each element names a connector (the `appliance_flow_connectors` hook); the built-in `file`
connector writes the changes in the platform's import format (CSV) into the data directory,
where the element's own import picks them up. Its cells are made inert for spreadsheets, as
in every CSV file the appliance writes (`appliance.csvsafe`).
"""

import json
from datetime import datetime, timedelta
from pathlib import Path

from flask import current_app
from sqlalchemy import func, select, update

from appliance import audit, csvsafe
from appliance.db import db, utcnow
from appliance.host import host
from appliance.jobs import JobContext, JobKind
from appliance.listing import Column, Page, paginate

from .models import Change, Element

MAX_ATTEMPTS = 5
BATCH = 1000  # changes per connector call (the file connector: per file)
#: The columns of MiVoice Business's user import file that the changes fill.
FILE_COLUMNS = ("action", "login", "first_name", "last_name", "email", "number", "department",
                "location", "services", "previous_login")


class FileConnector:
    """Write each batch of changes as a CSV file for the element's import."""

    name = "file"

    def deliver(self, element: Element, changes: list[dict]) -> str:
        folder = Path(current_app.config["DATA_DIR"]) / "flow-through" / str(element.id)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"changes-{utcnow():%Y%m%dT%H%M%S%f}.csv"
        tmp = path.with_suffix(".tmp")
        with tmp.open("w", newline="", encoding="utf-8") as f:
            w = csvsafe.writer(f)
            w.writerow(FILE_COLUMNS)
            for c in changes:
                p = c["payload"]
                w.writerow([c["action"], c["login"], p.get("first_name", ""),
                            p.get("last_name", ""), p.get("email", ""), p.get("number", ""),
                            p.get("department") or "", p.get("location") or "",
                            ";".join(p.get("services") or []), p.get("previous_login", "")])
        tmp.replace(path)  # the element's import never sees a half-written file
        return str(path)


COLUMNS = [
    Column("id", "#", Change.id),
    Column("element", "Element"),
    Column("action", "Change", Change.action),
    Column("login", "User", Change.login),
    Column("state", "State", Change.state),
    Column("attempts", "Attempts", Change.attempts),
    Column("error", "Error"),
]


def changes(args, per_page: int, adjustable: bool = False) -> Page:
    """One page of the queue, newest first unless `args` sort otherwise."""
    if not args.get("sort"):
        args = {**args.to_dict(), "sort": "id", "dir": args.get("dir") or "desc"}
    return paginate(select(Change), COLUMNS, args, "id", search=(Change.login,),
                    per_page=per_page, tiebreak=Change.id, adjustable=adjustable)


def change_dict(c: Change) -> dict:
    return {"id": c.id, "element_id": c.element_id, "action": c.action, "login": c.login,
            "state": c.state, "attempts": c.attempts, "error": c.error or None}


def connectors() -> dict:
    hook = host().plugins.hook
    return {c.name: c for found in hook.appliance_flow_connectors() for c in found}


def deliver(ctx: JobContext | None = None) -> dict:
    """Deliver every pending change, element by element, oldest first, BATCH at a time (a
    bulk import queues one per user). A batch the connector refuses stops its element's
    round, and a change that failed for good holds back the element's later ones until it is
    retried or discarded: no change ever overtakes an older one."""
    out = {"delivered": 0, "failed": 0}
    found = connectors()
    ids = db.session.scalars(select(Change.element_id).where(
        Change.state == "pending").distinct()).all()
    for element_id in ids:
        element = db.session.get(Element, element_id)
        held = held_from(element_id)
        after = 0
        while changes := db.session.scalars(select(Change).where(
                Change.element_id == element_id, Change.state == "pending",
                Change.id > after, *([Change.id < held] if held else []))
                .order_by(Change.id).limit(BATCH)).all():
            after = changes[-1].id
            if not _deliver(found.get(element.connector), element, changes, out):
                break
    if ctx is not None and not (out["delivered"] or out["failed"]):
        ctx.noop("No change to deliver")  # every minute, mostly: folded on the Jobs page
    elif ctx is not None:
        ctx.count(**out)
        ctx.progress(100, f"{out['delivered']} delivered, {out['failed']} failed")
    return out


def held_from(element_id: int) -> int | None:
    """The id of the element's oldest failed change: its changes from there on wait."""
    return db.session.scalar(select(func.min(Change.id)).where(
        Change.element_id == element_id, Change.state == "failed"))


def held() -> dict[int, int]:
    """Element id -> how many pending changes wait behind a failed one."""
    first = select(Change.element_id, func.min(Change.id).label("id")).where(
        Change.state == "failed").group_by(Change.element_id).subquery()
    return dict(db.session.execute(
        select(Change.element_id, func.count()).join(
            first, (first.c.element_id == Change.element_id) & (Change.id > first.c.id))
        .where(Change.state == "pending").group_by(Change.element_id)).all())


def _deliver(connector, element: Element, changes: list[Change], out: dict) -> bool:
    batch = [{"action": c.action, "login": c.login, "payload": json.loads(c.payload)}
             for c in changes]
    try:
        if connector is None:
            raise RuntimeError(f"no flow-through connector named {element.connector!r}")
        connector.deliver(element, batch)
    except Exception as exc:  # the connector's failure is reported, then retried
        for c in changes:
            c.attempts += 1
            c.error = f"{exc.__class__.__name__}: {exc}"
            c.state = "failed" if c.attempts >= MAX_ATTEMPTS else "pending"
        out["failed"] += len(changes)
        db.session.commit()
        return False
    now = utcnow()
    for c in changes:
        c.attempts += 1
        c.state, c.delivered_at, c.error = "delivered", now, ""
    out["delivered"] += len(changes)
    db.session.commit()
    return True


def retry_failed() -> int:
    """Queue the failed changes again (after the element or its connector was fixed)."""
    n = db.session.execute(update(Change).where(Change.state == "failed")
                           .values(state="pending", attempts=0)).rowcount
    db.session.commit()
    return n


def discard_failed() -> int:
    """Give up the failed changes (the element will never take them), so the changes behind
    them go; they stay listed as discarded."""
    n = db.session.execute(update(Change).where(Change.state == "failed")
                           .values(state="discarded")).rowcount
    audit.record("update", "flow-through", "", "failed changes", after={"discarded": n},
                 commit=False)
    db.session.commit()
    return n


def every(spec: dict, now: datetime) -> datetime:
    return now + timedelta(seconds=int(spec.get("seconds", 60)))


DELIVER = JobKind("network_elements.flow", "Flow Through Provisioning", deliver,
                  next_run=every, default_spec={"seconds": 60})
