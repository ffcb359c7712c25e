"""What the administrator does to an account's sign-in: enable or disable it, set its XMPP
password, or hand its user a one-time link to set it. Pages and API both call these."""

from __future__ import annotations

import hashlib
from datetime import timedelta

from flask import url_for
from sqlalchemy import delete, select

from appliance import audit
from appliance.db import db, found, utcnow
from appliance.host import host
from appliance.models import Account, Enterprise, XmppCredential, XmppPasswordLink
from appliance.validation import Conflict, Field, Invalid, Schema, length
from appliance.xmpp import service as xmpp

from . import scram, service

#: How long a one-time password link stays valid.
LINK_HOURS = 72

PASSWORD = Field("password", "XMPP password", (length(8, 1024),), secret=True,
                 help="8 to 1024 characters. Kept only as salted SCRAM keys: nobody can read "
                      "it back.")
SET_PASSWORD = Schema("XmppPassword", PASSWORD)
ACCOUNT = Schema("AccountSignIn", Field("enabled", "May sign in", type="boolean",
                                        required=False,
                                        help="Off: new sign-ins are refused and open "
                                             "sessions end within seconds."))


def account(account_id: int) -> Account:
    return found(Account, account_id, "account")


def directory_bound(acc: Account) -> bool:
    """Whether a plugin checks this account's password in a directory (it cannot be set)."""
    return host().plugins.hook.appliance_account_password(account=acc, password=None) \
        is not None


def as_dict(acc: Account) -> dict:
    ent = db.session.get(Enterprise, acc.enterprise_id)
    bound = directory_bound(acc)
    address = service.xmpp_address(acc, ent)
    return {"id": acc.id, "enterprise_id": acc.enterprise_id, "login": acc.login,
            "first_name": acc.first_name, "last_name": acc.last_name, "email": acc.email,
            "phone": acc.phone, "department": acc.department, "source": acc.source,
            "source_label": acc.source_label,
            "enabled": acc.enabled, "xmpp_address": address, "online": service.online(address),
            "sign_in": "directory" if bound else "password",
            "password_set": not bound and db.session.get(XmppCredential, acc.id) is not None}


def update(acc: Account, data) -> Account:
    """Enable or disable sign-in; disabling signs the account out at once."""
    values = ACCOUNT.validate(data, partial=True)
    if "enabled" in values and values["enabled"] != acc.enabled:
        acc.enabled = values["enabled"]
        audit.record("update", "account", acc.id, acc.login, before={"enabled": not acc.enabled},
                     after={"enabled": acc.enabled}, commit=False)
        db.session.commit()
        ent = db.session.get(Enterprise, acc.enterprise_id)
        if not acc.enabled:
            service.sign_out(ent, [acc.login])
        else:
            service.directory_changed(ent)
    return acc


def _settable(acc: Account) -> None:
    if directory_bound(acc):
        raise Conflict.because("directory", f"{acc.login} signs in with the password of the "
                                            "directory it was synchronized from")


def set_password(acc: Account, data, via: str = "administrator") -> None:
    """Store a new XMPP password (as SCRAM keys); the account's open links are spent."""
    _settable(acc)
    password = SET_PASSWORD.validate(data)["password"]
    try:
        service.set_password(acc, password)
    except scram.NotSaslprep as exc:
        raise Invalid({"password": ("saslprep", f"XMPP password cannot be used: {exc}")}) \
            from None
    db.session.execute(delete(XmppPasswordLink).where(XmppPasswordLink.account_id == acc.id))
    audit.record("update", "account", acc.id, acc.login, after={"xmpp_password": f"set by {via}"},
                 username=None if via == "administrator" else f"user {acc.login}", commit=False)
    db.session.commit()


def make_link(acc: Account) -> dict:
    """A one-time link with which the user sets the password (replaces earlier links)."""
    _settable(acc)
    token, digest = service.link_token()
    db.session.execute(delete(XmppPasswordLink).where(XmppPasswordLink.account_id == acc.id))
    expires = utcnow() + timedelta(hours=LINK_HOURS)
    db.session.add(XmppPasswordLink(account_id=acc.id, digest=digest, expires_at=expires))
    audit.record("create", "password_link", acc.id, acc.login,
                 after={"expires_at": expires.isoformat(timespec="minutes")}, commit=False)
    db.session.commit()
    return {"url": url_for("client.link_password", token=token, _external=True),
            "expires_at": expires.isoformat() + "Z"}


def link_account(token: str) -> Account | None:
    """The account a valid, unexpired link is for (None otherwise)."""
    digest = hashlib.sha256(token.encode()).hexdigest()
    row = db.session.scalar(select(XmppPasswordLink).where(XmppPasswordLink.digest == digest))
    if row is None or row.expires_at < utcnow():
        return None
    acc = db.session.get(Account, row.account_id)
    return acc if acc is not None and acc.enabled else None


def online_summary() -> dict:
    """The home panel's and API's picture: the XMPP service and who is signed in."""
    at = xmpp.settings().sessions_reported_at
    return {"fresh": service.sessions_fresh(),
            "reported_at": at.isoformat() + "Z" if at else None,
            "users_online": {str(k): v for k, v in service.online_counts().items()},
            "service": xmpp.status(links=False)}
