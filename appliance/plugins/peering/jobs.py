"""Background work: importing a peer's contacts, and polling MiCollab peers' status."""

from collections.abc import Iterator
from datetime import datetime, timedelta

from sqlalchemy import select

from appliance import ldapdir, ldapform, vault
from appliance.db import db
from appliance.directory import SuspiciousImport
from appliance.jobs import JobContext, JobFailed, JobKind, every_n_days
from appliance.models import Enterprise
from appliance.peers import PeerError

from . import feed, service
from .models import MCS, Peer

PAGE = 500  # contacts per peer request


def _peer(ctx: JobContext) -> Peer:
    peer = db.session.get(Peer, int(ctx.target.split(":", 1)[1]))
    if peer is None:
        raise JobFailed("This peer was deleted")
    return peer


def sync(ctx: JobContext) -> None:
    """Bring the peer's contacts into the Corporate Directory, or change nothing.

    A MiCollab peer that offers its changes is asked only what changed since the last sync
    (feed.py), with a full read when one is due; otherwise every contact is read: pages are
    staged as they arrive (memory stays flat) and merged in one transaction only once the
    peer has sent them all.
    """
    peer = _peer(ctx)
    ent = db.session.get(Enterprise, peer.enterprise_id)
    ctx.progress(1, f"Reading contacts from {peer.server if peer.kind == MCS else 'LDAP'}")
    allow = bool(ctx.params.get("allow_drop"))
    try:
        if peer.kind != MCS:
            result = feed.full(ctx, peer, ent, _from_ldap(ctx, peer), allow)
            note = ""
        else:
            result, note = feed.sync(ctx, peer, ent, _client(peer), _from_micollab, allow)
    except SuspiciousImport as exc:
        raise JobFailed(f"{exc}. If the peer really lost those contacts, use "
                        "'Sync anyway' on the peer's page.") from None
    except PeerError as exc:
        if exc.kind in ("unreachable", "not_trusted", "certificate_mismatch",
                        "certificate_invalid", "enterprise_not_found"):
            _record_status(peer.id, exc.kind, exc.message)
        raise JobFailed(f"{exc.message}. Nothing was changed in the Corporate Directory.") \
            from None
    except ldapdir.LdapError as exc:
        raise JobFailed(f"{exc.message.rstrip('.')}. Nothing was changed in the Corporate "
                        "Directory.") from None
    ctx.count(**result.as_dict(), failed=ctx.counts.get("failed", 0))
    ctx.progress(100, f"{note}{peer.description}: {result.added} added, "
                      f"{result.updated} updated, {result.removed} removed, "
                      f"{result.unchanged:,} unchanged")


def _client(peer: Peer):
    try:
        return service.client_for(peer)
    except ValueError as exc:  # the stored key cannot be read any more
        raise JobFailed(str(exc)) from None


def _from_micollab(ctx: JobContext, peer: Peer, client, seen: dict) -> Iterator[list[dict]]:
    """Every contact of the peer enterprise, a page at a time (PeerError on any failure);
    the first page's change feed cursor goes in seen["cursor"] (none from an older peer)."""
    after, n = "", 0
    while True:
        page = client.get(f"/enterprises/{peer.peer_eid}/contacts", after=after, limit=PAGE)
        if not after:
            seen["cursor"] = str(page.get("cursor") or "")[:32]
        batch = feed.rows(peer, page["items"] if isinstance(page, dict) else None)
        yield batch
        n += len(batch)
        total = max(int(page.get("total") or 0), 1)
        ctx.progress(1 + 88 * min(n, total) / total, f"Read {n:,} of {total:,} contacts")
        after = page.get("next")
        if not after:
            return


def _record_status(peer_id: int, status: str, message: str) -> None:
    """Remember what the failed sync learnt about the peer (its own small transaction)."""
    db.session.rollback()
    peer = db.session.get(Peer, peer_id)
    peer.status, peer.status_message = status, message
    db.session.commit()


def _from_ldap(ctx: JobContext, peer: Peer) -> Iterator[list[dict]]:
    """The external IM server's directory, read through the host's LDAP reader."""
    values = peer.ldap_settings
    try:
        settings = ldapform.settings(values, vault.unseal(peer.ldap_password_sealed))
    except ValueError as exc:
        raise JobFailed(str(exc)) from None
    mapping = ldapdir.MAPPING_PRESETS[values["preset"]]
    seen, batch, failed = set(), [], 0
    for entry in ldapdir.entries(settings, sorted(set(mapping.values()))):
        m = ldapdir.map_entry(entry, mapping)
        key = m.get("external_id") or m["dn"]
        if key in seen:  # an identifier attribute that is not unique: keep the first
            failed += 1
            continue
        seen.add(key)
        batch.append({"external_id": key, "first_name": m.get("first_name", ""),
                      "last_name": m.get("last_name", ""), "email": m.get("email", ""),
                      "phone": m.get("phone", ""),
                      "im_address": m.get("email") or m.get("login", "")})
        if len(batch) == 1000:
            yield batch
            batch = []
            ctx.progress(min(85, 1 + len(seen) / 1000), f"Read {len(seen):,} entries")
    yield batch
    ctx.count(failed=failed)


def status(ctx: JobContext) -> None:
    """Poll every MiCollab peer (of one enterprise when the target says so)."""
    stmt = select(Peer).where(Peer.kind == MCS).order_by(Peer.id)
    if ctx.target.startswith("peering-status:"):
        stmt = stmt.where(Peer.enterprise_id == int(ctx.target.split(":", 1)[1]))
    peers = db.session.scalars(stmt).all()
    connected = 0
    for i, peer in enumerate(peers, 1):
        ctx.progress(100 * (i - 1) / max(len(peers), 1), f"Checking {peer.hostname}")
        service.check(peer)
        db.session.commit()
        connected += peer.status == "connected"
    ctx.count(peers=len(peers), connected=connected)
    ctx.progress(100, f"{connected} of {len(peers)} peer(s) connected")


def every(spec: dict, now: datetime) -> datetime:
    return now + timedelta(minutes=int(spec.get("minutes", 5)))


SYNC = JobKind(service.KIND, "Peer contact sync", sync, next_run=every_n_days)
STATUS = JobKind(service.STATUS_KIND, "Peer status check", status, next_run=every,
                 default_spec={"minutes": 5})
