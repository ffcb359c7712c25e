"""The users provisioned on a network element that belongs to an enterprise are that
enterprise's accounts: they sign in to its XMPP service once a password is set for them
(by the administrator, or by the user through a one-time link).

Each element is one source of accounts, `element:<id>`, labelled with the element's name;
a user's account is keyed by the user's id, so it keeps its password across a change of
login. This module is the one place that keeps them in step: every write path (manual and
API, bulk import, IDS, the management platform, moving a user, changing or clearing the
element's enterprise, renaming a department, deleting the element) calls `sync_element`
(or `remove_element`) once its own write is committed. It replaces the source's accounts
through the host's `appliance.directory`, which tells the client service (roster pushes,
sign-outs of the accounts that went).

A user whose login another source's account of the enterprise already has (an LDAP
synchronizer's, a PBX node's) gets no account, and that account is left alone: the
conflict is reported (`user_account`, `element_accounts`, the save's flash or answer),
never a failed save. Logins are compared ignoring case, as sign-in does.
"""

from dataclasses import dataclass, field

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from appliance.db import db
from appliance.directory import ImportResult, remove_source, replace_source
from appliance.models import Account, Enterprise

from .models import Department, Element, User

#: How many times a sync reads the users again when they changed while it merged.
ATTEMPTS = 5


def source(element_id: int) -> str:
    """The accounts source of an element's users."""
    return f"element:{element_id}"


@dataclass
class Synced:
    """What a sync did: the enterprise (None: the element has none), the merge's result,
    and the users left without an account, as (login, label of the account that has it)."""

    enterprise: Enterprise | None = None
    result: ImportResult | None = None
    conflicts: list[tuple[str, str]] = field(default_factory=list)


def _enterprise(enterprise_id: int | None) -> Enterprise | None:
    return db.session.get(Enterprise, enterprise_id) if enterprise_id else None


def _rows(e: Element) -> list[dict]:
    """The element's users as account rows (keyed by the user's id), in id order."""
    u, d = User.__table__.c, Department.__table__.c
    stmt = select(u.id, u.login, u.first_name, u.last_name, u.email, u.number, d.name) \
        .outerjoin(Department.__table__, d.id == u.department_id) \
        .where(u.element_id == e.id).order_by(u.id)
    return [{"external_id": str(uid), "login": login, "first_name": first, "last_name": last,
             "email": email, "phone": number, "department": dep or ""}
            for uid, login, first, last, email, number, dep in
            db.session.connection().execute(stmt)]


def _conflicts(ent: Enterprise, e: Element, rows: list[dict]) -> list[tuple[str, str]]:
    """(login, label) of the rows whose login, whatever its case, an account of another
    source of `ent` has (sign-in finds an account by its login ignoring case, so two would
    make both unusable)."""
    if not rows:
        return []
    mine = {r["login"].lower(): r["login"] for r in rows}
    a = Account.__table__.c
    out = []
    for login, label in db.session.connection().execute(select(a.login, a.source_label).where(
            a.enterprise_id == ent.id, a.source != source(e.id))):
        if (key := login.lower()) in mine:
            out.append((mine[key], label or "another source"))
    return sorted(out)


def sync_element(e: Element, was: int | None = None) -> Synced:
    """Make the accounts of `e`'s enterprise from `e` equal `e`'s users (after the caller
    committed its change); `was`: the enterprise `e` belonged to before the change, whose
    accounts from `e` go when it is another one.

    The element's users are the administrator's own data, read whole from this database:
    a result is never partial, and deleting many users (or the last one) is deliberate, so
    no drop is refused as suspicious (allow_drop). Should the users change while the merge
    runs (another request), they are read and merged again, so the last sync of concurrent
    changes never leaves a stale set behind.
    """
    if was and was != e.enterprise_id and (old := _enterprise(was)) is not None:
        remove_source(Account, old, source(e.id))
    ent = _enterprise(e.enterprise_id)
    if ent is None:
        return Synced()
    synced = Synced(ent)
    rows = _rows(e)
    for attempt in range(1, ATTEMPTS + 1):
        synced.conflicts = _conflicts(ent, e, rows)
        taken = {login.lower() for login, _ in synced.conflicts}
        # The merge sets the label only on the rows it changes: a renamed element's label
        # is set here, on all of them.
        db.session.execute(update(Account).where(
            Account.enterprise_id == ent.id, Account.source == source(e.id),
            Account.source_label != e.name).values(source_label=e.name))
        db.session.commit()  # and end this read, so the reads below see the others' changes
        merged = True
        try:
            synced.result = replace_source(
                Account, ent, source(e.id), e.name,
                [r for r in rows if r["login"].lower() not in taken], allow_drop=True)
        except IntegrityError:
            # Another sync of this element, or another source taking one of these logins,
            # committed first (nothing of this merge was kept): read and merge again.
            if attempt == ATTEMPTS:
                raise
            merged = False
        fresh = _rows(e)
        if merged and fresh == rows:
            break
        rows = fresh
    return synced


def sync_elements(element_ids) -> list[Synced]:
    """`sync_element` for each of these elements (in this order) that belongs to an
    enterprise. A user moved between two elements of one enterprise still has its account
    from the element it left until that element is synced, so the one it joined may find
    the login taken: the elements that found a login taken are synced once more after the
    others."""
    ids = list(dict.fromkeys(i for i in element_ids if i is not None))
    if not ids:
        return []
    found = {e.id: e for e in db.session.scalars(select(Element).where(Element.id.in_(ids)))
             .unique()}
    synced = {i: sync_element(found[i]) for i in ids if i in found and found[i].enterprise_id}
    if len(synced) > 1:
        for i in [i for i, s in synced.items() if s.conflicts]:
            synced[i] = sync_element(found[i])
    return list(synced.values())


def sync_department(department_id: int) -> list[Synced]:
    """After a department was renamed: its users' accounts carry the new name."""
    return sync_elements(db.session.scalars(select(User.element_id).where(
        User.department_id == department_id).distinct()).all())


def remove_element(element_id: int, enterprise_id: int | None) -> int:
    """After an element of `enterprise_id` was deleted: its accounts go (they are signed
    out); return how many."""
    ent = _enterprise(enterprise_id)
    return remove_source(Account, ent, source(element_id)) if ent is not None else 0


def conflict_text(login: str, label: str, ent: Enterprise) -> str:
    return (f"{login} has no account in {ent.name}: the login belongs to an account of "
            f"{label} (rename one of them, or remove that account at its source)")


def user_accounts(users) -> dict[int, dict]:
    """For each of these users (a page of them, say): the account it is in its element's
    enterprise (account_id, enterprise), or why it has none (account_conflict); all None
    when its element belongs to no enterprise. A few queries per enterprise, not per user."""
    out = {u.id: {"enterprise": None, "account_id": None, "account_conflict": None}
           for u in users}
    by_ent: dict[int, list[User]] = {}
    for u in users:
        if u.element.enterprise_id:
            by_ent.setdefault(u.element.enterprise_id, []).append(u)
    for ent_id, group in by_ent.items():
        ent = db.session.get(Enterprise, ent_id)
        ids = {(source(u.element_id), str(u.id)): u.id for u in group}
        for row in db.session.execute(select(Account.id, Account.source, Account.external_id)
                                      .where(Account.enterprise_id == ent_id,
                                             Account.source.in_({k[0] for k in ids}),
                                             Account.external_id.in_({k[1] for k in ids}))):
            if (uid := ids.get((row.source, row.external_id))) is not None:
                out[uid]["account_id"] = row.id
        for u in group:
            out[u.id]["enterprise"] = ent.name
        missing = {u.login.lower(): u for u in group if out[u.id]["account_id"] is None}
        if not missing:
            continue
        for login, label, src in db.session.execute(
                select(Account.login, Account.source_label, Account.source).where(
                    Account.enterprise_id == ent_id,
                    func.lower(Account.login).in_(list(missing)))):
            u = missing.get(login.lower())
            if u is not None and src != source(u.element_id):
                out[u.id]["account_conflict"] = conflict_text(
                    u.login, label or "another source", ent)
    return out


def user_account(u: User) -> dict:
    """`user_accounts` of one user."""
    return user_accounts([u])[u.id]


def element_accounts(e: Element) -> dict | None:
    """The accounts an element's users are: how many, and the users left without one
    (None when the element belongs to no enterprise)."""
    ent = _enterprise(e.enterprise_id)
    if ent is None:
        return None
    count = db.session.scalar(select(func.count()).select_from(Account).where(
        Account.enterprise_id == ent.id, Account.source == source(e.id)))
    return {"enterprise_id": ent.id, "enterprise": ent.name, "accounts": count,
            "conflicts": [{"login": login, "account_of": label} for login, label in
                          _conflicts(ent, e, _rows(e))]}


def conflicts_note(synced: list[Synced] | Synced, limit: int = 3) -> str:
    """The conflicts of one or more syncs as a sentence for a flash or a job message ("" when
    there are none)."""
    items = [(s.enterprise, c) for s in ([synced] if isinstance(synced, Synced) else synced)
             for c in s.conflicts]
    if not items:
        return ""
    shown = "; ".join(conflict_text(login, label, ent) for ent, (login, label) in
                      items[:limit])
    more = f" (and {len(items) - limit} more)" if len(items) > limit else ""
    return f"{len(items)} user(s) without an account: {shown}{more}."
