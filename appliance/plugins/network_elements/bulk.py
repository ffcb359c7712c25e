"""Bulk User Provisioning: import users from a CSV or LDIF file (the import job's work).

One streamed pass over the file: rows are read (`bulk_read`), checked with `resolve_user`'s
rules (through `service.SiteTables`, whose small tables are read once) and classified as add,
update, unchanged or rejected, a chunk at a time (`bulk_store`). Each chunk's existing users
come from one query; with `apply=True` each chunk is then stored in one transaction (Core
executemany), with the flow-through changes its MiVoice Business users need, the import's
audit entry brought up to date and the caller's checkpoint (the job's counts), so whatever
stops the import, what it committed is audited and counted; its report rows are written once
it committed. Importing the same file again completes it: the rows already there are
"unchanged". The preview (`apply=False`) runs the same code and stores nothing, so both
classify every row alike. The CSV export (`bulk_export`) is the import format, so an export
re-imports as all unchanged.
"""

import csv
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

from sqlalchemy import update

from appliance import audit, csvsafe
from appliance.db import analyze, db
from appliance.models import AuditEntry

from . import accounts
from .bulk_read import COLUMNS, DEFAULTS, FORMATS, FileError, Row, read_csv, read_ldif
from .bulk_store import Importer, RowResult
from .models import BULK, Change, User
from .service import Licences, SiteTables

__all__ = ["ACTIONS", "CHUNK", "COLUMNS", "FORMATS", "SHOWN", "Summary", "run"]

ACTIONS = ("add", "update", "unchanged", "rejected")
CHUNK = 1000  # rows per existing-users query and per transaction
SHOWN = 200  # rows the summary keeps for the page


@dataclass
class Summary:
    """What an import did (or, previewed, would do)."""

    applied: bool
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ACTIONS, 0))
    rows: list[RowResult] = field(default_factory=list)  # the first SHOWN rows
    rejected_rows: list[RowResult] = field(default_factory=list)  # the first SHOWN rejected
    error: str | None = None  # file-level: rows after it were not read
    queued: int = 0  # flow-through changes queued
    accounts: dict = field(default_factory=dict)  # what the users' accounts did, if any
    total: int = 0
    seconds: float = 0.0

    @property
    def rows_per_second(self) -> float:
        return self.total / self.seconds if self.seconds else 0.0

    def add(self, row: RowResult) -> None:
        self.total += 1
        self.counts[row.action] += 1
        if len(self.rows) < SHOWN:
            self.rows.append(row)
        if row.action == "rejected" and len(self.rejected_rows) < SHOWN:
            self.rejected_rows.append(row)

    def as_dict(self) -> dict:
        return {"applied": self.applied, "counts": self.counts, "error": self.error,
                "queued": self.queued, "accounts": self.accounts, "total": self.total,
                "seconds": round(self.seconds, 3),
                "rows_per_second": round(self.rows_per_second),
                "rows": [asdict(r) for r in self.rows],
                "rejected_rows": [asdict(r) for r in self.rejected_rows]}



def run(path: str | Path, fmt: str, defaults: dict | None = None, apply: bool = False,
        report_path: str | Path | None = None, *, username: str | None = None,
        filename: str | None = None,
        checkpoint: Callable[[Summary], None] | None = None) -> Summary:
    """Import (or with apply=False preview) a CSV or LDIF file; see the module docstring.

    `defaults` ({"element", "template", "location", "department"}: names) fill what a row
    leaves empty. The result report (line, login, action, reasons for every row) is written
    to `report_path` a chunk at a time. Needs an app context. The audit entry names
    `filename` (the uploaded file's name; else the path's) and `username` (else the
    logged-in one). `checkpoint(summary)` is called in each chunk's transaction when applying.
    """
    if fmt not in FORMATS:
        raise ValueError(f"Unknown format {fmt!r}: use {', '.join(FORMATS)}")
    started = time.perf_counter()
    summary = Summary(applied=apply)
    tables = SiteTables()
    importer = Importer(tables, Licences(), apply)
    entry = _AuditEntry(filename or Path(path).name, fmt, summary, username)
    try:
        with _report(report_path) as report:
            try:
                clean = _check_defaults(tables, defaults or {})
                reader = read_csv if fmt == "csv" else read_ldif
                for chunk in _chunks(reader(path, clean)):
                    results = importer.chunk(chunk)
                    for row in results:
                        summary.add(row)
                    summary.queued = importer.queued
                    if apply:
                        entry.stage(through=results[-1].line)
                        if checkpoint is not None:
                            checkpoint(summary)
                        db.session.commit()
                        entry.committed()
                    report(results)
            except FileError as exc:
                summary.error = str(exc)
    except BaseException:
        if apply:  # the chunks committed before stay: the audit entry says what they hold
            db.session.rollback()
            try:
                entry.failed("the import failed")
                _accounts(importer, summary)  # of the users those chunks hold
            except Exception:
                db.session.rollback()
        raise
    summary.seconds = time.perf_counter() - started
    if apply:
        entry.stage()
        db.session.commit()
        analyze(User.__tablename__, Change.__tablename__,
                written=summary.counts["add"] + summary.counts["update"])
        _accounts(importer, summary)
    return summary


def _accounts(importer: Importer, summary: Summary) -> None:
    """Once the import committed: the accounts of the elements whose users it stored follow
    them, one sync per element (accounts.py)."""
    synced = accounts.sync_elements(importer.touched)
    results = [s.result for s in synced if s.result is not None]
    if synced:
        summary.accounts = {
            "added": sum(r.added for r in results), "updated": sum(r.updated for r in results),
            "removed": sum(r.removed for r in results),
            "conflicts": sum(len(s.conflicts) for s in synced),
            "note": accounts.conflicts_note(synced)}


@contextmanager
def _report(path: str | Path | None) -> Iterator[Callable[[list[RowResult]], None]]:
    """A function writing rows of the result report and flushing them to the file (to
    nowhere without a path). The report is read in spreadsheets: its cells are inert."""
    if path is None:
        yield lambda rows: None
        return
    inert = csvsafe.inert
    with open(path, "w", encoding="utf-8", errors="backslashreplace", newline="") as f:
        writer = csv.writer(f)  # line and action are the appliance's own: inert as they are
        writer.writerow(("line", "login", "action", "reasons"))

        def write(rows: list[RowResult]) -> None:
            writer.writerows((r.line, inert(r.login), r.action,
                              inert("; ".join(r.reasons)) if r.reasons else "") for r in rows)
            f.flush()
        yield write


def _check_defaults(tables: SiteTables, defaults: dict) -> dict:
    unknown = set(defaults) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"Unknown import option(s) {', '.join(sorted(unknown))}")
    clean = {k: v.strip() for k, v in defaults.items() if v and v.strip()}
    errors: dict = {}
    if "element" in clean:
        tables.element(clean["element"], BULK, errors)
    for kind in ("template", "location", "department"):
        tables.ref(kind, clean.get(kind), errors)
    if errors:
        raise FileError("Import options: " + "; ".join(msg for _, msg in errors.values()))
    return clean


def _chunks(rows: Iterator[Row]) -> Iterator[list[Row]]:
    """The rows in lists of CHUNK; on a file error, the rows read before it come first."""
    chunk: list[Row] = []
    try:
        for row in rows:
            chunk.append(row)
            if len(chunk) == CHUNK:
                yield chunk
                chunk = []
    except FileError:
        if chunk:
            yield chunk
        raise
    if chunk:
        yield chunk


class _AuditEntry:
    """The import's one audit entry: added in the first chunk's transaction and brought up
    to date in each later one, so it always says what the import committed (while the import
    goes on, or if it stopped midway, up to which line)."""

    def __init__(self, name: str, fmt: str, summary: Summary, username: str | None):
        self.name, self.fmt, self.summary, self.username = name, fmt, summary, username
        self.entry: AuditEntry | None = None
        self.staged: tuple[dict, int] = ({}, 0)
        self.last: tuple[dict, int] = ({}, 0)  # what the committed entry says, its line

    def _after(self) -> dict:
        s = self.summary
        after = {"file": self.name, "format": self.fmt, **s.counts, "queued": s.queued}
        if s.error:
            after["error"] = s.error
        return after

    def stage(self, through: int = 0) -> None:
        """Write the entry in the current transaction; `through`: the line the import goes
        on after (0: it ended)."""
        after = self._after()
        if through:
            after["unfinished"] = f"rows up to line {through} committed; the import goes on"
        if self.entry is None:
            self.entry = audit.record("import", "users", "", self.name, after=after,
                                      username=self.username, commit=False)
        else:
            self.entry.summary = audit.summary_text(None, after)
        self.staged = (after, through)

    def committed(self) -> None:
        self.last = self.staged

    def failed(self, error: str) -> None:
        """After a rollback: the entry says what was committed, and that the import failed."""
        after, through = self.last
        if not after:  # nothing committed
            after = {"file": self.name, "format": self.fmt, **dict.fromkeys(ACTIONS, 0),
                     "queued": 0, "error": error}
            audit.record("import", "users", "", self.name, after=after, username=self.username)
            return
        after = {k: v for k, v in after.items() if k != "unfinished"}
        after["error"] = f"{error}; the rows up to line {through} were committed"
        db.session.execute(update(AuditEntry).where(AuditEntry.id == self.entry.id).values(
            summary=audit.summary_text(None, after)))
        db.session.commit()

