"""The sync job: read a directory or PBX node, and replace the synchronizer's accounts.

Entries are streamed page by page into a staging table (memory stays flat), matched to
accounts by their stable identifier, and merged in one transaction. A failed read changes
nothing; a truncated read or a drop beyond the threshold removes nothing and leaves the
synchronizer needing the admin's attention.
"""

import json
import time

from sqlalchemy import delete, insert

from appliance import ldapdir
from appliance.db import db, utcnow
from appliance.directory import SourceImport, SuspiciousImport
from appliance.jobs import JobContext, JobFailed, JobKind, every_n_days
from appliance.models import Account, Contact, Enterprise
from appliance.validation import bad_char

from . import service
from .models import LDAP, Synchronizer, SyncIssue

BATCH = 1000
KEEP_ISSUES = 10_000  # details kept per run; every issue is still counted


class Report:
    """Counts and the skipped/failed entries of one run."""

    def __init__(self):
        self.issues: list[dict] = []
        self.skipped = self.failed = 0

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
            self.issues.append({"kind": kind, "entry": entry[:1024],
                                "attribute": attribute[:64], "reason": reason})


def _syn(ctx: JobContext) -> Synchronizer:
    syn = db.session.get(Synchronizer, int(ctx.target.split(":", 1)[1]))
    if syn is None:
        raise JobFailed("This synchronizer was deleted")
    return syn


def run(ctx: JobContext) -> None:
    syn = _syn(ctx)
    if syn.kind == LDAP:
        sync_ldap(ctx, syn)
    else:
        from .pbxsync import sync_pbx
        sync_pbx(ctx, syn)


def ldap_row(entry, mapping: dict, report: Report, keys: set, logins: set) -> dict | None:
    """An entry as an account row, or None (reported) when it cannot be one."""
    m = ldapdir.map_entry(entry, mapping)
    for f, value in m.items():
        if f != "dn" and (c := bad_char(value)) is not None:
            report.skip(entry.dn, mapping.get(f, f), f"value has the invalid character {c} "
                        "(outside 0x9, 0xA, 0xD, 0x20-0xD7FF, 0xE000-0xFFFD, "
                        "0x10000-0x10FFFF)")
            return None
    key, login = m.get("external_id", ""), m.get("login", "")
    if not key:
        report.skip(entry.dn, mapping["external_id"], "no stable identifier: the entry "
                    "cannot be matched to an account")
        return None
    if not login:
        report.skip(entry.dn, mapping["login"], "no login value")
        return None
    if len(login) > 255 or any(len(m.get(f, "")) > 128 for f in ("first_name", "last_name")):
        report.skip(entry.dn, mapping["login"], "a value is longer than the account allows")
        return None
    if key in keys:
        report.skip(entry.dn, mapping["external_id"], f"another entry has the same "
                    f"identifier {key}")
        return None
    if login.lower() in logins:
        report.skip(entry.dn, mapping["login"], f"another entry has the same login {login}")
        return None
    keys.add(key)
    logins.add(login.lower())
    return {"external_id": key, "login": login, "first_name": m.get("first_name", ""),
            "last_name": m.get("last_name", ""), "email": m.get("email", "")[:255],
            "phone": m.get("phone", "")[:64], "im_address": m.get("email", "")[:255]}


def sync_ldap(ctx: JobContext, syn: Synchronizer) -> None:
    started = time.monotonic()
    ent = db.session.get(Enterprise, syn.enterprise_id)
    try:
        settings = service.ldap_settings(syn)
    except ValueError as exc:
        raise JobFailed(str(exc)) from None
    mapping = service.mapping_of(syn.settings)
    report, keys, logins = Report(), set(), set()
    read, truncated, expected = 0, None, max(syn.last_count or 0, 1)
    allow = bool(ctx.params.get("allow_drop"))
    try:
        with SourceImport(ent, syn.source, syn.name, (Account, Contact)) as imp:
            batch = []
            try:
                for entry in ldapdir.entries(settings, sorted(set(mapping.values()))):
                    read += 1
                    if (row := ldap_row(entry, mapping, report, keys, logins)) is not None:
                        batch.append(row)
                    if len(batch) >= BATCH:
                        imp.add(batch)
                        batch = []
                        ctx.progress(min(90, 90 * read / expected), f"Read {read:,} entries")
            except ldapdir.LdapError as exc:
                if exc.kind != "truncated":
                    raise
                truncated = exc.message
            imp.add(batch)
            conflicts = imp.login_conflicts()
            for key, login, other in conflicts:
                report.skip(key, mapping["login"], f"login {login} already belongs to an "
                            f"account of {other or 'another source'}")
            imp.drop(k for k, _, _ in conflicts)
            ctx.progress(92, f"Storing {imp.count():,} accounts")
            result = imp.commit(max_drop=syn.max_drop / 100, allow_drop=allow,
                                remove=truncated is None)[Account]
    except ldapdir.LdapError as exc:
        finish(syn, ctx, started, report, None, read, state="failed", message=exc.message)
        raise JobFailed(f"{exc.message.rstrip('.')}. Nothing was changed.") from None
    except SuspiciousImport as exc:
        msg = (f"{exc}. The directory returned {read:,} entries. If that is right, confirm "
               "on the synchronizer's page and the next sync removes them.")
        finish(syn, ctx, started, report, None, read, state="needs attention", message=msg)
        raise JobFailed(msg) from None
    if truncated:
        msg = (f"The search did not complete ({truncated.rstrip('.')}). Accounts were added and "
               "updated from what was read; none was removed.")
        finish(syn, ctx, started, report, result, read, state="needs attention", message=msg)
        raise JobFailed(msg)
    finish(syn, ctx, started, report, result, read, state="ok",
            message=f"{read:,} entries read")


def finish(syn: Synchronizer, ctx: JobContext, started: float, report: Report, result,
            read: int, state: str, message: str) -> None:
    """Store the run's report and issues with the synchronizer (its own transaction)."""
    db.session.rollback()
    syn = db.session.get(Synchronizer, syn.id)
    counts = {"added": 0, "updated": 0, "removed": 0, **(result.as_dict() if result else {}),
              "skipped": report.skipped, "failed": report.failed}
    counts.pop("unchanged", None)
    syn.last_report = json.dumps({
        "at": utcnow().isoformat() + "Z", "seconds": round(time.monotonic() - started, 2),
        "state": state, "message": message, "read": read, "run_id": ctx.run_id, **counts})
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


SYNC = JobKind(service.KIND, "Synchronization", run, next_run=every_n_days)
