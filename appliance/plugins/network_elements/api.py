"""Users and Services as JSON under /api/v1/network-elements: network elements with their
IDS, licences, locations, departments, templates and roles."""

from flask import jsonify
from sqlalchemy import select

from appliance import ldapdir, ldapform
from appliance.api import (
    BOOL,
    INT,
    NULL_INT,
    NULL_STR,
    RUN,
    STR,
    array,
    error,
    invalid,
    items,
    json_object,
    obj,
)
from appliance.auth import username
from appliance.db import db
from appliance.validation import Invalid

from . import ids, service
from .api_base import ELEMENT, ENTRIES, LICENCE, LICENCES_BODY, NAMED, TEMPLATE, api, refused
from .models import Department, Element, IdsSource, Location, Template

SITE = {"locations": Location, "departments": Department}


@api.op("/elements", summary="Network elements with the provisioning methods they offer",
        response=items(ELEMENT))
def list_elements():
    return jsonify(items=[service.element_dict(e) for e in db.session.scalars(
        select(Element).order_by(Element.name))])


@api.op("/elements", "POST", body=service.ELEMENT, status=201, summary="Add a network element",
        response=ELEMENT)
def add_element():
    try:
        e = service.save_element(json_object())
    except Invalid as exc:
        db.session.rollback()
        return invalid(exc)
    return jsonify(service.element_dict(e)), 201


@api.op("/elements/<int:eid>", "PUT", body=service.ELEMENT, response=ELEMENT,
        summary="Change a network element (fields left out keep their value)")
def put_element(eid):
    e = db.session.get(Element, eid)
    if e is None:
        return error(404, "not_found", "No such network element")
    try:
        service.save_element({**service.element_dict(e), **json_object()}, e)
    except Invalid as exc:
        db.session.rollback()
        return invalid(exc)
    return jsonify(service.element_dict(e))


@api.op("/elements/<int:eid>", "DELETE", summary="Delete a network element with its IDS "
        "set-up and the contacts IDS seeded (refused with 422 while users live on it or "
        "flow-through changes have not reached it, with 409 while IDS seeds); returns what "
        "went", response=obj(["deleted"], deleted={"type": "object"}), errors=(409, 422))
def delete_element(eid):
    e = db.session.get(Element, eid)
    if e is None:
        return error(404, "not_found", "No such network element")
    try:
        return jsonify(deleted=service.delete_element(e))
    except Invalid as exc:
        db.session.rollback()
        return refused(exc)


@api.op("/elements/<int:eid>/token", "POST", response=obj(["token"], token=STR),
        summary="Issue the token the element's "
        "management platform provisions with (shown once; replaces the old one)")
def element_token(eid):
    e = db.session.get(Element, eid)
    if e is None:
        return error(404, "not_found", "No such network element")
    return jsonify(token=service.new_platform_token(e))


@api.op("/licences", summary="Licences available and in use, by type", response=items(LICENCE))
def get_licences():
    return jsonify(items=service.licences())


@api.op("/licences", "PUT", summary="Set how many licences of each type the site holds: "
        "{\"items\": [{\"type\", \"available\"}]}, all or (any wrong) none; a count may "
        "not fall below what is in use", body=LICENCES_BODY, response=items(LICENCE))
def put_licences():
    try:
        items = json_object().get("items")
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise Invalid({"items": ("array", "items must be a list of {type, available}")})
        service.set_licences({str(i.get("type")): i.get("available") for i in items})
    except Invalid as exc:
        db.session.rollback()
        return invalid(exc)
    return jsonify(items=service.licences())


@api.op("/<kind>", summary="Locations or departments of the site (kind: locations or "
        "departments)", response=items({**NAMED, "properties": {
            **NAMED["properties"], "used_by": array(STR)}}))
def list_site(kind):
    if kind not in SITE:
        return error(404, "not_found", "Not found")
    model = SITE[kind]
    return jsonify(items=[{"id": r.id, "name": r.name, "description": r.description,
                           "used_by": service.used_by(r)}
                          for r in db.session.scalars(select(model).order_by(model.name))])


@api.op("/<kind>", "POST", body=service.NAMED, status=201, response=NAMED,
        summary="Add a location or department")
def add_site(kind):
    if kind not in SITE:
        return error(404, "not_found", "Not found")
    try:
        row = service.save_named(SITE[kind], json_object())
    except Invalid as exc:
        db.session.rollback()
        return invalid(exc)
    return jsonify(id=row.id, name=row.name, description=row.description), 201


@api.op("/<kind>/<int:rid>", "PUT", body=service.NAMED, response=NAMED,
        summary="Rename a location or department (its users and templates follow)")
def update_site(kind, rid):
    row = db.session.get(SITE[kind], rid) if kind in SITE else None
    if row is None:
        return error(404, "not_found", "Not found")
    try:
        row = service.save_named(SITE[kind], json_object(), row)
    except Invalid as exc:
        db.session.rollback()
        return invalid(exc)
    return jsonify(id=row.id, name=row.name, description=row.description)


@api.op("/<kind>/<int:rid>", "DELETE", status=204, errors=(422,),
        summary="Delete a location or department (refused, naming who uses it, when in use)")
def delete_site(kind, rid):
    row = db.session.get(SITE[kind], rid) if kind in SITE else None
    if row is None:
        return error(404, "not_found", "Not found")
    try:
        service.delete_named(row)
    except Invalid as exc:
        db.session.rollback()
        return invalid(exc)
    return "", 204


@api.op("/templates", summary="User templates and roles", response=items(TEMPLATE))
def list_templates():
    return jsonify(items=[service.template_dict(t) for t in db.session.scalars(
        select(Template).order_by(Template.name))])


@api.op("/templates", "POST", body=service.TEMPLATE, status=201, response=TEMPLATE,
        summary="Add a user template (kind template) or a role (kind role), with services")
def add_template():
    return _save_template(None, 201)


@api.op("/templates/<int:tid>", "PUT", body=service.TEMPLATE, response=TEMPLATE,
        summary="Change a template or role: users provisioned from then on get the new "
        "data; users already provisioned keep theirs. Its kind cannot change while in use.")
def update_template(tid):
    row = db.session.get(Template, tid)
    if row is None:
        return error(404, "not_found", "Not found")
    return _save_template(row, 200)


@api.op("/templates/<int:tid>", "DELETE", status=204, errors=(422,),
        summary="Delete a template or role (refused while users have it)")
def delete_template(tid):
    row = db.session.get(Template, tid)
    if row is None:
        return error(404, "not_found", "Not found")
    try:
        service.delete_template(row)
    except Invalid as exc:
        db.session.rollback()
        return invalid(exc)
    return "", 204


def _save_template(row, status):
    try:
        t = service.save_template(json_object(), row)
    except Invalid as exc:
        db.session.rollback()
        return invalid(exc)
    return jsonify(service.template_dict(t)), status


def _ids_element(eid):
    e = db.session.get(Element, eid)
    return e, (None if e is not None else error(404, "not_found", "No such network element"))


@api.op("/elements/<int:eid>/ids", summary="The element's IDS set-up (the bind password is "
        "never shown: password_set says whether one is stored)", response=obj(
            ["element_id", "password_set"], element_id=INT, seeds=NULL_STR, password_set=BOOL,
            template=NULL_STR, enterprise_id=NULL_INT, contacts=INT))
def get_ids(eid):
    e, missing = _ids_element(eid)
    if missing:
        return missing
    src = db.session.get(IdsSource, e.id)
    if src is None:
        return error(404, "not_set_up", "IDS is not set up for this element")
    ent, contacts = service.seeded(src)
    return jsonify(element_id=e.id, seeds=ids.seeds(e), **src.settings,
                   password_set=bool(src.password_sealed), template=src.template or None,
                   enterprise_id=src.enterprise_id, contacts=contacts)


@api.op("/elements/<int:eid>/ids", "PUT", body=ldapform.SCHEMA,
        summary="Set up IDS for an element (the LDAP fields, plus template for MiVoice "
                "Business or enterprise_id for MiVoice 5000 / MX-ONE; a new enterprise_id "
                "takes the seeded contacts out of the old enterprise's directory)",
        response=obj(["element_id", "ids"], element_id=INT, ids=STR), errors=(409,))
def put_ids(eid):
    e, missing = _ids_element(eid)
    if missing:
        return missing
    try:
        ids.save(e, json_object())
    except Invalid as exc:
        db.session.rollback()
        return refused(exc)
    return jsonify(element_id=e.id, ids="saved")


@api.op("/elements/<int:eid>/ids", "DELETE", summary="Remove the element's IDS set-up and the "
        "Corporate Directory contacts it seeded (users it seeded stay); returns how many "
        "contacts went", response=obj(["contacts_removed"], contacts_removed=INT),
        errors=(409, 422))
def delete_ids(eid):
    e, missing = _ids_element(eid)
    if missing:
        return missing
    try:
        return jsonify(contacts_removed=service.remove_ids(e))
    except Invalid as exc:
        db.session.rollback()
        return refused(exc)


@api.op("/elements/<int:eid>/ids/test", "POST", body=ldapform.SCHEMA,
        summary="Test connection to the IDS directory: the first entries as they would be "
        "seeded, or why it failed (an empty password uses the stored one)", response=ENTRIES,
        errors=(502,))
def test_ids(eid):
    e, missing = _ids_element(eid)
    if missing:
        return missing
    try:
        clean = ldapform.SCHEMA.validate(json_object())
        password = ids.password(e, clean)
    except Invalid as exc:
        return invalid(exc)
    entries, failure = ldapform.try_connection(clean, password,
                                               ldapdir.MAPPING_PRESETS[clean["preset"]])
    if failure:
        return error(502, "ldap", failure)
    return jsonify(entries=entries)


@api.op("/elements/<int:eid>/ids/run", "POST", status=202, response=RUN, errors=(409,),
        summary="Seed now from the directory; follow the job at /api/v1/jobs/{id}")
def run_ids(eid):
    e, missing = _ids_element(eid)
    if missing:
        return missing
    if db.session.get(IdsSource, e.id) is None:
        return error(409, "not_set_up", "Set up IDS for this element first")
    run, created = ids.submit(e, username())
    return jsonify(run_id=run.id, created=created), 202
