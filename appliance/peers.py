"""The peer link between appliances: keys, the guard of the /peer/ routes, and the client.

Trust has two parts. *Authorization* is the enterprise's Trusted Servers list: an enterprise
is offered to a peer only when the peer's address is in that list. *Authentication* is a
key per trusted address, issued here and shown once: the peer sends it with every request
(`Authorization: Peer <key>`), and the request must also come from that address. The
client always verifies the peer's certificate against the hostname the admin typed.
"""

import hashlib
import http.client
import ipaddress
import json
import os
import secrets
import socket
import ssl
from dataclasses import dataclass
from urllib.parse import urlencode

from flask import current_app, g, jsonify, request
from sqlalchemy import func, select

from appliance import audit
from appliance.db import db, utcnow
from appliance.models import Enterprise, PeerKey, TrustedServer
from appliance.validation import Field, Invalid, Schema, host_or_ip, max_length

PREFIX = "/peer/v1"

# --- keys ----------------------------------------------------------------------------------


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def issue_key(address: str) -> str:
    """Create (or replace) the key of `address`; return it: it is shown once, never stored."""
    key = "apk_" + secrets.token_urlsafe(32)
    row = db.session.scalar(select(PeerKey).where(PeerKey.address == address.lower()))
    if row is None:
        row = PeerKey(address=address.lower(), digest=_digest(key))
        db.session.add(row)
    else:
        row.digest, row.created_at = _digest(key), utcnow()
    db.session.flush()
    return key


def key_info(address: str) -> PeerKey | None:
    return db.session.scalar(select(PeerKey).where(PeerKey.address == address.lower()))


def move_key(old: str, new: str) -> bool:
    """Let the key of `old` follow its address to `new`; False when there is none to move."""
    row = key_info(old)
    if row is None or key_info(new) is not None or _still_trusted(old):
        return False
    row.address = new.lower()
    return True


def forget_key(address: str) -> None:
    """Drop the key of an address no enterprise trusts any more."""
    row = key_info(address)
    if row is not None and not _still_trusted(address):
        db.session.delete(row)


def _still_trusted(address: str) -> bool:
    return db.session.scalar(select(func.count()).select_from(TrustedServer).where(
        func.lower(TrustedServer.address) == address.lower())) > 0


# --- trusted servers: an enterprise's list of peers allowed in ---------------------------

TRUSTED = Schema(
    "TrustedServer",
    Field("address", "IP address/hostname", (host_or_ip(),)),
    Field("description", "Description", (max_length(64),), required=False),
)
#: A PUT's body: the fields given are changed, the others kept.
TRUSTED_UPDATE = TRUSTED.optional()


def trusted_dict(t: TrustedServer) -> dict:
    key = key_info(t.address)
    return {"id": t.id, "address": t.address, "description": t.description,
            "peer_key_issued_at": key.created_at.isoformat() + "Z" if key else None}

def _unique_address(ent: Enterprise, address: str, own_id: int | None = None) -> None:
    if any(t.address.lower() == address.lower() and t.id != own_id
           for t in ent.trusted_servers):
        raise Invalid({"address": ("unique", "This server is already trusted")})


def add_trusted(ent: Enterprise, data: dict) -> tuple[TrustedServer, str | None]:
    """Trust a server; return it and its new peer key when the address had none yet."""
    data = TRUSTED.validate(data)
    _unique_address(ent, data["address"])
    t = TrustedServer(enterprise=ent, **data)
    db.session.add(t)
    db.session.flush()
    key = None if key_info(t.address) else issue_key(t.address)
    audit.record("create", "trusted server", t.id, f"{ent.eid}: {t.address}", after=data,
                 commit=False)
    db.session.commit()
    return t, key


def update_trusted(t: TrustedServer, data: dict, partial: bool = False) -> str | None:
    """Change a trusted server (its address changed, say); its peer key follows the address.

    Return a new key when the new address needs one (the old key stays with the old
    address while another enterprise still trusts it).
    """
    data = (TRUSTED_UPDATE if partial else TRUSTED).validate(data)
    if "address" in data:
        _unique_address(t.enterprise, data["address"], t.id)
    before, old = trusted_dict(t), t.address
    for k, v in data.items():
        setattr(t, k, v)
    db.session.flush()
    key = None
    if t.address.lower() != old.lower() and not move_key(old, t.address):
        if key_info(t.address) is None:
            key = issue_key(t.address)
        forget_key(old)
    audit.record("update", "trusted server", t.id, f"{t.enterprise.eid}: {t.address}",
                 before=before, after=data, commit=False)
    db.session.commit()
    return key


def new_peer_key(t: TrustedServer) -> str:
    """Replace the peer key of a trusted address (for every enterprise trusting it)."""
    key = issue_key(t.address)
    audit.record("update", "peer key", t.id, t.address, after={"key": "replaced"}, commit=False)
    db.session.commit()
    return key


def remove_trusted(t: TrustedServer) -> None:
    audit.record("delete", "trusted server", t.id, f"{t.enterprise.eid}: {t.address}",
                 before=trusted_dict(t), commit=False)
    db.session.delete(t)
    db.session.flush()
    forget_key(t.address)
    db.session.commit()


# --- addresses -----------------------------------------------------------------------------


def static_hosts() -> dict[str, str]:
    """PEER_HOSTS ("name=address,...") as a dict, for peers that are not in DNS."""
    out = {}
    for item in (current_app.config.get("PEER_HOSTS") or "").split(","):
        name, _, addr = item.strip().partition("=")
        if name and addr:
            out[name.strip().lower()] = addr.strip()
    return out


_contexts: dict[tuple, ssl.SSLContext] = {}


def _tls_context(ca_file: str | None) -> ssl.SSLContext:
    """A client context trusting `ca_file` (else the system's CAs), made once per file
    version: loading the system's CAs costs tens of milliseconds a request."""
    key = (ca_file, os.stat(ca_file).st_mtime_ns if ca_file else None)
    ctx = _contexts.get(key)
    if ctx is None:
        if len(_contexts) > 32:
            _contexts.clear()
        ctx = _contexts[key] = ssl.create_default_context(cafile=ca_file)
    return ctx


def resolve(host: str) -> list[str]:
    """The IP addresses of `host` (static hosts first, then DNS); [] when it has none."""
    host = host.strip().lower()
    if fixed := static_hosts().get(host):
        return [fixed]
    try:
        return [str(ipaddress.ip_address(host))]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except OSError:
        return []
    return sorted({i[4][0] for i in infos})


# --- the guard of /peer/ routes (serving side) --------------------------------------------


@dataclass
class Caller:
    """A peer that proved itself: its trusted address and the enterprises trusting it."""

    address: str
    enterprises: list[Enterprise]

    def enterprise(self, eid: str) -> Enterprise | None:
        return next((e for e in self.enterprises if e.eid.lower() == eid.lower()), None)


def _deny(status: int, message: str):
    return jsonify(error="not_trusted", message=message), status


def guard():
    """Authenticate a request to /peer/: a known key, sent from the address it was issued to."""
    header = request.headers.get("Authorization", "")
    if not header.startswith("Peer "):
        return _deny(401, "Send 'Authorization: Peer <key>' with the key this appliance "
                          "issued for your address")
    row = db.session.scalar(select(PeerKey).where(PeerKey.digest == _digest(header[5:].strip())))
    if row is None:
        return _deny(403, "This appliance did not issue that peer key (or it was replaced)")
    seen = request.remote_addr or ""
    if seen not in resolve(row.address):
        return _deny(403, f"The key was issued to {row.address}, but this request comes from "
                          f"{seen}: update the trusted server's address")
    ents = db.session.scalars(select(Enterprise).join(TrustedServer).where(
        func.lower(TrustedServer.address) == row.address).order_by(Enterprise.name)).all()
    if not ents:
        return _deny(403, f"No enterprise trusts {row.address} any more")
    g.peer = Caller(row.address, list(ents))
    return None


def caller() -> Caller:
    """The authenticated peer of the current /peer/ request."""
    return g.peer


# --- the client (calling side) -------------------------------------------------------------


class PeerError(Exception):
    """A peer request failed; `kind` is a status the admin can act on."""

    def __init__(self, kind: str, message: str, status: int | None = None):
        super().__init__(message)
        self.kind, self.message, self.status = kind, message, status


#: The statuses a peer can be in, worded for the Peering table.
STATUSES = {
    "connected": "Connected",
    "unreachable": "Unreachable",
    "certificate_mismatch": "Certificate hostname mismatch",
    "certificate_invalid": "Certificate not trusted",
    "not_trusted": "Not trusted by the peer",
    "enterprise_not_found": "Peer enterprise not found",
    "bad_response": "Unexpected answer",
    "unknown": "Not checked yet",
}


class _Connection(http.client.HTTPSConnection):
    """HTTPS to a resolved address, verifying the certificate against the typed hostname."""

    def __init__(self, hostname: str, port: int, address: str, context, timeout: float):
        super().__init__(hostname, port, context=context, timeout=timeout)
        self._address = address

    def connect(self):
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


class PeerClient:
    def __init__(self, hostname: str, port: int = 443, key: str = "",
                 ca_file: str | None = None, timeout: float | None = None):
        self.hostname, self.port, self.key = hostname.strip().lower(), port, key
        cfg = current_app.config
        self.ca_file = ca_file if ca_file is not None else cfg.get("PEER_CA_FILE") or None
        self.timeout = timeout or cfg.get("PEER_TIMEOUT") or 10
        addresses = resolve(self.hostname)
        if not addresses:
            raise PeerError("unreachable", f"{self.hostname} has no address (DNS lookup "
                                           "failed); check the hostname")
        self.address = addresses[0]

    @property
    def where(self) -> str:
        return self.hostname if self.port == 443 else f"{self.hostname}:{self.port}"

    def _open(self) -> _Connection:
        ctx = _tls_context(self.ca_file)  # verifies chain and hostname
        conn = _Connection(self.hostname, self.port, self.address, ctx, self.timeout)
        try:
            conn.connect()
        except ssl.SSLCertVerificationError as exc:
            conn.close()
            if exc.verify_code in (62, 64):  # X509_V_ERR_HOSTNAME_MISMATCH / IP_ADDRESS_MISMATCH
                raise PeerError("certificate_mismatch",
                                f"The certificate of {self.where} is not valid for the hostname "
                                f"{self.hostname}: type the name the peer's web server "
                                "certificate was made for") from None
            raise PeerError("certificate_invalid", f"The certificate of {self.where} is not "
                            f"trusted: {exc.verify_message}") from None
        except ssl.SSLError as exc:
            conn.close()
            raise PeerError("unreachable", f"TLS with {self.where} failed: {exc.reason or exc}") \
                from None
        except TimeoutError:
            conn.close()
            raise PeerError("unreachable", f"{self.where} did not answer within "
                                           f"{self.timeout:g} s") from None
        except OSError as exc:
            conn.close()
            raise PeerError("unreachable", f"Cannot connect to {self.where} "
                                           f"({self.address}): {exc.strerror or exc}") from None
        return conn

    def check_certificate(self) -> None:
        """Open a TLS connection only: raise PeerError when the certificate does not fit."""
        self._open().close()

    def get(self, path: str, **params) -> dict:
        """GET a peer API path (below /peer/v1) and return its JSON; raise PeerError."""
        conn = self._open()
        url = PREFIX + path + (f"?{urlencode(params)}" if params else "")
        try:
            conn.request("GET", url, headers={"Authorization": f"Peer {self.key}",
                                              "Accept": "application/json"})
            resp = conn.getresponse()
            raw = resp.read()
        except TimeoutError:
            raise PeerError("unreachable", f"{self.where} stopped answering (timeout after "
                                           f"{self.timeout:g} s)") from None
        except (OSError, http.client.HTTPException) as exc:
            raise PeerError("unreachable", f"The connection to {self.where} broke: {exc}") \
                from None
        finally:
            conn.close()
        try:
            data = json.loads(raw)
        except ValueError:
            data = None
        if resp.status == 200 and isinstance(data, dict):
            return data
        message = data.get("message") if isinstance(data, dict) else None
        code = data.get("error") if isinstance(data, dict) else None
        if resp.status in (401, 403) and code == "not_trusted":
            raise PeerError("not_trusted", f"{self.where} does not trust this appliance: "
                                           f"{message}")
        if resp.status == 404 and code == "enterprise_not_found":
            raise PeerError("enterprise_not_found", message or "Peer enterprise not found")
        if resp.status == 410 and code == "cursor_unknown":
            raise PeerError("cursor_unknown", message or "The peer no longer knows that cursor",
                            410)
        if resp.status == 404:
            raise PeerError("bad_response", f"{self.where} has no peer link at {PREFIX} "
                                            "(is it an appliance with peering enabled?)", 404)
        raise PeerError("bad_response", f"{self.where} answered HTTP {resp.status}"
                                        + (f": {message}" if message else ""))
