"""The PBX node sync: a connector's records through the MiVoice Business rules (pbx.py) into
accounts, their phone numbers (rule 6) and their Corporate Directory entries."""

import time

from sqlalchemy import delete, insert, select, update

from appliance.db import db
from appliance.directory import SourceImport, SuspiciousImport
from appliance.host import host
from appliance.jobs import JobContext, JobFailed
from appliance.models import Account, Contact, Enterprise
from appliance.validation import Invalid

from . import pbx, pbx_numbers, service
from . import rows as rows_rule
from .models import Number, StatusRef, Synchronizer
from .report import Report, finish

#: The node's column behind each account field, as the report names them.
COLUMNS = {"external_id": "names", "login": "number"}


def connectors() -> dict[str, pbx.Connector]:
    """Every connector the plugins offer (appliance_pbx_connectors), by name."""
    hook = host().plugins.hook
    return {c.name: c for found in hook.appliance_pbx_connectors() for c in found}


def _login(acc: pbx.PbxAccount) -> str:
    """A PBX user logs in with their main number: deskphone, else softphone, else endpoint."""
    return (acc.deskphones[:1] or [acc.softphone or acc.uc_endpoint or acc.key])[0]


def _entry(issue: pbx.Issue) -> str:
    """How the report names a record: its line, its number and whose it is."""
    where = f"line {issue.line}: {issue.number}" if issue.line else issue.number
    return f"{where}, {issue.user}" if issue.user else where


def _who(login: str, acc: pbx.PbxAccount) -> str:
    name = f"{acc.first_name} {acc.last_name}".strip()
    return f"{login}, {name}" if name else login


def _numbers(acc: pbx.PbxAccount) -> dict[str, str]:
    out = {n: "deskphone" for n in acc.deskphones}
    if acc.softphone:
        out[acc.softphone] = f"{acc.softphone_kind or 'minet'} softphone"
    for n in acc.extra_softphones:
        out[n] = "softphone"
    if acc.uc_endpoint:
        out[acc.uc_endpoint] = "uc endpoint"
    return out


def sync_pbx(ctx: JobContext, syn: Synchronizer) -> None:
    started = time.monotonic()
    ent = db.session.get(Enterprise, syn.enterprise_id)
    sset = service.settings_of(ent)
    db.session.commit()  # never hold a write lock while progress is written elsewhere
    connector = connectors().get(syn.connector)
    if connector is None:
        raise JobFailed(f"No PBX connector named {syn.connector!r} is installed")
    report = Report()
    ctx.progress(5, f"Reading {syn.name} through the {connector.name} connector")
    try:
        result = pbx.synchronize(connector, syn.node_settings, syn.platform, sset.dynamic_only)
    except (OSError, ValueError, Invalid) as exc:
        finish(syn, ctx, started, report, None, 0, state="failed", message=str(exc))
        raise JobFailed(f"Cannot read {syn.name}: {exc}. Nothing was changed.") from None
    for issue in result.skipped:
        report.skip(_entry(issue), issue.column or issue.rule, issue.message)
    for issue in result.notes:
        report.note(_entry(issue), issue.column or issue.rule, issue.message)
    rows, numbers, logins = [], {}, set()
    for acc in result.accounts:
        login = _login(acc)
        row = rows_rule.clean({"external_id": acc.key, "login": login,
                               "first_name": acc.first_name, "last_name": acc.last_name,
                               "department": acc.department}, report, _who(login, acc), COLUMNS)
        if row is None:
            continue
        if login in logins:
            report.skip(login, "number", "another account of this node has the same number")
            continue
        logins.add(login)
        numbers[acc.key] = _numbers(acc)
        rows.append({**row, "phone": login, "department": row["department"][:128]})
    before = _node_numbers(db.session.execute, ent, syn)
    db.session.commit()  # a read: no lock held while the import writes
    ctx.progress(60, f"Storing {len(rows):,} accounts")
    try:
        with SourceImport(ent, syn.source, syn.name, (Account, Contact)) as imp:
            for i in range(0, len(rows), 1000):
                imp.add(rows[i:i + 1000])
            conflicts = imp.login_conflicts()
            for _key, login, other in conflicts:
                report.skip(login, "number", f"number {login} already belongs to an account of "
                            f"{other or 'another source'}")
            imp.drop(k for k, _, _ in conflicts)
            merged = imp.commit(max_drop=syn.max_drop / 100,
                                allow_drop=bool(ctx.params.get("allow_drop")),
                                then=lambda conn, _r: _apply_numbers(conn, ent, syn, sset, numbers,
                                                                  report, before))
    except SuspiciousImport as exc:
        msg = (f"{exc}. If the node really lost those users, confirm on the node's page and "
               "the next sync removes them.")
        finish(syn, ctx, started, report, None, len(rows), state="needs attention",
               message=msg)
        raise JobFailed(msg) from None
    finish(syn, ctx, started, report, merged[Account], len(rows), state="ok",
           message=f"{len(result.accounts):,} users on {syn.name}")


def _mine(ent, syn: Synchronizer):
    return (Account.enterprise_id == ent.id) & (Account.source == syn.source)


def _node_numbers(execute, ent, syn: Synchronizer) -> set[tuple[str, str, bool]]:
    """(number, account login, on the PBX) of every number of the node's accounts."""
    return set(execute(select(Number.number, Account.login, Number.on_pbx).join(
        Account, Account.id == Number.account_id).where(_mine(ent, syn))).all())


def _changes(before: set, after: set, report: Report) -> None:
    """The numbers this run added, moved (to another account) and removed, for the report."""
    was = {n: login for n, login, on in before if on}
    now = {n: login for n, login, on in after if on}
    moved = {n: (was[n], login) for n, login in now.items() if was.get(n, login) != login}
    gone = {(n, login) for n, login, _ in before} - {(n, login) for n, login, _ in after}
    report.numbers = {
        "added": [{"number": n, "account": now[n]} for n in sorted(now.keys() - was.keys())],
        "moved": [{"number": n, "from": a, "to": b} for n, (a, b) in sorted(moved.items())],
        "removed": [{"number": n, "account": login} for n, login in sorted(gone)
                    if moved.get(n, ("",))[0] != login]}


def _apply_numbers(conn, ent, syn: Synchronizer, sset, numbers: dict, report: Report,
                   before: set) -> None:
    """Seed rule 6 and the feature profile, in the same transaction as the accounts."""
    mine = _mine(ent, syn)
    conn.execute(update(Account).where(mine, Account.feature_profile == "")
                 .values(feature_profile=sset.feature_profile))
    accounts = dict(conn.execute(select(Account.external_id, Account.id).where(mine)).all())
    ids = select(Account.id).where(mine)
    have: dict[int, dict] = {}
    for n in conn.execute(select(Number).where(Number.account_id.in_(ids))):
        have.setdefault(n.account_id, {})[n.number] = n
    refs = set(conn.execute(select(StatusRef.account_id, StatusRef.number).where(
        StatusRef.account_id.in_(ids))).all())
    for key, account_id in accounts.items():
        wanted = numbers.get(key, {})
        current = have.get(account_id, {})
        states = [pbx_numbers.NumberState(n.number, n.origin, (account_id, n.number) in refs)
                  for n in current.values()]
        for d in pbx_numbers.decide_numbers(states, set(wanted)):
            row = current[d.number]
            if not d.keep:
                conn.execute(delete(Number).where(Number.id == row.id))
                continue
            on_pbx = d.number in wanted
            kind = wanted.get(d.number, row.kind) if row.origin == "pbx" else row.kind
            if (row.on_pbx, row.kind) != (on_pbx, kind):
                conn.execute(update(Number).where(Number.id == row.id)
                             .values(on_pbx=on_pbx, kind=kind))
            if row.on_pbx and not on_pbx:  # deleted on the PBX in this run
                report.note(key, "number", f"{d.number} is no longer on the PBX but is kept: "
                            f"{d.reason}")
        new = [{"account_id": account_id, "number": n, "kind": k, "origin": "pbx",
                "on_pbx": True} for n, k in wanted.items() if n not in current]
        if new:
            conn.execute(insert(Number), new)
    _changes(before, _node_numbers(conn.execute, ent, syn), report)
