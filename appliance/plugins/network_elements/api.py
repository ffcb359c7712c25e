"""Users and Services as JSON under /api/v1/network-elements: network elements with their
IDS, licences, locations, departments, templates and roles."""

from flask import abort, jsonify, request

from appliance import ldapform
from appliance.api import (
    BOOL,
    INT,
    NULL_INT,
    NULL_STR,
    RUN,
    STR,
    array,
    error,
    items,
    json_object,
    obj,
    paged,
)
from appliance.auth import username
from appliance.db import found
from appliance.host import host
from appliance.listing import query_params
from appliance.validation import Invalid

from . import accounts, ids, service
from .api_base import (
    ELEMENT,
    ENTRIES,
    LICENCE,
    LICENCES_BODY,
    NAMED,
    TEMPLATE,
    TEMPLATE_BODY,
    api,
)
from .models import Department, Element, IdsSource, Location, Template

SITE = {"locations": Location, "departments": Department}
USED = {**NAMED, "properties": {**NAMED["properties"], "used_by": array(STR)}}


def _element(eid) -> Element:
    return found(Element, eid, "network element")


def _site(kind: str):
    """The model of the locations or the departments."""
    if kind not in SITE:
        abort(404, "Not found: use locations or departments")
    return SITE[kind]


# --- network elements --------------------------------------------------------------------------


@api.op("/elements", summary="Network elements with the provisioning methods they offer "
        "(?q=, ?sort=name|platform|address, ?dir=, ?page=, ?per_page=)",
        response=paged(ELEMENT), query=query_params(service.ELEMENT_COLUMNS))
def list_elements():
    return jsonify(service.elements(request.args, per_page=100, adjustable=True)
                   .json(service.element_dict))


def _saved(e: Element) -> dict:
    return {**service.element_dict(e), "accounts": accounts.element_accounts(e)}


@api.op("/elements", "POST", body=service.ELEMENT, status=201, summary="Add a network element "
        "(enterprise_id: the enterprise whose accounts its users are)", response=ELEMENT)
def add_element():
    return jsonify(_saved(service.save_element(json_object()))), 201


@api.op("/elements/<int:eid>", "PUT", body=service.ELEMENT_UPDATE, response=ELEMENT,
        summary="Change a network element (fields left out keep their value; a new "
        "enterprise_id moves its users' accounts to that enterprise, null takes them out)")
def put_element(eid):
    e = _element(eid)
    changes = json_object()
    service.ELEMENT_UPDATE.validate(changes)
    service.save_element({**service.element_dict(e), **changes}, e)
    return jsonify(_saved(e))


@api.op("/elements/<int:eid>", "DELETE", summary="Delete a network element with its IDS "
        "set-up and the contacts IDS seeded (refused with 409 while users live on it, while "
        "flow-through changes have not reached it or while IDS seeds); returns what went",
        response=obj(["deleted"], deleted={"type": "object"}), errors=(409,))
def delete_element(eid):
    return jsonify(deleted=service.delete_element(_element(eid)))


@api.op("/elements/<int:eid>/token", "POST", response=obj(["token"], token=STR),
        summary="Issue the token the element's "
        "management platform provisions with (shown once; replaces the old one)")
def element_token(eid):
    return jsonify(token=service.new_platform_token(_element(eid)))


# --- licences ----------------------------------------------------------------------------------


@api.op("/licences", summary="Licences available and in use, by type (one item per type)",
        response=items(LICENCE))
def get_licences():
    return jsonify(items=service.licences())


@api.op("/licences", "PUT", summary="Set how many licences of each type the site holds: "
        "{\"items\": [{\"type\", \"available\"}]}, all or (any wrong) none; a count may "
        "not fall below what is in use", body=LICENCES_BODY, response=items(LICENCE))
def put_licences():
    items = json_object().get("items")
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise Invalid({"items": ("array", "items must be a list of {type, available}")})
    service.set_licences({str(i.get("type")): i.get("available") for i in items})
    return jsonify(items=service.licences())


# --- locations and departments -----------------------------------------------------------------


def _named(row) -> dict:
    return {**service.named_dict(row), "used_by": service.used_by(row)}


@api.op("/<kind>", summary="Locations or departments of the site (kind: locations or "
        "departments; ?q=, ?sort=name|description, ?dir=, ?page=, ?per_page=), each with "
        "who uses it", response=paged(USED), query=query_params(service.named_columns(Location)))
def list_site(kind):
    return jsonify(service.named(_site(kind), request.args, per_page=100, adjustable=True)
                   .json(_named))


@api.op("/<kind>", "POST", body=service.NAMED, status=201, response=NAMED,
        summary="Add a location or department")
def add_site(kind):
    return jsonify(service.named_dict(service.save_named(_site(kind), json_object()))), 201


@api.op("/<kind>/<int:rid>", "PUT", body=service.NAMED, response=NAMED,
        summary="Rename a location or department (its users and templates follow); a "
        "description left out is cleared")
def update_site(kind, rid):
    model = _site(kind)
    row = found(model, rid, model.__name__.lower())
    return jsonify(service.named_dict(service.save_named(model, json_object(), row)))


@api.op("/<kind>/<int:rid>", "DELETE", status=204, errors=(409,),
        summary="Delete a location or department (refused with 409, naming who uses it, "
        "when in use)")
def delete_site(kind, rid):
    model = _site(kind)
    service.delete_named(found(model, rid, model.__name__.lower()))
    return "", 204


# --- templates and roles -----------------------------------------------------------------------


def _template(tid) -> Template:
    return found(Template, tid, "template or role")


@api.op("/templates", summary="User templates and roles (?q=, ?sort=name|kind, ?dir=, ?page=, "
        "?per_page=)", response=paged(TEMPLATE), query=query_params(service.TEMPLATE_COLUMNS))
def list_templates():
    return jsonify(service.templates(request.args, per_page=100, adjustable=True)
                   .json(service.template_dict))


@api.op("/templates", "POST", body=TEMPLATE_BODY, status=201, response=TEMPLATE,
        summary="Add a user template (kind template) or a role (kind role), with services")
def add_template():
    return jsonify(service.template_dict(service.save_template(json_object()))), 201


@api.op("/templates/<int:tid>", "PUT", body=TEMPLATE_BODY, response=TEMPLATE,
        summary="Change a template or role (all its fields: one left out is cleared): users "
        "provisioned from then on get the new data; users already provisioned keep theirs. "
        "Its kind cannot change while in use.")
def update_template(tid):
    return jsonify(service.template_dict(service.save_template(json_object(), _template(tid))))


@api.op("/templates/<int:tid>", "DELETE", status=204, errors=(409,),
        summary="Delete a template or role (refused with 409 while users or IDS have it)")
def delete_template(tid):
    service.delete_template(_template(tid))
    return "", 204


# --- IDS ---------------------------------------------------------------------------------------


@api.op("/elements/<int:eid>/ids", summary="The element's IDS set-up (the bind password is "
        "never shown: password_set says whether one is stored)", response=obj(
            ["element_id", "password_set"], element_id=INT, seeds=NULL_STR, password_set=BOOL,
            template=NULL_STR, enterprise_id=NULL_INT, contacts=INT))
def get_ids(eid):
    e = _element(eid)
    src = found(IdsSource, e.id, "IDS set-up for this element")
    ent, contacts = service.seeded(src)
    return jsonify(element_id=e.id, seeds=ids.seeds(e), **src.settings,
                   password_set=bool(src.password_sealed), template=src.template or None,
                   enterprise_id=src.enterprise_id, contacts=contacts)


@api.op("/elements/<int:eid>/ids", "PUT", body=ids.SETTINGS,
        summary="Set up IDS for an element (the LDAP fields, plus template for MiVoice "
                "Business or enterprise_id for MiVoice 5000 / MX-ONE; a new enterprise_id "
                "takes the seeded contacts out of the old enterprise's directory; refused "
                "with 409 while IDS seeds)",
        response=obj(["element_id", "ids"], element_id=INT, ids=STR), errors=(409,))
def put_ids(eid):
    e = _element(eid)
    ids.save(e, json_object())
    return jsonify(element_id=e.id, ids="saved")


@api.op("/elements/<int:eid>/ids", "DELETE", summary="Remove the element's IDS set-up and the "
        "Corporate Directory contacts it seeded (users it seeded stay; refused with 409 while "
        "IDS seeds); returns how many contacts went",
        response=obj(["contacts_removed"], contacts_removed=INT), errors=(409,))
def delete_ids(eid):
    return jsonify(contacts_removed=service.remove_ids(_element(eid)))


@api.op("/elements/<int:eid>/ids/test", "POST", body=ldapform.SCHEMA,
        summary="Test connection to the IDS directory: the first entries as they would be "
        "seeded, or why it failed (an empty password uses the stored one)", response=ENTRIES,
        errors=(502,))
def test_ids(eid):
    entries, failure = ids.test_connection(_element(eid), json_object())
    if failure:
        return error(502, "ldap", failure)
    return jsonify(entries=entries)


@api.op("/elements/<int:eid>/ids/run", "POST", status=202, response=RUN, errors=(409,),
        summary="Seed now from the directory (refused with 409 until IDS is set up, or while "
        "a seeding runs, naming it); follow the job at /api/v1/jobs/{id}")
def run_ids(eid):
    run, created = ids.submit(_element(eid), username())
    if not created:
        raise host().jobs.already_running(run)
    return jsonify(run_id=run.id, created=True, state=run.state), 202
