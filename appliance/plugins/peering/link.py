"""The peer link this appliance serves to trusted peers, under /peer/v1 (read only).

The host's peers.guard() has already checked the caller's key and address before any of
these views runs; each view only offers enterprises that trust the caller.
"""

import socket

from flask import Blueprint, abort, current_app, jsonify, request
from sqlalchemy import and_, exists, func, select, tuple_

from appliance import peer_feed
from appliance.db import db
from appliance.listing import number
from appliance.models import Account, Contact, ContactTombstone
from appliance.peers import PREFIX, caller
from appliance.validation import MAX_ID, MAX_INT, Invalid
from appliance.version import PEER_LINK_FEATURES, PEERING_VERSION, __version__
from appliance.xmpp.address import address

link = Blueprint("peering_link", __name__, url_prefix=PREFIX)
MAX_PAGE = 1000
MAX_CURSOR = 2**63 - 1


@link.errorhandler(Invalid)
def invalid(exc: Invalid):
    """The peer link's own error shape: a query argument out of range is a 400."""
    return jsonify(error="invalid", message=str(exc)), 400


def hostname() -> str:
    return current_app.config.get("HOSTNAME") or socket.getfqdn()


@link.get("/info")
def info():
    extra = {"features": list(PEER_LINK_FEATURES)} if feed_on() else {}
    return jsonify(product="appliance", version=PEERING_VERSION, appliance_version=__version__,
                   hostname=hostname(), peer=caller().address, **extra)


@link.get("/enterprises")
def enterprises():
    items = []
    for ent in caller().enterprises:
        upn = db.session.scalar(select(exists().where(
            Account.enterprise_id == ent.id, Account.login.contains("@"))))
        items.append({"eid": ent.eid, "name": ent.name, "upn_logins": bool(upn)})
    return jsonify(items=items)


def _offered(eid):
    """The enterprise `eid` if it trusts the caller; else (None, the 404 answer)."""
    ent = caller().enterprise(eid)
    if ent is None:
        return None, (jsonify(error="enterprise_not_found",
                              message=f"Enterprise {eid} is not offered to {caller().address}: "
                                      "it does not exist here, or does not trust that "
                                      "address"), 404)
    return ent, None


def _served(ent, where, order, limit: int) -> tuple[list, list[dict]]:
    """The enterprise's own contacts (not those it imported from its peers) matching
    `where`, as peers see them: (the rows, their items)."""
    own = (Contact.enterprise_id == ent.id) & ~Contact.source.startswith("peering:")
    # A contact that is one of the enterprise's accounts is reached at its XMPP address
    # (when the enterprise has an IM domain and the account may sign in).
    account = and_(Account.enterprise_id == Contact.enterprise_id,
                   Account.source == Contact.source, Account.external_id == Contact.external_id,
                   Account.enabled)
    rows = db.session.execute(
        select(Contact.id, Contact.rev, Contact.source, Contact.external_id, Contact.first_name,
               Contact.last_name, Contact.email, Contact.phone, Contact.im_address,
               Account.login).outerjoin(Account, account)
        .where(own, where).order_by(*order).limit(limit)).all()
    return rows, [{"key": f"{r.source}/{r.external_id}", "first_name": r.first_name,
                   "last_name": r.last_name, "email": r.email, "phone": r.phone,
                   "im_address": (address(r.login, ent.im_domain) if r.login else None)
                   or r.im_address} for r in rows]


@link.get("/enterprises/<eid>/contacts")
def contacts(eid):
    """One page of the enterprise's own contacts in id order: `after` is the cursor the
    previous page returned as `next`. The first page also gives the change feed's `cursor`
    from which /changes tells what changed since this read (where the feed is on)."""
    ent, missing = _offered(eid)
    if missing:
        return missing
    after = number(request.args, "after", 0, 0, MAX_ID)
    limit = min(number(request.args, "limit", 500, 1, MAX_INT), MAX_PAGE)
    extra = {"cursor": str(peer_feed.cursor()[0])} if not after and feed_on() else {}
    rows, items = _served(ent, Contact.id > after, (Contact.id,), limit)
    total = db.session.scalar(select(func.count()).select_from(Contact).where(
        Contact.enterprise_id == ent.id, ~Contact.source.startswith("peering:")))
    return jsonify(items=items, next=str(rows[-1].id) if len(rows) == limit else None,
                   total=total, **extra)


def feed_on() -> bool:
    """PEERING_CHANGE_FEED: off, the link answers as before the feed (pages only)."""
    return bool(current_app.config.get("PEERING_CHANGE_FEED", True))


def _position(raw: str | None) -> tuple[str, int, int]:
    """A feed page's `after`: ("c" contacts or "t" tombstones, revision, id)."""
    try:
        part, rev, ident = (raw or "c.0.0").split(".")
        if part in ("c", "t"):
            return part, int(rev), int(ident)
    except ValueError:
        pass
    raise Invalid({"after": ("format", "after must be the `next` of the previous page")})


@link.get("/enterprises/<eid>/changes")
def changes(eid):
    """What changed in the enterprise's served contacts since `since` (a cursor from a
    first page or a previous feed): changed or added contacts as `items`, the keys of
    removed ones as `removed`, paged with `until` and `after` from the first answer; 410
    cursor_unknown when the changes since then are no longer known (fetch all pages)."""
    if not feed_on():
        abort(404)
    ent, missing = _offered(eid)
    if missing:
        return missing
    since = number(request.args, "since", 0, 0, MAX_CURSOR)
    until = number(request.args, "until", 0, 0, MAX_CURSOR)
    if until:  # a later page of the same answer
        why = peer_feed.check(since, until)
    else:
        until, why = peer_feed.cursor(since)
    if why:
        return jsonify(error="cursor_unknown", message=f"Cursor {since}: {why}"), 410
    part, rev, ident = _position(request.args.get("after"))
    limit = min(number(request.args, "limit", 1000, 1, MAX_INT), MAX_PAGE)
    rows, items = [], []
    if part == "c":
        rows, items = _served(ent, and_(
            Contact.rev >= since, Contact.rev < until,
            tuple_(Contact.rev, Contact.id) > tuple_(rev, ident)),
            (Contact.rev, Contact.id), limit)
        if len(rows) == limit:
            return jsonify(items=items, removed=[], cursor=str(until),
                           next=f"c.{rows[-1].rev}.{rows[-1].id}")
        rev = ident = 0
    t = ContactTombstone
    gone = db.session.execute(
        select(t.id, t.rev, t.key).where(
            t.enterprise_id == ent.id, t.rev >= since, t.rev < until,
            tuple_(t.rev, t.id) > tuple_(rev, ident))
        .order_by(t.rev, t.id).limit(limit - len(rows))).all()
    more = len(rows) + len(gone) == limit and gone
    return jsonify(items=items, removed=[g.key for g in gone], cursor=str(until),
                   next=f"t.{gone[-1].rev}.{gone[-1].id}" if more else None)
