"""What a sync run reports: its counts and the entries it skipped, stored with the
synchronizer when the run ends (LDAP and PBX runs alike)."""

import json
import time

from sqlalchemy import delete, insert

from appliance.db import db, utcnow
from appliance.jobs import JobContext

from .models import Synchronizer, SyncIssue
from .pbx_model import INVALID

KEEP_ISSUES = 10_000  # details kept per run; every issue is still counted
KEEP_NUMBERS = 1_000  # numbers listed per change (added, moved, removed); all are counted


class Report:
    """Counts and the skipped/failed entries of one run."""

    def __init__(self):
        self.issues: list[dict] = []
        self.skipped = self.failed = 0
        #: A PBX run's phone numbers: added, moved and removed (lists of dicts), or None.
        self.numbers: dict[str, list[dict]] | None = None

    def skip(self, entry: str, attribute: str, reason: str, kind: str = "skipped") -> None:
        if kind == "skipped":
            self.skipped += 1
        else:
            self.failed += 1
        self._keep(kind, entry, attribute, reason)

    def note(self, entry: str, attribute: str, reason: str) -> None:
        """Something the admin should know that skipped nothing (a number kept, say)."""
        self._keep("note", entry, attribute, reason)

    def _keep(self, kind: str, entry: str, attribute: str, reason: str) -> None:
        if len(self.issues) < KEEP_ISSUES:
            self.issues.append({"kind": kind, "entry": _shown(entry)[:1024],
                                "attribute": _shown(attribute)[:64], "reason": _shown(reason)})


def _shown(text: str) -> str:
    """text with each invalid character written U+XXXX: a report stores none (a NUL or a
    byte that was not UTF-8 cannot be stored at all)."""
    return INVALID.sub(lambda m: f"U+{ord(m.group()):04X}", text)


def _numbers(report: Report) -> dict:
    """The counts of a PBX run's number changes, and the first KEEP_NUMBERS of each."""
    if report.numbers is None:
        return {}
    return {**{f"numbers_{k}": len(v) for k, v in report.numbers.items()},
            "numbers": {k: v[:KEEP_NUMBERS] for k, v in report.numbers.items()}}


def finish(syn: Synchronizer, ctx: JobContext, started: float, report: Report, result,
            read: int, state: str, message: str) -> None:
    """Store the run's report and issues with the synchronizer (its own transaction)."""
    db.session.rollback()
    syn = db.session.get(Synchronizer, syn.id)
    counts = {"added": 0, "updated": 0, "removed": 0, **(result.as_dict() if result else {}),
              "skipped": report.skipped, "failed": report.failed}
    counts.pop("unchanged", None)
    numbers = _numbers(report) if result else {}
    counts.update({k: v for k, v in numbers.items() if k != "numbers"})
    syn.last_report = json.dumps({
        "at": utcnow().isoformat() + "Z", "seconds": round(time.monotonic() - started, 2),
        "state": state, "message": message, "read": read, "run_id": ctx.run_id, **counts,
        **({"numbers": numbers["numbers"]} if numbers else {})})
    if state == "ok":
        syn.last_count, syn.attention = read, ""
    elif state == "needs attention":
        syn.attention = message
    db.session.execute(delete(SyncIssue).where(SyncIssue.synchronizer_id == syn.id))
    if report.issues:
        db.session.execute(insert(SyncIssue), [{"synchronizer_id": syn.id, **i}
                                               for i in report.issues])
    db.session.commit()
    ctx.count(**counts)
