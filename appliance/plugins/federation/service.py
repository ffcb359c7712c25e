"""Federation: the one place that validates, stores and applies the federation settings.

Every change ends in `apply()`: the embedded XMPP service's configuration is rendered from
the database and reloaded (never restarted), so connected clients stay connected.
"""

import secrets
from pathlib import Path

from flask import current_app
from sqlalchemy import select, update

from appliance import audit, files, vault
from appliance.db import db, utcnow
from appliance.models import Contact
from appliance.validation import (
    Field,
    Invalid,
    Schema,
    host_or_ip,
    int_range,
    is_hostname,
    max_length,
)
from appliance.xmpp.config import XmppConfig
from appliance.xmpp.prosody import XmppError, XmppService

from .models import Server, Settings
from .probe import probe

PROBE_USER = "appliance-probe"

SETTINGS = Schema(
    "XmppServiceSettings",
    Field("domain", "XMPP domain", (host_or_ip(),),
          help="The domain of this appliance's users' IM addresses (user@domain)."),
    Field("c2s_port", "Client port", (int_range(1, 65535),), type="integer"),
    Field("s2s_port", "Server-to-server port", (int_range(1, 65535),), type="integer",
          help="5269 unless a firewall or MBG forwards another port."),
    Field("interfaces", "Listen on", (max_length(255),), required=False,
          help="Addresses to listen on, separated by commas; * for all."),
    Field("cert_file", "Certificate", (max_length(1024), files.inside_import_dir("Certificate")),
          required=False, help="PEM certificate (with its chain) valid for the XMPP domain, in "
                               "the import directory (a relative path is taken there)."),
    Field("key_file", "Private key", (max_length(1024), files.inside_import_dir("Private key")),
          required=False, help="PEM private key, in the import directory."),
    Field("ca_file", "CA certificates",
          (max_length(1024), files.inside_import_dir("CA certificates")), required=False,
          help="CAs remote servers' certificates are checked with, in the import directory; "
               "empty: the system's."),
)



# --- the service and its settings ---------------------------------------------------------


def xmpp() -> XmppService:
    cfg = current_app.config
    path = cfg.get("XMPP_CONFIG") or str(Path(cfg["DATA_DIR"]) / "xmpp" / "prosody.cfg.lua")
    return XmppService(Path(path), cfg.get("XMPP_PROSODYCTL") or "prosodyctl",
                       cfg.get("XMPP_PROSODY") or "prosody")


def settings() -> Settings:
    """The settings row, created with defaults on first use."""
    row = db.session.scalar(select(Settings).limit(1))
    if row is None:
        host = current_app.config.get("HOSTNAME") or "appliance.local"
        row = Settings(domain=current_app.config.get("XMPP_DOMAIN") or host)
        db.session.add(row)
        db.session.flush()
    return row


def servers() -> list[Server]:
    return list(db.session.scalars(select(Server).order_by(Server.domain)))


def static_hosts() -> dict[str, tuple[str, int]]:
    """XMPP_HOSTS ("domain=address:port,..."): where to reach federated domains not in DNS."""
    out = {}
    for item in (current_app.config.get("XMPP_HOSTS") or "").split(","):
        name, _, where = item.strip().partition("=")
        host, _, port = where.rpartition(":")
        if name and host and port.isdigit():
            out[name.strip().lower()] = (host.strip(), int(port))
    return out


TLS_FILES = {"cert_file": "Certificate", "key_file": "Private key", "ca_file": "CA certificates"}


def tls_file(s: Settings, name: str) -> str:
    """The real path of a TLS file setting ("" when unset), checked again inside the import
    directory: a file swapped for a symlink out of it since the save raises Invalid."""
    raw = getattr(s, name) or ""
    return str(files.admin_path(raw, TLS_FILES[name], name)) if raw else ""


def interfaces(s: Settings) -> list[str]:
    return [i.strip() for i in (s.interfaces or "*").split(",") if i.strip()] or ["*"]


def config(s: Settings | None = None) -> XmppConfig:
    """The service's configuration; Invalid when a TLS file is outside the import directory."""
    s = s or settings()
    rows = servers()
    fixed = static_hosts()
    data = Path(current_app.config["DATA_DIR"]) / "xmpp"
    return XmppConfig(
        domain=s.domain, c2s_port=s.c2s_port, s2s_port=s.s2s_port, interfaces=interfaces(s),
        **{name: tls_file(s, name) for name in TLS_FILES}, data_dir=str(data),
        federation_enabled=s.enabled, domains=[r.domain for r in rows],
        routes={r.domain: (r.server, r.port) if r.nextplane else fixed[r.domain]
                for r in rows if r.nextplane or r.domain in fixed},
    )


def apply(s: Settings | None = None) -> str:
    """Render the XMPP service's configuration and reload it; return what happened."""
    s = s or settings()
    service = xmpp()
    try:
        if not service.installed():
            service.write(config(s))
            msg = ("Saved. The XMPP service (Prosody) is not installed on this appliance; its "
                   f"configuration is kept in {service.config_path}.")
        elif service.apply(config(s)):
            msg = "Saved and applied to the running XMPP service."
        else:
            msg = "Saved. The XMPP service is not running; it uses this when it starts."
    except Invalid as exc:
        msg = f"Saved, but the XMPP service configuration was not written: {exc}"
    except (XmppError, OSError) as exc:
        msg = f"Saved, but the XMPP service could not be reloaded: {exc}"
    s.applied_at, s.apply_message = utcnow(), msg
    db.session.commit()
    return msg


def status() -> dict:
    """The service panel: installed, running, version, s2s port, federated connections."""
    s, service = settings(), xmpp()
    out = {"installed": service.installed(), "running": False, "version": None,
           "s2s_port": s.s2s_port, "domain": s.domain, "connections": [],
           "enabled": s.enabled, "config_path": str(service.config_path),
           "applied_at": s.applied_at.isoformat() + "Z" if s.applied_at else None,
           "apply_message": s.apply_message}
    if out["installed"]:
        out["version"] = service.version()
        out["running"] = service.running()
        if out["running"]:
            try:
                out["connections"] = service.s2s_sessions()
            except (XmppError, OSError):
                out["connections"] = []
    return out


def save_settings(data) -> Settings:
    values = SETTINGS.validate(data)
    s = settings()
    before = {k: getattr(s, k) for k in values}
    for k, v in values.items():
        setattr(s, k, v if v is not None else "")
    s.interfaces = s.interfaces or "*"
    audit.record("update", "xmpp service", s.id, s.domain, before=before, after=values,
                 commit=False)
    db.session.commit()
    return s


def set_enabled(on: bool) -> str:
    """Enable Federation / Disable Federation, applied at once."""
    s = settings()
    s.enabled = on
    audit.record("update", "federation", s.id, s.domain, after={"enabled": on}, commit=False)
    if on:
        for source in db.session.scalars(select(Contact.source).where(
                Contact.source.startswith("peering:")).distinct()):
            _federate(None, source)
    db.session.commit()
    return apply(s)


# --- the Test action ------------------------------------------------------------------------


def test_domain(domain: str) -> dict:
    """Check through the embedded service that `domain` can be reached (XMPP ping)."""
    s, service = settings(), xmpp()
    if not service.installed():
        return {"ok": False, "reason": "service", "message": "The XMPP service is not installed"}
    if not service.running():
        return {"ok": False, "reason": "service", "message": "The XMPP service is not running"}
    try:
        ca_file = tls_file(s, "ca_file")
    except Invalid as exc:
        return {"ok": False, "reason": "certificate", "message": str(exc)}
    password = vault.unseal(s.probe_password_sealed) if s.probe_password_sealed else ""
    if not password:
        password = secrets.token_urlsafe(24)
        service.register(PROBE_USER, s.domain, password)
        s.probe_password_sealed = vault.seal(password)
        db.session.commit()
    host = next((i for i in interfaces(s) if i != "*"), "127.0.0.1")
    result = probe(f"{PROBE_USER}@{s.domain}", password, (host, s.c2s_port), domain,
                   ca_file or None, timeout=float(current_app.config.get("XMPP_TEST_TIMEOUT",
                                                                          10)))
    if result.get("reason") == "login":  # the account went away (new data dir): once more
        service.register(PROBE_USER, s.domain, password)
        result = probe(f"{PROBE_USER}@{s.domain}", password, (host, s.c2s_port), domain,
                       ca_file or None)
    return result


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
    s = settings()
    have = {r.domain for r in servers()} | {s.domain.lower()}
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
        apply(s)
