"""The sync job: read a directory or PBX node, and replace the synchronizer's accounts.

Entries are streamed page by page into a staging table (memory stays flat), matched to
accounts by their stable identifier, and merged in one transaction. A failed read changes
nothing; a truncated read or a drop beyond the threshold removes nothing and leaves the
synchronizer needing the admin's attention.
"""

import time

from appliance import ldapdir
from appliance.db import db
from appliance.directory import SourceImport, SuspiciousImport
from appliance.jobs import JobContext, JobFailed, JobKind, every_n_days
from appliance.models import Account, Contact, Enterprise

from . import ldapsync, rows, service
from .models import LDAP, Synchronizer
from .pbxsync import sync_pbx
from .report import Report, finish

BATCH = 1000


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
        sync_pbx(ctx, syn)


def ldap_row(entry, mapping: dict, report: Report, keys: set, logins: set) -> dict | None:
    """An entry as an account row, or None (reported) when it cannot be one."""
    m = rows.clean(ldapdir.map_entry(entry, mapping), report, entry.dn, mapping)
    if m is None:
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
            "phone": m.get("phone", "")[:64], "im_address": m.get("email", "")[:255],
            "department": m.get("department", "")[:128]}


def sync_ldap(ctx: JobContext, syn: Synchronizer) -> None:
    started = time.monotonic()
    ent = db.session.get(Enterprise, syn.enterprise_id)
    try:
        settings = service.ldap_settings(syn)
    except ValueError as exc:
        raise JobFailed(str(exc)) from None
    mapping = service.mapping_of(syn.settings)
    tally, plan = ldapsync.Tally(), None
    allow = bool(ctx.params.get("allow_drop"))
    try:
        plan = ldapsync.plan(syn, settings, mapping)
        with SourceImport(ent, syn.source, syn.name, (Account, Contact),
                          delta=plan.delta) as imp:
            if plan.delta:
                ldapsync.read_changes(ctx, tally, imp, plan, mapping, ldap_row)
            else:
                _read_all(ctx, tally, imp, plan.settings, mapping,
                          max(service.accounts_of(syn), 1))
            conflicts = imp.login_conflicts()
            for key, login, other in conflicts:
                tally.report.skip(key, mapping["login"], f"login {login} already belongs to "
                                  f"an account of {other or 'another source'}")
            imp.drop(k for k, _, _ in conflicts)
            ctx.progress(92, f"Storing {imp.count():,} accounts")
            result = imp.commit(max_drop=syn.max_drop / 100, allow_drop=allow,
                                remove=tally.truncated is None)[Account]
    except ldapdir.LdapError as exc:
        _end(syn, ctx, started, tally, None, plan, "failed", exc.message)
        raise JobFailed(f"{exc.message.rstrip('.')}. Nothing was changed.") from None
    except SuspiciousImport as exc:
        msg = (f"{exc}. The directory returned {tally.read:,} entries. If that is right, "
               "confirm on the synchronizer's page and the next sync removes them.")
        _end(syn, ctx, started, tally, None, plan, "needs attention", msg)
        raise JobFailed(msg) from None
    if tally.truncated:
        msg = (f"The search did not complete ({tally.truncated.rstrip('.')}). Accounts were "
               "added and updated from what was read; none was removed.")
        _end(syn, ctx, started, tally, result, plan, "needs attention", msg)
        raise JobFailed(msg)
    what = (f"incremental: {tally.read:,} changed entries read, {tally.listed:,} identifiers "
            "listed" if plan.delta else f"full: {tally.read:,} entries read")
    _end(syn, ctx, started, tally, result, plan, "ok", f"{what} ({plan.why})")
    if plan.delta and not tally.read and not result.removed and not tally.report.skipped:
        ctx.noop("No change in the directory")  # scheduled ones fold on the Jobs page


def _read_all(ctx, tally, imp, settings, mapping: dict, expected: int) -> None:
    """A full run: stage every entry the search returns."""
    batch = []
    try:
        for entry in ldapdir.entries(settings, sorted(set(mapping.values()))):
            tally.read += 1
            if (row := ldap_row(entry, mapping, tally.report, tally.keys,
                                tally.logins)) is not None:
                batch.append(row)
            if len(batch) >= BATCH:
                imp.add(batch)
                batch = []
                ctx.progress(min(90, 90 * tally.read / expected), f"Read {tally.read:,} entries")
    except ldapdir.LdapError as exc:
        if exc.kind != "truncated":
            raise
        tally.truncated = exc.message
    imp.add(batch)


def _end(syn, ctx, started, tally, result, plan, state: str, message: str) -> None:
    finish(syn, ctx, started, tally.report, result, tally.read, state=state, message=message)
    if plan is not None:
        ldapsync.settle(syn, plan, ok=state == "ok")
    tally.keys.clear()
    tally.logins.clear()
    ldapsync.release_memory()


SYNC = JobKind(service.KIND, "Synchronization", run, next_run=every_n_days)
