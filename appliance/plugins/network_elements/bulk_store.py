"""Bulk User Provisioning: classifying a chunk of rows (add, update, unchanged, rejected)
against the users already there, and storing it (Core executemany) with the flow-through
changes its MiVoice Business users need; the caller commits."""

import json
from dataclasses import dataclass, field

from sqlalchemy import bindparam, func, insert, select, update

from appliance.db import db, execute_many
from appliance.validation import Invalid

from .bulk_read import UNDECODED, Row, shown
from .models import BULK, FLOW, METHODS, Change, User
from .service import Licences, SiteTables, flow_actions

#: The values of a user the import sets; equal values make a row "unchanged".
STORED = ("login", "first_name", "last_name", "email", "number", "element_id", "location_id",
          "department_id", "template_id", "services")
#: The values of a queued flow-through change the import gives (the rest are its defaults).
CHANGE = ("element_id", "action", "login", "payload")

#: A str as JSON text, exactly as json.dumps writes it.
_json_text = json.encoder.encode_basestring_ascii


@dataclass(slots=True)
class RowResult:
    line: int  # the row's (or LDIF entry's) first line in the file
    login: str
    action: str  # add, update, unchanged or rejected
    reasons: list[str] = field(default_factory=list)


class Importer:
    """The state of one pass: site tables, licence headroom, logins seen and their lines."""

    def __init__(self, tables: SiteTables, licences: Licences, apply: bool):
        self.tables, self.licences, self.apply = tables, licences, apply
        self.queued = 0  # flow-through changes queued
        self.touched: set[int] = set()  # elements whose users were stored (added, changed)
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
            self.store(adds, updates)  # the caller commits
        return results

    def _existing(self, rows: list[Row]) -> dict:
        if not self.any_users:
            return {}
        logins: set[str] = set()
        for _, data, _ in rows:
            login = (data.get("login") or "").strip()
            if login and not UNDECODED.search(login):  # not UTF-8: cannot be stored anyway
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
                login, reasons = shown(login), [shown(r) for r in reasons]
            return RowResult(line, login, "rejected", reasons), {}, existing
        if existing is None:
            return RowResult(line, login, "add"), values, None
        stored = tuple(existing)[2:]  # the STORED columns, in order
        same = stored == tuple(values[c] for c in STORED) or (
            stored[:-1] == tuple(values[c] for c in STORED[:-1])
            and json.loads(values["services"]) == json.loads(existing.services or "[]"))
        return RowResult(line, login, "unchanged" if same else "update"), values, existing

    def store(self, adds: list[dict], updates: list[tuple]) -> None:
        u = User.__table__
        conn = db.session.connection()
        changes = []
        self.touched.update(v["element_id"] for v in adds)
        self.touched.update(x for old, v in updates for x in (old.element_id, v["element_id"]))
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
            self.queued += len(changes)

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

