"""The XMPP service's settings and state: one place renders its configuration from the
database (the settings, every enterprise's IM domain as a virtual host, the plugins'
server-to-server policy) and applies it. Pages that edit the settings (the Federation tab)
call these functions."""

from __future__ import annotations

import secrets as tokens
from pathlib import Path

from flask import current_app
from sqlalchemy import select

from appliance import audit, files
from appliance.db import db, utcnow
from appliance.host import host
from appliance.models import Enterprise, XmppSettings
from appliance.validation import Field, Invalid, Schema, host_or_ip, int_range, max_length

from .config import XmppConfig
from .prosody import XmppError, XmppService
from .supervisor import Supervisor

SETTINGS = Schema(
    "XmppServiceSettings",
    Field("domain", "XMPP domain", (host_or_ip(),),
          help="The appliance's own XMPP domain (its test account lives there); each "
               "enterprise's users sign in to the enterprise's IM domain."),
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
TLS_FILES = {"cert_file": "Certificate", "key_file": "Private key", "ca_file": "CA certificates"}


def xmpp() -> XmppService:
    """The local Prosody, as this app's settings place it."""
    cfg = current_app.config
    path = cfg.get("XMPP_CONFIG") or str(Path(cfg["DATA_DIR"]) / "xmpp" / "prosody.cfg.lua")
    return XmppService(Path(path), cfg.get("XMPP_PROSODYCTL") or "prosodyctl",
                       cfg.get("XMPP_PROSODY") or "prosody")


_secrets: dict[Path, str] = {}


def secret() -> str:
    """The shared secret the XMPP service presents to the appliance (<data dir>/xmpp/secret,
    made once, readable by the appliance's user only; read from disk once a process)."""
    path = Path(current_app.config["DATA_DIR"]).resolve() / "xmpp" / "secret"
    if path not in _secrets:
        if not path.exists():
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(tokens.token_urlsafe(32))
            tmp.chmod(0o600)
            tmp.replace(path)
        _secrets[path] = path.read_text().strip()
    return _secrets[path]


def settings() -> XmppSettings:
    """The settings row, created with defaults on first use."""
    row = db.session.scalar(select(XmppSettings).limit(1))
    if row is None:
        name = current_app.config.get("HOSTNAME") or "appliance.local"
        row = XmppSettings(domain=current_app.config.get("XMPP_DOMAIN") or name)
        db.session.add(row)
        db.session.flush()
    return row


def static_hosts() -> dict[str, tuple[str, int]]:
    """XMPP_HOSTS ("domain=address:port,..."): where to reach remote domains not in DNS."""
    out = {}
    for item in (current_app.config.get("XMPP_HOSTS") or "").split(","):
        name, _, where = item.strip().partition("=")
        address, _, port = where.rpartition(":")
        if name and address and port.isdigit():
            out[name.strip().lower()] = (address.strip(), int(port))
    return out


def tls_file(s: XmppSettings, name: str) -> str:
    """The real path of a TLS file setting ("" when unset), checked again inside the import
    directory: a file swapped for a symlink out of it since the save raises Invalid."""
    raw = getattr(s, name) or ""
    return str(files.admin_path(raw, TLS_FILES[name], name)) if raw else ""


# Settings a deployment may fix outside the tab: field -> the app setting that does.
LOCKS = {"c2s_port": "XMPP_C2S_PORT", "s2s_port": "XMPP_S2S_PORT",
         "interfaces": "XMPP_INTERFACE"}


def locked() -> dict[str, dict]:
    """The settings the deployment fixed (APPLIANCE_XMPP_*): field -> its value in use and
    the variable that sets it. The tab shows them read-only; what it saves waits unused."""
    cfg = current_app.config
    return {name: {"value": cfg[key], "by": f"APPLIANCE_{key}"}
            for name, key in LOCKS.items() if cfg.get(key)}


def interfaces(s: XmppSettings, override: str | None = None) -> list[str]:
    """Where the service listens: APPLIANCE_XMPP_INTERFACE when set, else the settings'."""
    raw = override or s.interfaces or "*"
    return [i.strip() for i in raw.split(",") if i.strip()] or ["*"]


def config(s: XmppSettings | None = None) -> XmppConfig:
    """The service's configuration; Invalid when a TLS file is outside the import directory.
    Server-to-server traffic follows the policy a plugin gives (appliance_xmpp_policy):
    none without one."""
    s = s or settings()
    policy = host().plugins.hook.appliance_xmpp_policy() or {}
    domains = db.session.scalars(select(Enterprise.im_domain).where(
        Enterprise.im_domain.is_not(None)).order_by(Enterprise.im_domain)).all()
    app = current_app.config
    return XmppConfig(
        domain=s.domain, c2s_port=app.get("XMPP_C2S_PORT") or s.c2s_port,
        s2s_port=app.get("XMPP_S2S_PORT") or s.s2s_port,
        interfaces=interfaces(s, app.get("XMPP_INTERFACE")),
        **{name: tls_file(s, name) for name in TLS_FILES},
        data_dir=str((Path(current_app.config["DATA_DIR"]) / "xmpp").resolve()),
        federation_enabled=bool(policy.get("enabled")), domains=list(policy.get("domains", [])),
        routes=dict(policy.get("routes", {})),
        hosts=[d for d in domains if d != s.domain.lower()],
        link_url=current_app.config.get("XMPP_LINK_URL") or "",
        link_secret=secret() if current_app.config.get("XMPP_LINK_URL") else "")


def apply(s: XmppSettings | None = None, open_to: tuple[str, ...] = ()) -> str:
    """Render the XMPP service's configuration and reload it; return what happened.
    `open_to`: federated domains (just added) to open our links to at once."""
    s = s or settings()
    service = xmpp()
    try:
        cfg = config(s)
        if not service.installed():
            service.write(cfg)
            msg = ("Saved. The XMPP service (Prosody) is not installed on this appliance; its "
                   f"configuration is kept in {service.config_path}.")
        elif service.apply(cfg) or (open_to and service.running()):
            msg = "Saved and applied to the running XMPP service."
            remotes = [d for d in open_to if d in cfg.domains]
            if remotes and cfg.federation_enabled:
                service.open_s2s([(local, remote) for remote in remotes
                                  for local in (cfg.domain, *cfg.hosts)])
                msg += (f" Opening our links to {', '.join(remotes)} now; a server that "
                        "refused us before may take a few minutes to connect back.")
        else:
            msg = "Saved. The XMPP service is not running; it uses this when it starts."
    except Invalid as exc:
        msg = f"Saved, but the XMPP service configuration was not written: {exc}"
    except (XmppError, OSError) as exc:
        msg = f"Saved, but the XMPP service could not be reloaded: {exc}"
    s.applied_at, s.apply_message = utcnow(), msg
    db.session.commit()
    return msg


def supervise(app, listen: str, port: int) -> str:
    """Run the XMPP service as a child of `appliance serve` (listening on `listen`:`port`)
    unless APPLIANCE_XMPP_SUPERVISE is off or Prosody is not installed; return what
    happened. The service asks this process about sign-ins over loopback."""
    if not app.config["XMPP_SUPERVISE"]:
        return "XMPP service: not supervised here (APPLIANCE_XMPP_SUPERVISE is off)"
    if listen not in ("127.0.0.1", "0.0.0.0", "::", "localhost", ""):
        return (f"XMPP service: not started: the appliance listens on {listen} only, and the "
                "XMPP service asks it about sign-ins on 127.0.0.1 (serve on 127.0.0.1 or "
                "0.0.0.0, behind a proxy)")
    app.config["XMPP_LINK_URL"] = f"http://127.0.0.1:{port}"
    with app.app_context():
        service = xmpp()
        if not service.installed():
            return "XMPP service: Prosody is not installed (apt-get install prosody)"
        if service.running():
            return (f"XMPP service: a Prosody already runs on {service.config_path} "
                    f"(pid {service.pid()}); not starting another")
        try:
            cfg = config()
        except Invalid as exc:  # a TLS file moved out of the import directory since
            return f"XMPP service: not started: its configuration cannot be written: {exc}"
        service.write(cfg)  # as the database says, with the link to this process
        runner = Supervisor(service)
        host().xmpp = runner
        runner.start()
        where = ", ".join(cfg.interfaces)
        return (f"XMPP service: started (clients on {where} port {cfg.c2s_port}, servers on "
                f"port {cfg.s2s_port}; {len(cfg.hosts)} IM domain(s))")


def status(links: bool = True) -> dict:
    """The service panel: installed, running, version, s2s port, the supervisor's state when
    this process runs the service, and (`links`: asked of Prosody's shell, a subprocess)
    the federated connections."""
    s, service = settings(), xmpp()
    runner = host().xmpp
    out = {"installed": service.installed(), "running": False, "version": None,
           "supervised": runner.status.as_dict() if runner is not None else None,
           "s2s_port": current_app.config.get("XMPP_S2S_PORT") or s.s2s_port,
           "c2s_port": current_app.config.get("XMPP_C2S_PORT") or s.c2s_port,
           "locked": locked(), "domain": s.domain, "connections": [],
           "config_path": str(service.config_path),
           "applied_at": s.applied_at.isoformat() + "Z" if s.applied_at else None,
           "apply_message": s.apply_message}
    if out["installed"]:
        out["version"] = service.version()
        out["running"] = service.running()
        if out["running"] and links:
            try:
                out["connections"] = service.s2s_sessions()
            except (XmppError, OSError):
                out["connections"] = []
    return out


def save_settings(data) -> XmppSettings:
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
