"""The peer link this appliance serves to trusted peers, under /peer/v1 (read only).

The host's peers.guard() has already checked the caller's key and address before any of
these views runs; each view only offers enterprises that trust the caller.
"""

import socket

from flask import Blueprint, current_app, jsonify, request
from sqlalchemy import and_, exists, func, select

from appliance.db import db
from appliance.listing import number
from appliance.models import Account, Contact
from appliance.peers import PREFIX, caller
from appliance.validation import MAX_ID, MAX_INT, Invalid
from appliance.version import PEERING_VERSION, __version__
from appliance.xmpp.address import address

link = Blueprint("peering_link", __name__, url_prefix=PREFIX)
MAX_PAGE = 1000


@link.errorhandler(Invalid)
def invalid(exc: Invalid):
    """The peer link's own error shape: a query argument out of range is a 400."""
    return jsonify(error="invalid", message=str(exc)), 400


def hostname() -> str:
    return current_app.config.get("HOSTNAME") or socket.getfqdn()


@link.get("/info")
def info():
    return jsonify(product="appliance", version=PEERING_VERSION, appliance_version=__version__,
                   hostname=hostname(),
                   peer=caller().address)


@link.get("/enterprises")
def enterprises():
    items = []
    for ent in caller().enterprises:
        upn = db.session.scalar(select(exists().where(
            Account.enterprise_id == ent.id, Account.login.contains("@"))))
        items.append({"eid": ent.eid, "name": ent.name, "upn_logins": bool(upn)})
    return jsonify(items=items)


@link.get("/enterprises/<eid>/contacts")
def contacts(eid):
    """One page of the enterprise's own contacts (not those it imported from its peers),
    in id order: `after` is the cursor the previous page returned as `next`."""
    ent = caller().enterprise(eid)
    if ent is None:
        return jsonify(error="enterprise_not_found",
                       message=f"Enterprise {eid} is not offered to {caller().address}: it does "
                               "not exist here, or does not trust that address"), 404
    after = number(request.args, "after", 0, 0, MAX_ID)
    limit = min(number(request.args, "limit", 500, 1, MAX_INT), MAX_PAGE)
    own = (Contact.enterprise_id == ent.id) & ~Contact.source.startswith("peering:")
    # A contact that is one of the enterprise's accounts is reached at its XMPP address
    # (when the enterprise has an IM domain and the account may sign in).
    account = and_(Account.enterprise_id == Contact.enterprise_id,
                   Account.source == Contact.source, Account.external_id == Contact.external_id,
                   Account.enabled)
    rows = db.session.execute(
        select(Contact.id, Contact.source, Contact.external_id, Contact.first_name,
               Contact.last_name, Contact.email, Contact.phone, Contact.im_address,
               Account.login).outerjoin(Account, account)
        .where(own, Contact.id > after).order_by(Contact.id).limit(limit)).all()
    total = db.session.scalar(select(func.count()).select_from(Contact).where(own))
    return jsonify(
        items=[{"key": f"{r.source}/{r.external_id}", "first_name": r.first_name,
                "last_name": r.last_name, "email": r.email, "phone": r.phone,
                "im_address": (address(r.login, ent.im_domain) if r.login else None)
                or r.im_address} for r in rows],
        next=str(rows[-1].id) if len(rows) == limit else None, total=total)
