"""Network elements: save, delete impact, IDS seeds and platform tokens."""

import hashlib
import secrets

from sqlalchemy import func, select

from appliance import audit, vault
from appliance.db import db
from appliance.directory import remove_source
from appliance.host import host
from appliance.listing import Column, Page, paginate
from appliance.models import Contact, Enterprise
from appliance.validation import Conflict, Invalid

from . import accounts, flow
from .models import (
    IDS_SEEDS,
    METHOD_LABELS,
    RECOMMENDED,
    Change,
    Element,
    IdsSource,
    User,
    folded,
)
from .rules import ELEMENT, by_name


def element_dict(e: Element) -> dict:
    return {"id": e.id, "name": e.name, "platform": e.platform, "address": e.address,
            "port": e.port, "username": e.username, "password_set": bool(e.password_sealed),
            "description": e.description, "connector": e.connector,
            "methods": [{"method": m, "label": METHOD_LABELS[m],
                         "recommended": RECOMMENDED.get(e.platform) == m} for m in e.methods],
            "token_set": bool(e.token_digest), "enterprise_id": e.enterprise_id}


ELEMENT_COLUMNS = [
    Column("name", "Name", folded(Element.name)),
    Column("platform", "Platform", (Element.platform, *folded(Element.name))),
    Column("address", "FQDN or IP address", folded(Element.address)),
]


def elements(args, per_page: int, adjustable: bool = False) -> Page:
    """One page of the network elements, searched and sorted as `args` ask."""
    return paginate(select(Element), ELEMENT_COLUMNS, args, "name",
                    search=(Element.name, Element.address), per_page=per_page,
                    tiebreak=Element.id, adjustable=adjustable)


def users_by_element(ids) -> dict[int, int]:
    """How many users live on each of these elements."""
    return dict(db.session.execute(select(User.element_id, func.count()).where(
        User.element_id.in_(ids)).group_by(User.element_id)).all())


def save_element(data, e: Element | None = None) -> Element:
    """Add or change an element. A change of its enterprise moves its users' accounts (out
    of the old one, into the new one), after the element is committed."""
    values = ELEMENT.validate(data)
    clash = by_name(Element, values["name"])
    if clash is not None and clash is not e:
        raise Invalid({"name": ("unique", "A network element with this name exists")})
    if (ent_id := values.get("enterprise_id")) and db.session.get(Enterprise, ent_id) is None:
        raise Invalid({"enterprise_id": ("unknown", f"No enterprise with id {ent_id}: "
                       "Enterprise must be the id of an existing enterprise, or empty for "
                       "none")})
    if e is not None and values["platform"] != e.platform:
        if n := _users_on(e):
            raise Invalid({"platform": ("in_use", f"{n} user(s) live on {e.name}: move them "
                           "before changing its platform")})
        seeds = IDS_SEEDS.get(e.platform)
        if db.session.get(IdsSource, e.id) and IDS_SEEDS.get(values["platform"]) != seeds:
            raise Invalid({"platform": ("in_use", f"IDS of {e.name} seeds {seeds}, which "
                           f"{values['platform']} does not: remove IDS before changing its "
                           "platform")})
    values["connector"] = values.get("connector") or (e.connector if e else "file")
    if values["connector"] not in (names := flow.connectors()):
        raise Invalid({"connector": ("one_of", f"No flow-through connector named "
                       f"{values['connector']}: use {', '.join(sorted(names))}")})
    password = vault.secret_for(
        values.pop("password", "") or "", e.password_sealed if e else "",
        (e.address.lower(), e.port) if e else None, (values["address"].lower(), values["port"]),
        "password", "Administrator password: type it again for this address and port; the "
        "stored one is only sent to the element it was typed for")
    before = element_dict(e) if e else None
    creating = e is None
    if creating:
        e = Element()
        db.session.add(e)
    for k, v in values.items():
        setattr(e, k, v if v is not None or k in ("port", "enterprise_id") else "")
    e.password_sealed = vault.seal(password) if password else ""
    db.session.flush()
    audit.record("create" if creating else "update", "network element", e.id, e.name,
                 before=before, after=element_dict(e), commit=False)
    db.session.commit()
    accounts.sync_element(e, was=before["enterprise_id"] if before else None)
    return e


def _users_on(e: Element) -> int:
    return db.session.scalar(select(func.count()).select_from(User)
                             .where(User.element_id == e.id))


def element_impact(e: Element) -> dict:
    """What deleting `e` also deletes, for the confirmation (users, and changes that have not
    reached it, keep it from going)."""
    src = db.session.get(IdsSource, e.id)
    ent, contacts = seeded(src)
    return {"users": _users_on(e), "ids": src is not None, "ids_contacts": contacts,
            "ids_enterprise": ent.name if ent else None}


def undelivered(e: Element) -> int:
    """How many of the element's flow-through changes are pending or failed."""
    return db.session.scalar(select(func.count()).select_from(Change).where(
        Change.element_id == e.id, Change.state.in_(("pending", "failed"))))


def delete_element(e: Element) -> dict:
    """Delete an element with its IDS set-up and the contacts IDS seeded (and its delivered
    and discarded flow-through history). Refused (Conflict) while users live on it, while
    changes have not reached it (its users' deletes among them), or while IDS seeds. Returns
    what went."""
    if n := _users_on(e):
        raise Conflict.because("in_use", f"{e.name} cannot be deleted: {n} user(s) live on it")
    if n := undelivered(e):
        raise Conflict.because("undelivered", f"{e.name} cannot be deleted yet: {n} "
                               "flow-through change(s) have not reached it. Delete it once "
                               "they are delivered, or discard the failed ones on the Flow "
                               "Through page")
    not_seeding(e, "delete the element")
    gone = element_impact(e)
    audit.record("delete", "network element", e.id, e.name, before=element_dict(e) | gone,
                 commit=False)
    src = db.session.get(IdsSource, e.id)
    element_id, enterprise_id = e.id, e.enterprise_id
    _remove_seeded(src, seeded(src)[0], e)
    # None live on it, so none should be left; any that were are gone with it.
    accounts.remove_element(element_id, enterprise_id)
    return gone


def remove_ids(e: Element) -> int:
    """Remove an element's IDS set-up and the Corporate Directory contacts it seeded (users it
    seeded stay: they are provisioned users now); return how many contacts went."""
    src = db.session.get(IdsSource, e.id)
    if src is None:
        return 0
    not_seeding(e, "remove IDS")
    ent, n = seeded(src)
    audit.record("delete", "ids", e.id, e.name, before={"contacts": n}, commit=False)
    _remove_seeded(src, ent)
    return n


def ids_running(e: Element) -> bool:
    """Whether IDS is seeding from the element's directory now."""
    return host().jobs.active(f"ids:{e.id}") is not None


def not_seeding(e: Element, what: str) -> None:
    """Refuse `what` while IDS runs: the run would bring back what the change removes."""
    if ids_running(e):
        raise Conflict.because("busy", f"IDS is seeding from {e.name}'s directory: {what} "
                               "once that ends")


def seeded(src: IdsSource | None) -> tuple[Enterprise | None, int]:
    """The enterprise whose Corporate Directory an IDS set-up seeds, and how many contacts
    it holds from it."""
    ent = db.session.get(Enterprise, src.enterprise_id) if src and src.enterprise_id else None
    if ent is None:
        return None, 0
    return ent, db.session.scalar(select(func.count()).select_from(Contact).where(
        Contact.enterprise_id == ent.id, Contact.source == src.source))


def _remove_seeded(src: IdsSource | None, ent: Enterprise | None, *more) -> None:
    """Delete `src` (then the `more` rows) and the contacts it seeded into `ent`, and commit
    with whatever else the session holds."""
    source = src.source if src is not None else ""
    for row in (src, *more):
        if row is not None:
            db.session.delete(row)
            db.session.flush()
    if ent is not None:
        remove_source(Contact, ent, source)  # commits, and tells other plugins
    else:
        db.session.commit()


def new_platform_token(e: Element) -> str:
    """The token the element's management platform provisions with; shown once."""
    token = "ane_" + secrets.token_urlsafe(32)
    e.token_digest = hashlib.sha256(token.encode()).hexdigest()
    audit.record("update", "network element", e.id, e.name, after={"token": "replaced"},
                 commit=False)
    db.session.commit()
    return token


def element_for_token(token: str) -> Element | None:
    if not token:
        return None
    digest = hashlib.sha256(token.encode()).hexdigest()
    return db.session.scalar(select(Element).where(Element.token_digest == digest))
