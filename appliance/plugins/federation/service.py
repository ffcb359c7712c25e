"""Federation: the switch, the policy it gives the XMPP service, Test, and the domains of
contacts imported from peers.

Every change ends in the host's `appliance.xmpp.service.apply()`: the embedded XMPP
service's configuration is rendered from the database and reloaded (never restarted), so
connected clients stay connected.
"""

import secrets

from flask import abort, current_app
from sqlalchemy import select, update

from appliance import audit, vault
from appliance.db import db
from appliance.models import Contact
from appliance.validation import Invalid, is_hostname
from appliance.xmpp import service as xmpp
from appliance.xmpp.prosody import XmppError

from .models import Server, Settings
from .probe import probe

PROBE_USER = "appliance-probe"


def settings() -> Settings:
    """The plugin's row (the switch, the Test account), created on first use."""
    row = db.session.scalar(select(Settings).limit(1))
    if row is None:
        row = Settings()
        db.session.add(row)
        db.session.flush()
    return row


def servers() -> list[Server]:
    return list(db.session.scalars(select(Server).order_by(Server.domain)))


def policy() -> dict:
    """The server-to-server policy the XMPP service enforces: on or off, the federated
    domains, and routes for those not in DNS (a row's server and port, else XMPP_HOSTS)."""
    rows, fixed = servers(), xmpp.static_hosts()
    return {"enabled": settings().enabled, "domains": [r.domain for r in rows],
            "routes": {r.domain: (r.server, r.port) if r.server else fixed[r.domain]
                       for r in rows if r.server or r.domain in fixed}}


def status() -> dict:
    """The XMPP service panel, with the federation switch."""
    return {**xmpp.status(), "enabled": settings().enabled}


def set_enabled(on: bool) -> str:
    """Enable Federation / Disable Federation, applied at once."""
    s = settings()
    s.enabled = on
    audit.record("update", "federation", s.id, xmpp.settings().domain, after={"enabled": on},
                 commit=False)
    if on:
        for source in db.session.scalars(select(Contact.source).where(
                Contact.source.startswith("peering:")).distinct()):
            _federate(None, source)
    db.session.commit()
    return xmpp.apply()


# --- the Test action ------------------------------------------------------------------------


def test_domain(domain: str) -> dict:
    """Check through the embedded service that `domain` can be reached (XMPP ping)."""
    s, x, service = settings(), xmpp.settings(), xmpp.xmpp()
    if not service.installed():
        return {"ok": False, "reason": "service", "message": "The XMPP service is not installed"}
    if not service.running():
        return {"ok": False, "reason": "service", "message": "The XMPP service is not running"}
    try:
        ca_file = xmpp.tls_file(x, "ca_file")
    except Invalid as exc:
        return {"ok": False, "reason": "certificate", "message": str(exc)}
    password = vault.unseal(s.probe_password_sealed) if s.probe_password_sealed else ""
    if not password:
        password = secrets.token_urlsafe(24)
        service.register(PROBE_USER, x.domain, password)
        s.probe_password_sealed = vault.seal(password)
        db.session.commit()
    host = next((i for i in xmpp.interfaces(x) if i != "*"), "127.0.0.1")
    result = probe(f"{PROBE_USER}@{x.domain}", password, (host, x.c2s_port), domain,
                   ca_file or None, timeout=float(current_app.config.get("XMPP_TEST_TIMEOUT",
                                                                          10)))
    if result.get("reason") == "login":  # the account went away (new data dir): once more
        service.register(PROBE_USER, x.domain, password)
        result = probe(f"{PROBE_USER}@{x.domain}", password, (host, x.c2s_port), domain,
                       ca_file or None)
    return {**result, **links(service, domain)}


def links(service, domain: str) -> dict:
    """Each direction of the link with `domain` as the service has it now: our stream out
    and theirs in, whether each is authenticated and how; and what is missing, in words."""
    try:
        found = [s for s in service.s2s_sessions() if s["remote"] == domain.lower()]
    except (XmppError, OSError):
        return {"links": []}
    words = []
    for way, name in (("out", "our stream to it"), ("in", "its stream to us")):
        ups = [s for s in found if s["direction"] == way and s["authenticated"]]
        words.append(f"{name}: authenticated by {ups[0]['by']}"
                     + (f" over {ups[0]['tls']}" if ups[0]["tls"] else "") if ups else
                     f"{name}: not established")
    return {"links": found, "directions": "; ".join(words)}


# --- contacts imported from peers ----------------------------------------------------------


def _federate(enterprise_id: int | None, source: str) -> list[str]:
    """Mark a peer's contacts federated and allow their IM domains; return new domains."""
    where = [Contact.source == source]
    if enterprise_id is not None:
        where.append(Contact.enterprise_id == enterprise_id)
    db.session.execute(update(Contact).where(*where, Contact.federated.is_(False))
                       .values(federated=True))
    domains = {a.rsplit("@", 1)[1].lower() for a in db.session.scalars(
        select(Contact.im_address).where(*where, Contact.im_address.contains("@")).distinct())}
    have = {r.domain for r in servers()} | {xmpp.settings().domain.lower()}
    added = sorted(d for d in domains if d not in have and is_hostname(d) and "." in d)
    for d in added:
        db.session.add(Server(domain=d, origin=source))
    return added


def contacts_imported(enterprise, source: str) -> None:
    """Seed 002: contacts imported from a peer or external IM server are federated
    automatically when federation is enabled."""
    if not source.startswith("peering:"):
        return
    s = settings()
    if not s.enabled:
        db.session.commit()
        return
    added = _federate(enterprise.id, source)
    db.session.commit()
    if added:
        audit.record("create", "federated servers", "", source,
                     after={"domains": ", ".join(added)})
        xmpp.apply()


def disconnect(local: str, remote: str) -> str:
    """Disconnect: close the link between `local` and `remote` (404 unless it is up)."""
    service = xmpp.xmpp()
    if not any(s["local"] == local and s["remote"] == remote
               for s in service.s2s_sessions()):
        abort(404, f"No link between {local} and {remote}")
    service.close_s2s(local, remote)
    audit.record("update", "federated link", "", remote, after={"disconnected": local})
    return (f"Disconnected {remote}. It may connect again while it is federated; delete it "
            "from the table to refuse it.")
