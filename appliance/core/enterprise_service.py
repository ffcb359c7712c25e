"""Enterprises: the one place each change is made (pages and API use it), and the
blueprints their pages and API share."""

from flask import Blueprint
from sqlalchemy import func, select

from appliance import audit
from appliance.api import ApiBlueprint
from appliance.db import db, found
from appliance.host import host
from appliance.listing import Column, Page, paginate
from appliance.models import Account, Contact, Enterprise
from appliance.peers import trusted_dict
from appliance.validation import (
    ENTERPRISE_ID_RULES,
    Conflict,
    Field,
    Invalid,
    Schema,
    dns_name,
    length,
)
from appliance.xmpp import service as xmpp

from .client import service as client

ENTERPRISE = Schema(
    "Enterprise",
    Field("name", "Name", (length(1, 128),)),
    Field("eid", "Enterprise ID", ENTERPRISE_ID_RULES,
          help="4 to 32 characters: letters, digits and dashes; no spaces, | , ; :"),
    Field("im_domain", "IM domain", (dns_name(),), required=False,
          help="The XMPP domain its users sign in to, as <login>@<IM domain>: a DNS name, "
               "used by no other enterprise. Empty: its users cannot sign in yet."),
)
#: A PUT's body: the fields given are changed, the others kept.
ENTERPRISE_UPDATE = ENTERPRISE.optional()
COLUMNS = [
    Column("name", "Name", Enterprise.name),
    Column("eid", "Enterprise ID", Enterprise.eid),
    Column("created", "Created", Enterprise.created_at),
]

bp = Blueprint("enterprises", __name__)
api = ApiBlueprint("enterprises_api", __name__, url_prefix="/enterprises", tag="enterprises")


# --- the service: one place for each change, used by pages and API -------------------------

def as_dict(e: Enterprise) -> dict:
    return {"id": e.id, "eid": e.eid, "name": e.name, "im_domain": e.im_domain,
            "trusted_servers": [trusted_dict(t) for t in e.trusted_servers]}


def enterprises(args, per_page: int, adjustable: bool = False) -> Page:
    """One page of the enterprises, searched (name, Enterprise ID) and sorted as `args` ask."""
    return paginate(select(Enterprise), COLUMNS, args, "name",
                    search=(Enterprise.name, Enterprise.eid), per_page=per_page,
                    tiebreak=Enterprise.id, adjustable=adjustable)


def _unique_eid(eid: str, own_id: int | None = None) -> None:
    same = func.lower(Enterprise.eid) == eid.lower()
    clash = db.session.scalar(select(Enterprise.id).where(same))
    if clash is not None and clash != own_id:
        raise Invalid({"eid": ("unique", "Enterprise ID is already in use")})


def _unique_domain(data: dict, own_id: int | None = None) -> None:
    """An IM domain is stored in lower case, None when empty, and used by one enterprise."""
    if "im_domain" not in data:
        return
    domain = data["im_domain"] = (data["im_domain"] or "").lower() or None
    clash = db.session.scalar(select(Enterprise.id).where(Enterprise.im_domain == domain)) \
        if domain else None
    if clash is not None and clash != own_id:
        raise Invalid({"im_domain": ("unique", "IM domain is already used by another "
                                                "enterprise")})


def _nobody_signed_in(ent: Enterprise) -> None:
    """An IM domain does not change under signed-in users (their sessions and the rosters
    their clients hold are the old domain's): Conflict while any is, or while the running
    XMPP service cannot say."""
    online = client.signed_in(ent)
    if online != 0:
        why = (f"{online} of its users are signed in to {ent.im_domain}" if online else
               "the XMPP service has not said lately who is signed in")
        raise Conflict.because("signed_in", f"IM domain cannot change now: {why}. Change it "
                                            "when nobody is signed in (disable sign-in first).")


def create(data: dict) -> Enterprise:
    data = ENTERPRISE.validate(data)
    _unique_eid(data["eid"])
    _unique_domain(data)
    ent = Enterprise(**data)
    db.session.add(ent)
    db.session.flush()
    audit.record("create", "enterprise", ent.id, ent.eid, after=data, commit=False)
    db.session.commit()
    if ent.im_domain:
        xmpp.apply()  # a new virtual host for its users
    return ent


def update(ent: Enterprise, data: dict, partial: bool = False) -> Enterprise:
    """Change an enterprise: every field (a page's form), or those given when `partial`."""
    data = (ENTERPRISE_UPDATE if partial else ENTERPRISE).validate(data)
    if "eid" in data:
        _unique_eid(data["eid"], ent.id)
    _unique_domain(data, ent.id)
    if "im_domain" in data and ent.im_domain and data["im_domain"] != ent.im_domain:
        _nobody_signed_in(ent)
    before = {"name": ent.name, "eid": ent.eid, "im_domain": ent.im_domain}
    for k, v in data.items():
        setattr(ent, k, v)
    audit.record("update", "enterprise", ent.id, ent.eid, before=before,
                 after={"name": ent.name, "eid": ent.eid, "im_domain": ent.im_domain},
                 commit=False)
    db.session.commit()
    if ent.im_domain != before["im_domain"]:
        xmpp.apply()  # the virtual hosts follow the IM domains
    return ent


def impact(ent: Enterprise) -> dict:
    """What deleting `ent` also deletes, for the confirmation."""
    def count(model):
        return db.session.scalar(select(func.count()).select_from(model)
                                 .where(model.enterprise_id == ent.id))
    return {"trusted servers": len(ent.trusted_servers), "contacts": count(Contact),
            "accounts": count(Account)}


def delete(ent: Enterprise) -> None:
    """Delete an enterprise with everything that belongs to it, plugins' rows included."""
    before = {"name": ent.name, "eid": ent.eid, **impact(ent)}
    host().plugins.hook.appliance_enterprise_deleted(enterprise=ent)
    audit.record("delete", "enterprise", ent.id, ent.eid, before=before, commit=False)
    domain = ent.im_domain
    db.session.delete(ent)
    db.session.commit()
    if domain:
        xmpp.apply()  # its virtual host goes, and its users' sessions with it


def enterprise(ent_id: int) -> Enterprise:
    """The enterprise `ent_id`, or a 404 "No such enterprise"."""
    return found(Enterprise, ent_id, "enterprise")
