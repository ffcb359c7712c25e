"""Peers of an enterprise: the one place that validates, stores, checks and syncs them.

Pages and the JSON API both call these functions, so a rule holds the same everywhere.
"""

import json
import re
from datetime import datetime

from flask import current_app
from sqlalchemy import case, exists, func, select

from appliance import audit, ldapform, vault
from appliance.db import db, utcnow
from appliance.directory import remove_source
from appliance.host import host
from appliance.jobs import SCHEDULE_FIELDS, days_spec
from appliance.listing import Column, Page, paginate
from appliance.models import (
    Account,
    Contact,
    Enterprise,
    TrustedServer,
)
from appliance.peers import STATUSES, PeerClient, PeerError, update_trusted
from appliance.validation import (
    ENTERPRISE_ID_RULES,
    Conflict,
    Field,
    Invalid,
    Schema,
    gather,
    host_or_ip,
    int_range,
    length,
    max_length,
    one_of,
    only,
)
from appliance.version import PEERING_VERSION

from .models import EXTERNAL, MCS, TYPES, Peer

KIND = "peering.sync"
FULL_DAYS = 7  # a full re-sync weekly, unless the admin sets otherwise
STATUS_KIND = "peering.status"

COMMON = Schema(
    "Peer",
    Field("kind", "Peer Type", (one_of(tuple(TYPES)),),
          help="mcs: MiCollab Client Service; external: an external IM server."),
    Field("description", "Description", (
        length(1, 64),
        only("[A-Za-z0-9 -]", "alphanumeric characters, dashes and spaces",
             name="alphanumeric_dashes_spaces"))),
    *SCHEDULE_FIELDS,
)
MCS_FIELDS = Schema(
    "PeerMiCollab",
    Field("hostname", "Hostname", (host_or_ip(),),
          help="The name the peer's web server certificate was made for."),
    Field("port", "HTTPS port", (int_range(1, 65535),), required=False, type="integer",
          help="Empty: 443."),
    Field("peer_eid", "Peer enterprise ID", ENTERPRISE_ID_RULES,
          help="4 to 32 characters: letters, digits and dashes; no spaces, | , ; :"),
    Field("dialing_prefix", "Peer Dialing Prefix", (max_length(20),), required=False,
          help="At most 20 characters, not checked. A leading - means: do not append the "
               "outgoing prefix digit."),
    Field("key", "Peer key", (max_length(128),), required=False, secret=True,
          help="The key the peer issued when it trusted this appliance; never shown again."),
    Field("full_days", "Full re-sync (days)", (int_range(0, 365),), required=False,
          type="integer", help="Every how many days a sync reads all the peer's contacts "
          "again; the syncs between ask only what changed. 0: every sync reads all. "
          f"Empty: {FULL_DAYS}."),
)
#: What the API documents as the body of a peer (every field of either type).
API_SCHEMA = Schema(
    "PeerServer", *COMMON.fields.values(), *MCS_FIELDS.fields.values(),
    *(Field("ldap_port" if f.name == "port" else f.name, f.label, f.rules, required=False,
            type=f.type, secret=f.secret, help=f.help) for f in ldapform.FIELDS))
SCHEDULE_DEFAULT = {"days": 1, "hour": 2, "minute": 0, "ampm": "AM"}
UPN_MIN_VERSION = (9, 4)
KEY_RETYPE = ("Peer key: type it again for this hostname and port; the stored one is only "
              "sent to the peer it was typed for")


# --- reading -------------------------------------------------------------------------------


def dialing(prefix: str) -> dict:
    """The dialing data of a Peer Dialing Prefix: the digits, and whether the outgoing prefix
    digit of the PBX node is appended (not when the prefix starts with '-')."""
    return {"prefix": prefix, "digits": prefix[1:] if prefix.startswith("-") else prefix,
            "append_outgoing_digit": not prefix.startswith("-")}


def _version(v: str) -> tuple[int, ...] | None:
    m = re.match(r"(\d+)\.(\d+)", v or "")
    return (int(m.group(1)), int(m.group(2))) if m else None


def upn_warning(peer: Peer) -> str | None:
    """Seed 001: presence of peered users whose login is a UPN needs 9.4 or later on both
    sides. Say so when UPN logins are involved and either side is older (or unknown)."""
    if peer.kind != MCS:
        return None
    local_upn = db.session.scalar(select(exists().where(
        Account.enterprise_id == peer.enterprise_id, Account.login.contains("@"))))
    if not (local_upn or peer.peer_upn_logins):
        return None
    old = [name for name, v in (("this appliance", PEERING_VERSION),
                                (peer.hostname, peer.version))
           if (_version(v) or (0,)) < UPN_MIN_VERSION]
    if not old:
        return None
    return ("Presence of peered users whose login ID is a UPN is only seen when both peered "
            f"servers are at version 9.4 or later; {' and '.join(old)} "
            f"{'is' if len(old) == 1 else 'are'} older or unknown.")


def as_dict(peer: Peer) -> dict:
    out = {"id": peer.id, "enterprise_id": peer.enterprise_id, "kind": peer.kind,
           "type": peer.type_label, "description": peer.description, "server": peer.server,
           "version": peer.version, "status": peer.status if peer.kind == MCS else "N/A",
           "status_message": peer.status_message,
           "checked_at": _iso(peer.checked_at),
           "schedule": peer.schedule_spec, "source": peer.source,
           "next_sync_at": _iso(next_sync(peer)), "warning": upn_warning(peer)}
    if peer.kind == MCS:
        out.update(hostname=peer.hostname, port=peer.port, peer_eid=peer.peer_eid,
                   dialing_prefix=peer.dialing_prefix, dialing=dialing(peer.dialing_prefix),
                   admin_url=peer.admin_url, key_set=bool(peer.key_sealed),
                   full_days=peer.full_days, full_sync_at=_iso(peer.full_at),
                   changes_offered=bool(peer.feed_cursor))
    else:
        out.update(ldap=peer.ldap_settings, password_set=bool(peer.ldap_password_sealed))
    return out


def next_sync(peer: Peer) -> datetime | None:
    return host().jobs.next_run_at(KIND, peer.source)


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() + "Z" if at else None


def form_values(peer: Peer) -> dict:
    """What the edit form shows (never a secret)."""
    values = {"kind": peer.kind, "description": peer.description, **SCHEDULE_DEFAULT,
              **{k: v for k, v in peer.schedule_spec.items() if k in SCHEDULE_DEFAULT}}
    if peer.kind == MCS:
        values.update(hostname=peer.hostname, port="" if peer.port == 443 else peer.port,
                      peer_eid=peer.peer_eid, dialing_prefix=peer.dialing_prefix,
                      full_days=peer.full_days)
    else:
        ldap = peer.ldap_settings
        values.update(ldap, ldap_port=ldap.get("port") or "")
    return values


# --- changing ------------------------------------------------------------------------------


def _validate(data, peer: Peer | None) -> tuple[dict, dict]:
    """Validate a whole page or API body; return (common, type-specific) values."""
    errors = {}
    common = gather(errors, COMMON.validate, data) or {}
    kind = common.get("kind") or (data.get("kind") if hasattr(data, "get") else None)
    specific = gather(errors, _specific, kind, data, peer, errors) or {}
    if errors:
        raise Invalid(errors)
    return common, specific


def _specific(kind: str | None, data, peer: Peer | None, errors: dict) -> dict:
    """The values of the peer's type: an MCS peer's link, or an external directory."""
    if kind == MCS:
        specific = MCS_FIELDS.validate(data)
        specific["port"] = specific.get("port") or 443
        if specific.get("full_days") is None:
            specific["full_days"] = FULL_DAYS
        specific["key"] = key_for(peer, specific["hostname"], specific["port"],
                                  specific.get("key"))
        if not specific["key"]:
            errors["key"] = ("required", "Peer key is required: the peer's administrator "
                             "gets it when they add this appliance to Trusted Servers")
        return specific
    if kind == EXTERNAL:
        specific = ldapform.SCHEMA.validate(ldap_input(data))
        kept = peer is not None and peer.kind == EXTERNAL
        specific["password"] = ldapform.password_for(
            specific, peer.ldap_settings if kept else None,
            peer.ldap_password_sealed if kept else "")
        return specific
    return {}


def key_for(peer: Peer | None, hostname: str, port: int | None, typed: str | None) -> str:
    """The peer key to send to hostname:port: the one typed, else the stored one of `peer`
    while its hostname and port stay the same (vault.secret_for; Invalid asks for it)."""
    kept = peer is not None and peer.kind == MCS
    return vault.secret_for(typed or "", peer.key_sealed if kept else "",
                            (peer.hostname.lower(), peer.port) if kept else None,
                            (hostname.strip().lower(), port or 443), "key", KEY_RETYPE)


def ldap_input(data) -> dict:
    """Pages and API call the LDAP port ldap_port (port is a MiCollab peer's HTTPS port)."""
    out = {k: data.get(k) for k in ldapform.SCHEMA.fields if k != "port"}
    out["port"] = data.get("ldap_port")
    return out


def save(ent: Enterprise, data, peer: Peer | None = None) -> tuple[Peer, list[str]]:
    """Create or change a peer; return it and notes for the admin (trusted servers moved).

    Nothing is stored when any field is wrong: Invalid lists every broken rule.
    """
    common, specific = _validate(data, peer)
    notes = []
    if common["kind"] == MCS and (peer is None or (peer.hostname, peer.port) != (
            specific["hostname"], specific["port"])):
        notes += _certificate_notes(specific["hostname"], specific["port"])
    creating = peer is None
    before = as_dict(peer) if peer else None
    old_host = peer.hostname if peer and peer.kind == MCS else None
    if creating:
        peer = Peer(enterprise_id=ent.id, kind=common["kind"])
        db.session.add(peer)
    peer.kind, peer.description = common["kind"], common["description"]
    if peer.kind == MCS:
        key = specific.pop("key", "")
        if ((peer.hostname or "").lower(), peer.port, (peer.peer_eid or "").lower()) != (
                specific["hostname"].lower(), specific["port"], specific["peer_eid"].lower()):
            peer.feed_cursor, peer.full_at = "", None  # another peer: its cursor means nothing
        for k, v in specific.items():
            setattr(peer, k, v)
        if key:
            peer.key_sealed = vault.seal(key)
        peer.ldap, peer.ldap_password_sealed = "{}", ""
    else:
        password = specific.pop("password")
        peer.ldap = json.dumps(specific)
        peer.ldap_password_sealed = vault.seal(password) if password else ""
        peer.hostname, peer.port, peer.peer_eid, peer.dialing_prefix = "", 443, "", ""
        peer.key_sealed, peer.status, peer.version = "", "unknown", ""
    db.session.flush()
    tz = current_app.config["TZINFO"]
    spec = days_spec(common, tz, old=peer.schedule_spec)
    peer.schedule = json.dumps(spec)
    jobs = host().jobs
    jobs.schedule(KIND, peer.source, spec)
    if old_host:
        notes += _follow_trust(ent, old_host, peer.hostname)
    audit.record("create" if creating else "update", "peer", peer.id, peer.description,
                 before=before, after=as_dict(peer), commit=False)
    db.session.commit()
    return peer, notes


def _follow_trust(ent: Enterprise, old: str, new: str) -> list[str]:
    """Seed 001: when a peer's address changes, its Trusted Servers entry must follow."""
    if not new or old.lower() == new.lower():
        return []
    t = db.session.scalar(select(TrustedServer).where(
        TrustedServer.enterprise_id == ent.id, func.lower(TrustedServer.address) == old.lower()))
    if t is None:
        return [f"The peer's address changed from {old} to {new}. {ent.eid} has no trusted "
                f"server {old}; if {new} should also read this enterprise's contacts, add it "
                "to Trusted Servers on the Enterprises tab."]
    key = update_trusted(t, {"address": new, "description": t.description})
    note = f"Trusted server {old} of {ent.eid} now reads {new}."
    if key:
        note += (f" {new} needed a new peer key: {key} (shown only now; give it to its "
                 "administrator).")
    return [note]


def delete(peer: Peer) -> dict:
    """Delete a peer with its synchronizer schedule and the contacts it imported.

    Refused (Conflict) while a sync of the peer runs, or the sync would bring them back.
    """
    if host().jobs.active(peer.source):
        raise Conflict.because("busy", f"A sync of {peer.description} is running: delete it "
                               "once the sync ends")
    ent = db.session.get(Enterprise, peer.enterprise_id)
    gone = impact(peer)
    host().jobs.unschedule(KIND, peer.source)
    audit.record("delete", "peer", peer.id, peer.description, before=as_dict(peer) | gone,
                 commit=False)
    source = peer.source
    db.session.delete(peer)
    db.session.flush()
    remove_source(Contact, ent, source)  # commits, and tells other plugins
    return gone


COLUMNS = [
    Column("description", "Description", Peer.description),
    Column("server", "Server", case((Peer.kind == MCS, Peer.hostname), else_="N/A")),
    Column("type", "Peer Type", case((Peer.kind == MCS, TYPES[MCS]), else_=TYPES[EXTERNAL])),
    Column("version", "Peer Server Version", Peer.version),
    # Sorted as shown: by the status's words, N/A for external peers.
    Column("status", "Status", case((Peer.kind != MCS, "N/A"),
                                    *((Peer.status == k, v) for k, v in STATUSES.items()),
                                    else_=Peer.status)),
]


def peers(ent_id: int, args, per_page: int, adjustable: bool = False) -> Page:
    """One page of an enterprise's peer servers, searched and sorted as `args` ask."""
    return paginate(select(Peer).where(Peer.enterprise_id == ent_id), COLUMNS, args,
                    "description", per_page=per_page, tiebreak=Peer.id, adjustable=adjustable)


def impact(peer: Peer) -> dict:
    """What deleting `peer` also deletes, for the confirmation."""
    contacts = db.session.scalar(select(func.count()).select_from(Contact).where(
        Contact.enterprise_id == peer.enterprise_id, Contact.source == peer.source))
    spec = peer.schedule_spec
    return {"contacts": contacts, "schedule": bool(spec.get("days"))}


# --- talking to peers ----------------------------------------------------------------------


def client_for(peer: Peer) -> PeerClient:
    return PeerClient(peer.hostname, peer.port, vault.unseal(peer.key_sealed))


def peer_enterprises(hostname: str, port: int | None, key: str) -> list[dict]:
    """Select Enterprise: the enterprises a MiCollab peer offers this appliance."""
    return PeerClient(hostname, port or 443, key).get("/enterprises")["items"]


def check(peer: Peer) -> None:
    """Poll one MiCollab peer and record its version and status (not committed)."""
    peer.checked_at = utcnow()
    try:
        client = client_for(peer)
        info = client.get("/info")
        peer.version = str(info.get("version", ""))[:64]
        offered = client.get("/enterprises")["items"]
    except (PeerError, ValueError) as exc:
        peer.status = getattr(exc, "kind", "not_trusted")
        peer.status_message = str(exc)
        return
    match = next((e for e in offered if e["eid"].lower() == peer.peer_eid.lower()), None)
    if match is None:
        names = ", ".join(e["eid"] for e in offered) or "none"
        peer.status = "enterprise_not_found"
        peer.status_message = (f"{peer.hostname} offers this appliance the enterprises {names}, "
                               f"not {peer.peer_eid}")
        return
    peer.status, peer.peer_upn_logins = "connected", bool(match.get("upn_logins"))
    peer.status_message = f"Connected; {peer.hostname} is at version {peer.version}"


def _certificate_notes(hostname: str, port: int) -> list[str]:
    """Check the peer's certificate against the typed hostname before saving.

    A certificate that does not fit refuses the save (Invalid on the hostname); a peer that
    cannot be reached right now is saved with a note, as it may only be down for a while.
    """
    try:
        PeerClient(hostname, port, "").check_certificate()
    except PeerError as exc:
        if exc.kind in ("certificate_mismatch", "certificate_invalid"):
            raise Invalid({"hostname": (exc.kind, exc.message)}) from None
        return [f"Saved, but the certificate could not be checked: {exc.message}"]
    return []
