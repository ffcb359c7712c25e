"""Incremental LDAP resync: whether a run reads everything or only what changed, and the
reading of a delta.

After a good full run the synchronizer keeps the directory's change marker (see
appliance.ldapchanges) in `Synchronizer.cursor`. The next run reads the marker first; it
reads only the entries changed since the kept one, and finds deletions in a listing of
identifiers only, unless a full run is due: no full run yet, the directory settings or the
mapping changed, another server answered, the marker went backwards (a restored server),
or the admin's full reconciliation interval passed. The run report says which and why.
"""

import ctypes
import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select, update

from appliance import ldapchanges, ldapdir
from appliance.db import db, utcnow
from appliance.ldapconn import LdapSettings, checked_filter
from appliance.models import Account

from .models import Synchronizer, SyncIssue
from .report import Report

BATCH = 1000


@dataclass
class Plan:
    """What this run reads: `delta` or everything, `why`, the settings pinned to the server
    whose marker was read, that marker, and the digest of the settings it depends on."""

    delta: bool
    why: str
    settings: LdapSettings
    marker: ldapchanges.Marker
    digest: str
    before: dict = field(default_factory=dict)
    syn_id: int = 0


@dataclass
class Tally:
    """One run's reading: its report, entries read, why it was truncated, seen keys."""

    report: Report = field(default_factory=Report)
    read: int = 0
    listed: int = 0
    truncated: str | None = None
    keys: set = field(default_factory=set)
    logins: set = field(default_factory=set)
    dns: set = field(default_factory=set)  # of the entries a delta read
    skipped: set = field(default_factory=set)  # their identifiers, when not made rows


def digest(settings: LdapSettings, mapping: dict) -> str:
    """What a delta depends on: a change of any of these makes the next run a full one."""
    spec = {"servers": settings.servers, "port": settings.port, "base": settings.base_dn,
            "filter": settings.filter, "scope": settings.scope, "bind": settings.bind_dn,
            "mapping": mapping}
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]


def plan(syn: Synchronizer, settings: LdapSettings, mapping: dict) -> Plan:
    """Read the directory's marker and decide (LdapError when no server can be used)."""
    marker = ldapchanges.read_marker(settings)
    pinned = ldapchanges.at_server(settings, marker)
    before, dig = json.loads(syn.cursor or "{}"), digest(settings, mapping)

    def full(why: str) -> Plan:
        return Plan(False, why, pinned, marker, dig, before, syn.id)

    if marker.kind is None:
        return full(marker.detail)
    if not before:
        return full("no full run has completed yet")
    if before.get("digest") != dig:
        return full("the directory settings (servers, base DN, filter, scope, bind account) "
                    "or the attribute mapping changed since the last run")
    if (back := ldapchanges.went_back(before, marker)) is not None:
        return full(back)
    due = datetime.fromisoformat(before["full_at"]) + timedelta(days=syn.full_days)
    if utcnow() >= due:
        return full(f"the full reconciliation (every {syn.full_days} days) is due")
    return Plan(True, f"changes since {_show(before)}", pinned, marker, dig, before, syn.id)


def read_changes(ctx, tally: Tally, imp, plan: Plan, mapping: dict, row) -> None:
    """Stage the changed entries and name the removed ones; `row` is jobs.ldap_row."""
    search = f"(&{checked_filter(plan.settings)}{ldapchanges.since(plan.before)})"
    batch = []
    for entry in _reading(tally, ldapdir.entries, plan.settings,
                          sorted(set(mapping.values())), search):
        tally.read += 1
        tally.dns.add(entry.dn)
        if (r := row(entry, mapping, tally.report, tally.keys, tally.logins)) is not None:
            batch.append(r)
        else:  # as in a full run, an entry that cannot be a row keeps no account
            tally.skipped.add(_key(entry, mapping["external_id"]))
        if len(batch) >= BATCH:
            imp.add(batch)
            batch = []
    imp.add(batch)
    ctx.progress(40, f"Read {tally.read:,} changed entries; listing identifiers")
    if tally.truncated:
        return
    have = set(db.session.scalars(select(Account.external_id).where(
        Account.enterprise_id == imp.enterprise.id, Account.source == imp.source)))
    carried = _carried(plan.syn_id, tally.dns)
    attribute = mapping["external_id"]
    for page in _reading(tally, ldapdir.identifiers, plan.settings, attribute, "python-ldap"):
        tally.listed += len(page)
        have.difference_update(key for _, key in page if key not in tally.skipped)
        for dn in carried.keys() & {dn for dn, _ in page} if carried else ():
            tally.report.skip(dn, *carried.pop(dn))
    if not tally.truncated:
        imp.remove(have)


def settle(syn: Synchronizer, plan: Plan, ok: bool) -> None:
    """After the run's report is stored: say which run it was and why; after a good run,
    keep the marker read before it (a full run also restarts the reconciliation clock)."""
    syn = db.session.get(Synchronizer, syn.id)
    report = {**syn.report, "mode": "incremental" if plan.delta else "full", "why": plan.why}
    values = {"last_report": json.dumps(report)}
    if ok and plan.marker.kind is not None:
        full_at = plan.before.get("full_at") if plan.delta else utcnow().isoformat()
        values["cursor"] = json.dumps({**plan.marker.as_dict(), "digest": plan.digest,
                                       "full_at": full_at})
    elif ok:
        values["cursor"] = "{}"
    db.session.execute(update(Synchronizer).where(Synchronizer.id == syn.id).values(values))
    db.session.commit()


def release_memory() -> None:
    """Give the heap a sync freed back to the system (glibc's malloc_trim). The run's
    hundreds of thousands of small objects are freed in Python, but the allocator keeps
    their pages, on the job thread's own arena, so the process grew with every sync."""
    try:
        ctypes.CDLL(None).malloc_trim(0)  # the process's own symbols: libc's among them
    except (OSError, AttributeError):  # not glibc: nothing to do
        pass


def _key(entry, attribute: str) -> str:
    return ldapdir.map_entry(entry, {"k": attribute})["k"]


def _reading(tally: Tally, read, *args):
    """What read(*args) yields, none past a truncation (recorded in `tally`: nothing is
    removed then)."""
    try:
        yield from read(*args)
    except ldapdir.LdapError as exc:
        if exc.kind != "truncated":
            raise
        tally.truncated = exc.message


def _carried(syn_id: int, read: set) -> dict:
    """The last run's skipped entries: a delta does not read them again, so an entry still
    listed and not changed since keeps its issue (by DN) in this run's report."""
    rows = db.session.execute(select(
        SyncIssue.entry, SyncIssue.attribute, SyncIssue.reason, SyncIssue.kind).where(
        SyncIssue.synchronizer_id == syn_id, SyncIssue.kind == "skipped"))
    return {r.entry: tuple(r)[1:] for r in rows if r.entry not in read}


def _show(before: dict) -> str:
    if before.get("kind") == ldapchanges.USN:
        return f"highestCommittedUSN {before['value']}"
    return "contextCSN " + ", ".join(sorted(before.get("value", {}).values()))
