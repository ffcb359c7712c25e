"""Bulk User Provisioning: import users from a CSV or LDIF file, and export them as CSV.

One streamed pass over the file: rows are read, checked with `resolve_user`'s rules (through
`service.SiteTables`, whose small tables are read once) and classified as add, update,
unchanged or rejected, a chunk at a time. Each chunk's existing users come from one query;
with `apply=True` each chunk is then stored in one transaction (Core executemany), with the
flow-through changes its MiVoice Business users need, the import's audit entry brought up to
date and the caller's checkpoint (the job's counts), so whatever stops the import, what it
committed is audited and counted; its report rows are written once it committed. Importing
the same file again completes it: the rows already there are "unchanged". The preview
(`apply=False`) runs the same code and stores nothing, so both classify every row alike. The
CSV export is the import format (cells made inert for spreadsheets by `csvsafe`, which the
import undoes), so an export re-imports as all unchanged.
"""

import csv
import io
import json
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO

import ldif
from sqlalchemy import bindparam, func, insert, select, update

from appliance import audit, csvsafe
from appliance.db import db, execute_many
from appliance.models import AuditEntry
from appliance.validation import Invalid

from .models import BULK, FLOW, METHODS, Change, Department, Element, Location, Template, User
from .service import USER, Licences, SiteTables, flow_actions, import_cells

#: The CSV columns, in the order the export writes them.
COLUMNS = ("login", "first_name", "last_name", "email", "number", "element", "location",
           "department", "template", "services")
REQUIRED = ("login", "last_name", "element")
#: What the administrator picks on the page; fills the cells a row leaves empty.
DEFAULTS = ("element", "template", "location", "department")
ACTIONS = ("add", "update", "unchanged", "rejected")
FORMATS = ("csv", "ldif")
CHUNK = 1000  # rows per existing-users query and per transaction
SHOWN = 200  # rows the summary keeps for the page
#: The values of a user the import sets; equal values make a row "unchanged".
STORED = ("login", "first_name", "last_name", "email", "number", "element_id", "location_id",
          "department_id", "template_id", "services")
#: The values of a queued flow-through change the import gives (the rest are its defaults).
CHANGE = ("element_id", "action", "login", "payload")

#: A str as JSON text, exactly as json.dumps writes it.
_json_text = json.encoder.encode_basestring_ascii
_UNDECODED = re.compile("[\udc80-\udcff]")  # bytes that were not UTF-8 (surrogateescape)
_APOSTROPHE = re.compile("'").match  # a cell csvsafe may have written with one in front
_PHONE_PUNCTUATION = re.compile(r"[\s().-]")


class FileError(Exception):
    """The file as a whole cannot be imported (no header, a missing column, bad options)."""


@dataclass(slots=True)
class RowResult:
    line: int  # the row's (or LDIF entry's) first line in the file
    login: str
    action: str  # add, update, unchanged or rejected
    reasons: list[str] = field(default_factory=list)


@dataclass
class Summary:
    """What an import did (or, previewed, would do)."""

    applied: bool
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ACTIONS, 0))
    rows: list[RowResult] = field(default_factory=list)  # the first SHOWN rows
    rejected_rows: list[RowResult] = field(default_factory=list)  # the first SHOWN rejected
    error: str | None = None  # file-level: rows after it were not read
    queued: int = 0  # flow-through changes queued
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
                "queued": self.queued, "total": self.total,
                "seconds": round(self.seconds, 3),
                "rows_per_second": round(self.rows_per_second),
                "rows": [asdict(r) for r in self.rows],
                "rejected_rows": [asdict(r) for r in self.rejected_rows]}


# A row as the readers hand it over: (first line, USER fields, problems by field). A problem
# under "" means the row cannot be read as a user at all; others replace that field's message.
Row = tuple[int, dict, dict[str, str]]


# --- reading -----------------------------------------------------------------------------------


def read_csv(path: str | Path, defaults: dict | None = None) -> Iterator[Row]:
    """The rows of a CSV file in the export's format, one at a time."""
    defaults = defaults or {}
    with open(path, encoding="utf-8-sig", errors="surrogateescape", newline="") as f:
        reader = csv.reader(f)
        try:
            header = next(reader, None)
            if header is None:
                raise FileError("The file is empty: the first line must be the header ("
                                f"{', '.join(COLUMNS)})")
            for i, cell in enumerate(header, 1):
                if _UNDECODED.search(cell):
                    raise FileError(f"Line 1 (the header), column {i}: invalid UTF-8 byte; "
                                    "save the file as UTF-8 text")
            names = [h.strip().lower() for h in header]
            for name in COLUMNS:
                if names.count(name) > 1:
                    raise FileError(f"The header names the column {name} twice")
            missing = [c for c in REQUIRED if c not in names]
            if missing:
                raise FileError(
                    f"Missing required column{'s' if len(missing) > 1 else ''} "
                    f"{', '.join(missing)}: the header (line 1) must name "
                    f"{', '.join(REQUIRED)}; it names {', '.join(names) or 'nothing'}")
            index = [(c, names.index(c)) for c in COLUMNS if c in names]
            end = reader.line_num
            for cells in reader:
                line, end = end + 1, reader.line_num
                if not any(c.strip() for c in cells):
                    continue  # a blank line
                if any(map(_APOSTROPHE, cells)):
                    cells = [csvsafe.restored(c) for c in cells]
                if len(cells) != len(names):
                    login = cells[names.index("login")] if len(cells) > names.index("login") \
                        else ""
                    yield line, {"login": login.strip()}, {"": (
                        f"The line has {len(cells)} values and the header {len(names)} "
                        "columns: a value with a comma must be in double quotes")}
                    continue
                data = {c: cells[i] for c, i in index}
                for name, value in defaults.items():
                    if not (data.get(name) or "").strip():
                        data[name] = value
                yield line, data, _undecoded(data)
        except csv.Error as exc:
            raise FileError(f"Line {reader.line_num}: not CSV ({exc})") from None


def read_ldif(path: str | Path, defaults: dict | None = None) -> Iterator[Row]:
    """The entries of an LDIF file as users, one at a time.

    Each entry is parsed by the `ldif` package on its own, so a broken entry is rejected
    without losing the rest, and its line number counts folded lines too.
    """
    defaults = defaults or {}
    with open(path, "rb") as f:
        for line, block in _ldif_blocks(f):
            try:
                records = list(ldif.LDIFParser(io.BytesIO(block)).parse())
            except ValueError as exc:  # no colon, bad base64 or DN, a second dn: line
                yield line, {}, {"": f"Not an LDIF entry ({exc})"}
                continue
            dn, entry = records[0] if records else (None, {})
            yield _ldif_user(line, dn, entry, defaults)


def _ldif_blocks(f: IO[bytes]) -> Iterator[tuple[int, bytes]]:
    """(line, lines) for each blank-line-separated entry: the line of its dn: (or of its
    first line that is neither a comment nor folded). Comment-only and version-only blocks
    are no entry."""
    lines: list[bytes] = []
    first = dn = 0
    for number, raw in enumerate(f, 1):
        text = raw.rstrip(b"\r\n")
        if text:
            lines.append(raw)
            if text[:1] not in (b"#", b" "):  # not a comment, not a folded line
                head = text[:8].lower()
                if head.startswith(b"dn:"):
                    dn = dn or number
                elif not head.startswith(b"version:"):
                    first = first or number
            continue
        if dn or first:
            yield dn or first, b"".join(lines)
        lines, first, dn = [], 0, 0
    if dn or first:
        yield dn or first, b"".join(lines)


def _ldif_user(line: int, dn: str | None, entry: dict, defaults: dict) -> Row:
    attrs = {k.lower(): v for k, v in entry.items()}
    problems: dict[str, str] = {}

    def first(*names: str) -> str:
        for name in names:
            for value in attrs.get(name.lower(), ()):
                if isinstance(value, bytes):  # the ldif package leaves non-UTF-8 as bytes
                    value = value.decode("utf-8", "surrogateescape")
                return value
        return ""

    where = f" (dn: {dn})"
    if dn is None:
        return line, {}, {"": "The entry has no dn: line"}
    change = first("changetype")
    if change and change.lower() != "add":
        return line, {"login": first("uid", "sAMAccountName")}, {
            "": f"LDIF change records are not imported (changetype: {change}){where}"}
    data = {"login": first("uid", "sAMAccountName"), "first_name": first("givenName"),
            "last_name": first("sn"), "email": first("mail"),
            "number": _PHONE_PUNCTUATION.sub("", first("telephoneNumber")),
            "department": first("departmentNumber", "ou"), "location": first("l")}
    if not data["login"].strip():
        problems["login"] = f"No login: the entry has no uid or sAMAccountName{where}"
    for name in DEFAULTS:
        if not (data.get(name) or "").strip() and defaults.get(name):
            data[name] = defaults[name]
    return line, data, {**problems, **_undecoded(data)}


def _undecoded(data: dict) -> dict[str, str]:
    if not _UNDECODED.search("".join(data.values())):
        return {}
    return {name: f"{USER.fields[name].label} is not UTF-8 text"
            for name, value in data.items() if _UNDECODED.search(value)}


def _shown(text: str) -> str:
    """Text that held undecodable bytes, with them as \\xNN (so pages and files can show it)."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


# --- the import --------------------------------------------------------------------------------


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
    importer = _Import(tables, Licences(), summary, apply)
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
            except Exception:
                db.session.rollback()
        raise
    summary.seconds = time.perf_counter() - started
    if apply:
        entry.stage()
        db.session.commit()
    return summary


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


class _Import:
    """The state of one pass: site tables, licence headroom, logins seen and their lines."""

    def __init__(self, tables: SiteTables, licences: Licences, summary: Summary, apply: bool):
        self.tables, self.licences, self.summary, self.apply = tables, licences, summary, apply
        self.seen: dict[str, int] = {}  # lower-case login -> line it first appeared on
        self.tails: dict[tuple, str] = {}  # flow-through payloads' shared ends
        # Only users there before the import can be a row's existing user (a row whose login
        # an earlier row added is a duplicate): with none, no chunk needs to look.
        self.any_users = db.session.scalar(select(User.id).limit(1)) is not None
        # Logins stored with capitals, by lower case: a chunk's query can then match logins
        # exactly (using the unique index) and still find every case-insensitive clash.
        self.capitalised: dict[str, list[str]] = {}
        for (login,) in db.session.execute(select(User.login).where(
                User.login != func.lower(User.login))):
            self.capitalised.setdefault(login.lower(), []).append(login)

    def chunk(self, rows: list[Row]) -> list[RowResult]:
        """Classify a chunk of rows and, when applying, store it (uncommitted)."""
        self.tables.users = self._existing(rows)
        results, adds, updates = [], [], []
        for line, data, problems in rows:
            result, values, existing = self._row(line, data, problems)
            results.append(result)
            if result.action == "add":
                adds.append(values)
            elif result.action == "update":
                updates.append((existing, values))
        if self.apply and (adds or updates):
            self._store(adds, updates)  # the caller commits
        return results

    def _existing(self, rows: list[Row]) -> dict:
        if not self.any_users:
            return {}
        logins: set[str] = set()
        for _, data, _ in rows:
            login = (data.get("login") or "").strip()
            if login and not _UNDECODED.search(login):  # not UTF-8: cannot be stored anyway
                logins.update((login, login.lower(), *self.capitalised.get(login.lower(), ())))
        if not logins:
            return {}
        u = User.__table__
        found: dict = {}
        for row in db.session.execute(select(u.c.id, u.c.origin, *(u.c[c] for c in STORED))
                                      .where(u.c.login.in_(logins))):
            found.setdefault(row.login.lower(), row)
        return found

    def _row(self, line: int, data: dict, problems: dict) -> tuple[RowResult, dict, object]:
        login = (data.get("login") or "").strip()
        key = login.lower()
        earlier = self.seen.get(key) if key else None
        if key and earlier is None:
            self.seen[key] = line
        if earlier is not None:
            problems = {**problems, "duplicate": f"Login {login} also appears on line {earlier}"
                        " (only the first is imported)"}
        existing = self.tables.user(login)
        errors: dict[str, str] = {}
        values: dict = {}
        if "" not in problems:
            try:
                # A row already rejected takes no licences from the rows after it.
                values = self.tables.resolve(data, BULK, None if problems else self.licences,
                                             existing)
            except Invalid as exc:
                errors = exc.messages()
        reasons = list({**errors, **problems}.values())
        if reasons:
            if problems:  # what was not UTF-8 is shown as \xNN
                login, reasons = _shown(login), [_shown(r) for r in reasons]
            return RowResult(line, login, "rejected", reasons), {}, existing
        if existing is None:
            return RowResult(line, login, "add"), values, None
        stored = tuple(existing)[2:]  # the STORED columns, in order
        same = stored == tuple(values[c] for c in STORED) or (
            stored[:-1] == tuple(values[c] for c in STORED[:-1])
            and json.loads(values["services"]) == json.loads(existing.services or "[]"))
        return RowResult(line, login, "unchanged" if same else "update"), values, existing

    def _store(self, adds: list[dict], updates: list[tuple]) -> None:
        u = User.__table__
        conn = db.session.connection()
        changes = []
        if adds:
            last = db.session.scalar(select(func.max(u.c.id))) or 0
            execute_many(conn, insert(u), (*STORED, "origin"),
                         [(*(v[c] for c in STORED), BULK) for v in adds])
            flows = [v for v in adds if self._flows(v["element_id"])]
            if flows:  # the changes' payloads hold the new ids
                ids = self._ids(last, [v["login"] for v in flows])
                changes += [self._change("add", ids[v["login"]], v, BULK) for v in flows]
        if updates:
            execute_many(conn, update(u).where(u.c.id == bindparam("_id")), (*STORED, "_id"),
                         [(*(v[c] for c in STORED), old.id) for old, v in updates])
            for old, v in updates:  # as service.queue: a move deletes, then adds
                for action, _ in flow_actions(old.element_id, v["element_id"], self._flows):
                    if action == "delete":
                        changes.append(self._change("delete", old.id, old._asdict(),
                                                    old.origin))
                    else:
                        changes.append(self._change(action, old.id, v, old.origin,
                                                    previous=old.login))
        if changes:
            execute_many(conn, insert(Change.__table__), CHANGE, changes)
            self.summary.queued += len(changes)

    @staticmethod
    def _ids(last: int, logins: list[str]) -> dict[str, int]:
        """The ids of the users just added, who were given ids above `last` (the rows of
        others that came in between are ignored); by their logins if any is not there."""
        u = User.__table__
        ids = dict(db.session.execute(select(u.c.login, u.c.id).where(u.c.id > last)).all())
        if all(login in ids for login in logins):
            return ids
        for i in range(0, len(logins), 500):  # under SQLite's smallest variable limit
            ids.update(db.session.execute(select(u.c.login, u.c.id).where(
                u.c.login.in_(logins[i:i + 500]))).all())
        return ids

    def _change(self, action: str, id_: int, values: dict, origin: str,
                previous: str = "") -> tuple:
        """The flow-through change `service.queue` adds for a MiVoice Business user, as the
        CHANGE values."""
        element = self.tables.by_id["element"][values["element_id"]]
        # The payload is json.dumps(service.user_dict(user)): its last seven keys are shared
        # by many users, so they are encoded once.
        key = (element.id, values["location_id"], values["department_id"],
               values["template_id"], values["services"], origin)
        tail = self.tails.get(key)
        if tail is None:
            by_id = self.tables.by_id
            loc = by_id["location"].get(values["location_id"])
            dep = by_id["department"].get(values["department_id"])
            tpl = by_id["template"].get(values["template_id"])
            tail = json.dumps({
                "element": element.name, "location": loc.name if loc else None,
                "department": dep.name if dep else None, "template": tpl.name if tpl else None,
                "template_kind": tpl.kind if tpl else None,
                "services": json.loads(values["services"]), "origin": origin})[1:]
            if len(self.tails) < 1000:
                self.tails[key] = tail
        text = _json_text
        head = (f'{{"id": {id_}, "login": {text(values["login"])}, '
                f'"first_name": {text(values["first_name"])}, '
                f'"last_name": {text(values["last_name"])}, '
                f'"email": {text(values["email"])}, "number": {text(values["number"])}')
        if previous and previous != values["login"]:  # a new spelling of the login
            tail = f'{tail[:-1]}, "previous_login": {text(previous)}}}'
        return element.id, action, values["login"], f"{head}, {tail}"

    def _flows(self, element_id: int) -> bool:
        """Whether the element gets its users' changes (Flow Through Provisioning)."""
        return FLOW in METHODS[self.tables.by_id["element"][element_id].platform]


# --- export ------------------------------------------------------------------------------------


def export_csv(out: IO[str]) -> int:
    """Write the users of every element that offers Bulk Import, ordered by login, in the
    import's CSV format; return how many. (MiVoice 5000 / MX-ONE users come from their
    management platform, and an import could not take them back.)

    `out` is a text file opened with newline="" (the csv module writes CRLF line ends).
    """
    u, e = User.__table__, Element.__table__
    loc, dep, tpl = Location.__table__, Department.__table__, Template.__table__
    stmt = (select(u.c.login, u.c.first_name, u.c.last_name, u.c.email, u.c.number, e.c.name,
                   loc.c.name, dep.c.name, tpl.c.name, u.c.services)
            .select_from(u.join(e, e.c.id == u.c.element_id)
                         .outerjoin(loc, loc.c.id == u.c.location_id)
                         .outerjoin(dep, dep.c.id == u.c.department_id)
                         .outerjoin(tpl, tpl.c.id == u.c.template_id))
            .where(e.c.platform.in_([p for p, methods in METHODS.items() if BULK in methods]))
            .order_by(u.c.login))
    writer = csvsafe.writer(out)
    writer.writerow(COLUMNS)
    n = 0
    for row in db.session.execute(stmt, execution_options={"yield_per": CHUNK}):
        *person, element, location, department, template, services = row
        location, department, services = import_cells(location, department, template,
                                                      json.loads(services or "[]"))
        writer.writerow([*(c or "" for c in person), element, location, department,
                         template or "", services])
        n += 1
    return n
