"""What the XMPP service asks of the appliance: may this account sign in, what is this
enterprise's directory, what changed since. The XMPP service (Prosody, with the modules in
prosody/) asks over loopback HTTP (link.py); this module answers from the database."""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta

from flask import current_app
from sqlalchemy import delete, exists, func, select

from appliance import auth
from appliance.db import db, utcnow
from appliance.host import host
from appliance.models import (
    Account,
    Contact,
    Enterprise,
    XmppCredential,
    XmppSession,
    XmppSignal,
)
from appliance.validation import Invalid
from appliance.xmpp import service as xmpp
from appliance.xmpp.address import address, localpart, unescape

from . import scram

#: Answers to a sign-in: right password, wrong password (or no such account), an account
#: that may not sign in, and a password that cannot be checked now (directory unreachable).
OK, WRONG, DISABLED, UNAVAILABLE = "ok", "wrong", "disabled", "unavailable"
#: Too many attempts for the account or from the address lately (a temporary failure).
LOCKED = "locked"
#: Signals older than this are deleted (the XMPP service polls every second).
SIGNAL_KEEP = timedelta(hours=1)


def xmpp_address(account: Account, ent: Enterprise) -> str | None:
    """`<login>@<im_domain>`, or None while the enterprise has no IM domain."""
    return address(account.login, ent.im_domain)


def enterprise_of(domain: str) -> Enterprise | None:
    return db.session.scalar(select(Enterprise).where(Enterprise.im_domain == domain.lower()))


def account_of(ent: Enterprise, user: str) -> Account | None:
    """The account whose localpart is `user` (None when none or, impossibly, two)."""
    rows = db.session.scalars(select(Account).where(
        Account.enterprise_id == ent.id,
        func.lower(Account.login) == unescape(user))).all()
    return rows[0] if len(rows) == 1 else None


def check(domain: str, user: str, password: str, ip: str = "") -> str:
    """OK, WRONG, DISABLED, UNAVAILABLE or LOCKED for a sign-in of user@domain from `ip`,
    under the login page's lock-out rules (attempts per account and per address). A
    directory-bound account is checked by the plugin that owns its source
    (appliance_account_password); any other against its stored SCRAM keys. Nothing about
    the account changes."""
    limit = current_app.config["LOGIN_MAX_FAILURES"]
    key = f"xmpp:{user.lower()}@{domain.lower()}"
    if auth.throttle([(key, limit), *([(f"xmpp-addr:{ip}", limit * 4)] if ip else [])]):
        return LOCKED
    verdict = _verdict(domain, user, password)
    if verdict == OK:
        auth.forgive(key)
    return verdict


def _verdict(domain: str, user: str, password: str) -> str:
    ent = enterprise_of(domain)
    account = account_of(ent, user) if ent is not None and password else None
    if account is None:
        return WRONG
    if not account.enabled:
        return DISABLED
    verdict = host().plugins.hook.appliance_account_password(account=account,
                                                             password=password)
    if verdict in (OK, WRONG, UNAVAILABLE):
        return verdict
    cred = db.session.get(XmppCredential, account.id)
    return OK if cred is not None and scram.check(scram.Keys.parse(cred.keys), password) \
        else WRONG


def set_password(account: Account, password: str) -> None:
    """Store `password` for `account` as SCRAM keys (scram.NotSaslprep when it cannot be)."""
    keys = str(scram.keys(password))
    cred = db.session.get(XmppCredential, account.id)
    if cred is None:
        db.session.add(XmppCredential(account_id=account.id, keys=keys))
    else:
        cred.keys, cred.set_at = keys, utcnow()


def signal(ent_id: int, kind: str, jid: str = "") -> None:
    """Tell the XMPP service (at its next poll) that a directory changed or that an account
    must be signed out; part of the caller's transaction, which also drops signals older
    than SIGNAL_KEEP (the poll itself only reads)."""
    db.session.execute(delete(XmppSignal).where(XmppSignal.at < utcnow() - SIGNAL_KEEP))
    db.session.add(XmppSignal(enterprise_id=ent_id, kind=kind, jid=jid))


def directory_changed(ent: Enterprise) -> None:
    """Signal, in a transaction of its own (the change is committed), that `ent`'s
    directory changed: connected users get the difference as roster pushes."""
    signal(ent.id, "directory")
    db.session.commit()


def sign_out(ent: Enterprise, logins) -> None:
    """Signal, in a transaction of its own, that these accounts' sessions end (disabled,
    deleted, removed by a sync)."""
    if ent.im_domain:
        for login in logins:
            signal(ent.id, "signout", address(login, ent.im_domain))
    directory_changed(ent)


def events(after: int) -> dict:
    """Signals after the cursor `after`: the sign-outs, and every IM domain's directory
    version (the id of its last directory signal)."""
    signouts = db.session.execute(select(XmppSignal.id, XmppSignal.jid).where(
        XmppSignal.id > after, XmppSignal.kind == "signout").order_by(XmppSignal.id)).all()
    last = db.session.scalar(select(func.max(XmppSignal.id))) or 0
    versions = dict(db.session.execute(
        select(XmppSignal.enterprise_id, func.max(XmppSignal.id))
        .where(XmppSignal.kind == "directory").group_by(XmppSignal.enterprise_id)).all())
    domains = db.session.execute(select(Enterprise.id, Enterprise.im_domain)
                                 .where(Enterprise.im_domain.is_not(None))).all()
    return {"cursor": max(last, after),
            "signouts": [jid for _, jid in signouts],
            "directories": {domain: str(versions.get(eid, 0)) for eid, domain in domains}}


def directory(ent: Enterprise) -> dict:
    """The roster every user of `ent` gets: its enabled accounts, grouped by department
    (the enterprise's name where none is known), and the contacts with an IM address that
    other servers' users have (peers, external IM servers), one group per source. A
    contact that is one of the accounts (a synchronizer brings both) is the account."""
    version = db.session.scalar(select(func.max(XmppSignal.id)).where(
        XmppSignal.enterprise_id == ent.id, XmppSignal.kind == "directory")) or 0
    accounts = db.session.execute(select(
        Account.login, Account.first_name, Account.last_name, Account.department).where(
        Account.enterprise_id == ent.id, Account.enabled).order_by(Account.id)).all()
    users = [localpart(row.login) for row in accounts]
    group = ent.name or ent.eid
    contacts = [{"jid": f"{user}@{ent.im_domain}",
                 "name": _name(row.first_name, row.last_name, row.login),
                 "groups": [row.department.strip() or group]}
                for user, row in zip(users, accounts, strict=True)]
    is_account = exists().where(Account.enterprise_id == Contact.enterprise_id,
                                Account.source == Contact.source,
                                Account.external_id == Contact.external_id)
    imported = db.session.execute(select(
        Contact.im_address, Contact.first_name, Contact.last_name, Contact.source_label).where(
        Contact.enterprise_id == ent.id, Contact.im_address != "", ~is_account)
        .order_by(Contact.id)).all()
    own = {c["jid"] for c in contacts}
    for im_address, first, last, label in imported:
        jid = im_address.strip().lower()
        if "@" in jid and jid not in own:
            own.add(jid)
            contacts.append({"jid": jid, "name": _name(first, last, jid),
                             "groups": [label or "Contacts"]})
    return {"version": str(version), "users": users, "contacts": contacts}


def _name(first: str, last: str, fallback: str) -> str:
    return " ".join(p for p in (first, last) if p) or fallback


def link_token() -> tuple[str, str]:
    """A new one-time token and the digest stored for it."""
    token = secrets.token_urlsafe(24)
    return token, hashlib.sha256(token.encode()).hexdigest()


#: A report of who is signed in older than this is not believed (the service reports at
#: least every 30 s while it runs).
FRESH = timedelta(seconds=90)
MAX_SESSIONS = 200_000


def record_sessions(report) -> None:
    """Replace who is signed in with the XMPP service's report:
    {"hosts": {"<domain>": [{"user", "resource", "since"}, ...]}} (Invalid otherwise)."""
    hosts = report.get("hosts") if isinstance(report, dict) else None
    entries = [(h, e) for h, lst in hosts.items() if isinstance(lst, list) for e in lst] \
        if isinstance(hosts, dict) else None
    if entries is None or len(entries) > MAX_SESSIONS or not all(
            isinstance(e, dict) and isinstance(e.get("user"), str) and len(e["user"]) < 256
            and isinstance(e.get("resource", ""), str) and len(e.get("resource", "")) < 256
            and (e.get("since") is None or type(e.get("since")) is int)
            for _, e in entries):
        raise Invalid({"hosts": ("shape", "Send {hosts: {domain: [{user, resource, since}]}}")})
    ents = dict(db.session.execute(select(Enterprise.im_domain, Enterprise.id).where(
        Enterprise.im_domain.in_([h.lower() for h in hosts]))).all())
    now = utcnow()
    db.session.execute(delete(XmppSession))
    db.session.add_all(
        XmppSession(enterprise_id=ents[h.lower()], jid=f"{e['user']}@{h.lower()}",
                    resource=e.get("resource", ""), reported_at=now,
                    since=datetime.fromtimestamp(e["since"], UTC).replace(tzinfo=None)
                    if e.get("since") is not None and 0 <= e["since"] < 2**33 else None)
        for h, e in entries if h.lower() in ents)
    xmpp.settings().sessions_reported_at = now
    db.session.commit()


def signed_in(ent: Enterprise) -> int | None:
    """How many of `ent`'s users are signed in; None when that is not known (the service
    runs but has not reported lately)."""
    if not sessions_fresh():
        return None if xmpp.xmpp().running() else 0
    return db.session.scalar(select(func.count(func.distinct(XmppSession.jid))).where(
        XmppSession.enterprise_id == ent.id))


def sessions_fresh() -> bool:
    """Whether the XMPP service reported who is signed in lately."""
    at = xmpp.settings().sessions_reported_at
    return at is not None and utcnow() - at < FRESH


def online(address: str | None) -> bool | None:
    """Whether `address` is signed in now; None when that is not known (no recent report)."""
    if not address or not sessions_fresh():
        return None
    return db.session.scalar(select(XmppSession.id).where(XmppSession.jid == address)
                             .limit(1)) is not None


def online_counts() -> dict[int, int]:
    """Signed-in users (not resources) per enterprise id, from the last fresh report."""
    if not sessions_fresh():
        return {}
    return dict(db.session.execute(select(XmppSession.enterprise_id,
                                          func.count(func.distinct(XmppSession.jid)))
                                   .group_by(XmppSession.enterprise_id)).all())
