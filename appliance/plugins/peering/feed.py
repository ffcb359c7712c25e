"""A MiCollab peer's contacts, read whole or as what changed since the last sync.

A peer that offers its changes (its first page of contacts carries a `cursor`) is asked
only what changed since the cursor of the last successful sync: the changed and added
contacts, and the keys of removed ones, applied as a delta import with the same safety
rules. The whole set is read again on the first sync, when the admin's full re-sync is due
(`full_days`), when the peer no longer knows the cursor, and always from a peer without the
feed (an older version). The new cursor is stored in the transaction that applies what it
covers, so a failed sync leaves the old one.
"""

import queue
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from datetime import timedelta

from flask import current_app
from sqlalchemy import func, select, update

from appliance.db import db, utcnow
from appliance.directory import ImportResult, SourceImport
from appliance.jobs import JobContext
from appliance.models import Contact, Enterprise
from appliance.peers import PeerClient, PeerError

from .models import Peer

PAGE = 1000  # changes per request


def rows(peer: Peer, items) -> list[dict]:
    """The contacts of a page as import rows (PeerError when the page is not understood)."""
    try:
        return [{"external_id": c["key"], "first_name": c["first_name"],
                 "last_name": c["last_name"], "email": c["email"], "phone": c["phone"],
                 "im_address": c["im_address"]} for c in items]
    except (KeyError, TypeError) as exc:
        raise PeerError("bad_response", f"{peer.hostname} sent a contact page this "
                                        f"appliance does not understand ({exc!r})") from None


def ahead(batches: Iterator[list[dict]], depth: int = 3) -> Iterator[list[dict]]:
    """`batches`, read by a thread of their own up to `depth` ahead: the peer prepares and
    sends the next pages while this thread stores one. Its errors are raised here."""
    app = current_app._get_current_object()
    pending: queue.Queue = queue.Queue(depth)
    stop = threading.Event()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                pending.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def read() -> None:
        with app.app_context():
            try:
                for batch in batches:
                    if not put((batch, None)):
                        return
                put((None, None))
            except Exception as exc:  # raised in the reading thread
                put((None, exc))

    reader = threading.Thread(target=read, name="peer-pages", daemon=True)
    reader.start()
    try:
        while True:
            batch, exc = pending.get()
            if exc is not None:
                raise exc
            if batch is None:
                return
            yield batch
    finally:
        stop.set()
        reader.join()


def full(ctx: JobContext, peer: Peer, ent: Enterprise, batches: Iterator[list[dict]],
         allow_drop: bool, then: Callable | None = None) -> ImportResult:
    """Replace the peer's contacts with every batch it sends, or change nothing."""
    with SourceImport(ent, peer.source, peer.description, (Contact,)) as imp:
        for batch in ahead(batches):
            imp.add(batch)
        n = imp.count()
        ctx.progress(90, f"Storing {n:,} contacts")
        return imp.commit(allow_drop=allow_drop, then=then)[Contact]


def _remember(peer_id: int, cursor: Callable[[], str], whole: bool) -> Callable:
    """A commit's `then`: store the cursor with the contacts it covers."""
    def then(conn, _results) -> None:
        values = {"feed_cursor": cursor()} | ({"full_at": utcnow()} if whole else {})
        conn.execute(update(Peer).where(Peer.id == peer_id).values(values))
    return then


def why_full(ctx: JobContext, peer: Peer) -> str | None:
    """Why this sync reads every contact (None: only what changed)."""
    if ctx.params.get("full"):
        return "asked for"
    if not peer.feed_cursor:
        return ("first sync" if peer.full_at is None else
                f"{peer.hostname} offers no change feed (an older version)")
    if peer.full_days == 0:
        return "set to read everything at every sync"
    if peer.full_at is None or utcnow() - peer.full_at >= timedelta(days=peer.full_days):
        return f"the full re-sync every {peer.full_days} day(s) is due"
    return None


def sync(ctx: JobContext, peer: Peer, ent: Enterprise, client: PeerClient,
         pages: Callable[..., Iterator[list[dict]]], allow_drop: bool
         ) -> tuple[ImportResult, str]:
    """Sync a MiCollab peer; return the result and a note for the run's message."""
    on = bool(current_app.config.get("PEERING_CHANGE_FEED", True))
    why = why_full(ctx, peer) if on else "the change feed is off here: PEERING_CHANGE_FEED"
    if why is None:
        try:
            return changes(ctx, peer, ent, client, allow_drop), "Changes since the last sync from "
        except PeerError as exc:
            if exc.kind == "cursor_unknown":
                why = (f"{peer.hostname} no longer knows the changes since the last sync: "
                       f"{exc.message}")
            elif exc.status == 404 and exc.kind == "bad_response":
                why = f"{peer.hostname} no longer offers its changes (an older version?)"
            else:
                raise
    seen: dict = {}
    result = full(ctx, peer, ent, pages(ctx, peer, client, seen), allow_drop,
                  _remember(peer.id, lambda: seen.get("cursor", "") if on else "", whole=True))
    return result, f"Full fetch ({why}) from "


def changes(ctx: JobContext, peer: Peer, ent: Enterprise, client: PeerClient,
            allow_drop: bool) -> ImportResult:
    """Apply what changed on the peer since peer.feed_cursor (PeerError cursor_unknown when
    the peer no longer knows it). Changed contacts are staged page by page (memory holds
    only their keys); nothing is staged, nor a table made, when nothing changed."""
    keys: set[str] = set()
    removed: set[str] = set()
    args: dict = {"since": peer.feed_cursor, "limit": PAGE}
    with ExitStack() as stack:
        imp = None
        while True:
            page = client.get(f"/enterprises/{peer.peer_eid}/changes", **args)
            if not isinstance(page, dict) or not page.get("cursor"):
                raise PeerError("bad_response", f"{peer.hostname} sent a change page this "
                                                "appliance does not understand")
            batch = [r for r in rows(peer, page.get("items")) if r["external_id"] not in keys]
            keys.update(r["external_id"] for r in batch)
            if batch:
                imp = imp or stack.enter_context(SourceImport(
                    ent, peer.source, peer.description, (Contact,), delta=True))
                imp.add(batch)
            removed.update(str(k) for k in page.get("removed") or ())
            ctx.progress(50, f"Read {len(keys):,} changed and {len(removed):,} removed "
                             "contacts")
            if not page.get("next"):
                break
            args.update(until=page["cursor"], after=page["next"])
        remember = _remember(peer.id, lambda: str(page["cursor"])[:32], whole=False)
        have = db.session.scalar(select(func.count()).select_from(Contact).where(
            Contact.enterprise_id == ent.id, Contact.source == peer.source))
        gone = removed - keys  # removed, then added again: it stays
        if imp is None and not gone:
            remember(db.session, None)
            db.session.commit()
            return ImportResult(unchanged=have)
        imp = imp or stack.enter_context(SourceImport(
            ent, peer.source, peer.description, (Contact,), delta=True))
        imp.remove(gone)
        ctx.progress(90, f"Storing {len(keys):,} changed and {len(gone):,} removed contacts")
        result = imp.commit(allow_drop=allow_drop, then=remember)[Contact]
    result.unchanged = have - result.updated - result.removed
    return result
