"""Users and Services as JSON under /api/v1/network-elements."""

from flask import jsonify, request
from sqlalchemy import select

from appliance import ldapdir, ldapform, limits
from appliance.api import (
    BOOL,
    ID,
    INT,
    NULL_INT,
    NULL_STR,
    RUN,
    STR,
    ApiBlueprint,
    array,
    error,
    invalid,
    items,
    json_object,
    obj,
    paged,
)
from appliance.auth import username
from appliance.db import db
from appliance.host import host
from appliance.listing import paginate, query_params
from appliance.validation import MAX_INT, Invalid

from . import flow, ids, imports, service
from .models import Change, Department, Element, IdsSource, Location, Template, User
from .views import USER_COLUMNS, users_query

api = ApiBlueprint("network_elements_api", __name__, url_prefix="/network-elements",
                   tag="network elements")
SITE = {"locations": Location, "departments": Department}

ELEMENT = obj(["id", "name", "platform", "methods"], id=INT, name=STR, platform=STR,
              address=NULL_STR, port=NULL_INT, username=NULL_STR, password_set=BOOL,
              description=NULL_STR, connector=NULL_STR, token_set=BOOL,
              methods=array(obj(["method", "label"], method=STR, label=STR, recommended=BOOL)))
LICENCE = obj(["type", "available", "in_use"], type=STR, available=INT, in_use=INT)
LICENCES_BODY = obj(["items"], items=array(obj(["type", "available"], type=STR, available={
    "type": "integer", "minimum": 0, "maximum": MAX_INT})))
NAMED = obj(["id", "name"], id=INT, name=STR, description=NULL_STR)
TEMPLATE = obj(["id", "name", "kind"], id=INT, name=STR, kind=STR, services=array(STR),
               location=NULL_STR, department=NULL_STR)
USER = obj(["id", "login"], id=INT, login=STR, first_name=NULL_STR, last_name=NULL_STR,
           email=NULL_STR, number=NULL_STR, element=NULL_STR, location=NULL_STR,
           department=NULL_STR, template=NULL_STR, template_kind=NULL_STR,
           services=array(STR), origin=NULL_STR)
CHANGE = obj(["id", "action", "state"], id=INT, element_id=NULL_INT, action=STR, login=NULL_STR,
             state=STR, attempts=INT, error=NULL_STR)
ENTRIES = obj(["entries"], entries=array({"type": "object"}))
BULK_BODY = {"x-media-type": "multipart/form-data", **obj(
    ["file"], file={"type": "string", "format": "binary"}, element=STR, template=STR,
    location=STR, department=STR)}
FLAG = {"type": "string", "enum": ["0", "1"]}


def _refused(exc: Invalid):
    """422 for a broken rule; 409 when IDS is seeding and the change must wait."""
    if any(rule == "busy" for rule, _ in exc.errors.values()):
        return error(409, "busy", str(exc))
    return invalid(exc)


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
        return _refused(exc)


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


@api.op("/users", summary="Provisioned users (?q=, ?sort=, ?page=, ?per_page=; ?element=<id>: "
        "those living on that element)", response=paged(USER), query=[
            *query_params(USER_COLUMNS), {"name": "element", "in": "query", "required": False,
                                          "schema": ID, "description": "An element's id"}])
def list_users():
    page = paginate(users_query(request.args), USER_COLUMNS, request.args, "login",
                    search=(User.login, User.last_name, User.number), per_page=100,
                    tiebreak=User.id, adjustable=True)
    return jsonify(items=[service.user_dict(u) for u in page.rows], total=page.total,
                   page=page.page, pages=page.pages)


def _user_body(current: dict | None = None) -> dict:
    """The request's user, over `current` (a PUT changes only what it names). Services may
    be a list. Changing a user, an empty list or a null location or department means none;
    provisioning one, they mean the template's or role's."""
    data = {**(current or {}), **json_object()}
    if isinstance(data.get("services"), list):
        data["services"] = ";".join(map(str, data["services"])) or (
            service.NONE if current else "")
    if current:
        for name in ("location", "department"):
            if data.get(name) is None:
                data[name] = service.NONE
    return data


@api.op("/users", "POST", body=service.USER, status=201, response=USER,
        summary="Provision a user manually (the element must offer manual provisioning); "
        "the template or role fills the services, location and department left out")
def add_user():
    try:
        u = service.save_user(_user_body(), "manual")
    except Invalid as exc:
        db.session.rollback()
        return invalid(exc)
    return jsonify(service.user_dict(u)), 201


@api.op("/users/<int:uid>", "PUT", body=service.USER, response=USER, summary="Change a user "
        "(fields left out keep their value; services [] or location/department null: none)")
def put_user(uid):
    u = db.session.get(User, uid)
    if u is None:
        return error(404, "not_found", "No such user")
    try:
        service.save_user(_user_body(service.user_form(u)), "manual", u)
    except Invalid as exc:
        db.session.rollback()
        return invalid(exc)
    return jsonify(service.user_dict(u))


@api.op("/users/<int:uid>", "DELETE", status=204, summary="Delete a user")
def delete_user(uid):
    u = db.session.get(User, uid)
    if u is None:
        return error(404, "not_found", "No such user")
    service.delete_user(u)
    return "", 204


@api.op("/flow-through", summary="The flow-through queue: pending, delivered and failed "
        "changes, newest first", response=items(CHANGE))
def list_changes():
    rows = db.session.scalars(select(Change).order_by(Change.id.desc()).limit(500))
    return jsonify(items=[{"id": c.id, "element_id": c.element_id, "action": c.action,
                           "login": c.login, "state": c.state, "attempts": c.attempts,
                           "error": c.error or None} for c in rows])


@api.op("/flow-through/retry", "POST", summary="Queue the failed changes again",
        response=obj(["requeued"], requeued=INT))
def retry():
    return jsonify(requeued=flow.retry_failed())


@api.op("/flow-through/discard", "POST", summary="Discard the failed changes, so the changes "
        "queued behind them are delivered", response=obj(["discarded"], discarded=INT))
def discard():
    return jsonify(discarded=flow.discard_failed())


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
        return _refused(exc)
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
        return _refused(exc)


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


@api.op("/bulk", "POST", status=202, summary="Bulk User Provisioning: upload a CSV or LDIF "
        "file (multipart field `file`; form fields element, template, location, department "
        "for what rows leave out) to preview it (?apply=1 to import it); follow the job at "
        "/api/v1/jobs/{id} and read the result at /api/v1/network-elements/bulk/{run_id}",
        body=BULK_BODY, response=obj(["run_id"], run_id=INT), query=[
            {"name": "apply", "in": "query", "required": False, "schema": FLAG,
             "description": "1: import (otherwise: preview)"}])
@limits.upload
def bulk_upload():
    upload = request.files.get("file")
    try:
        if upload is None or not upload.filename:
            raise ValueError("Send the file in the multipart field `file`")
        token, fmt = imports.store(upload)
    except ValueError as exc:
        return invalid(Invalid({"file": ("file", str(exc))}))
    defaults = {k: request.form[k] for k in ("element", "template", "location", "department")
                if request.form.get(k)}
    who = username()
    run, _ = host().jobs.submit(
        imports.KIND, f"bulk:{token}", {"token": token, "fmt": fmt, "defaults": defaults,
                                        "apply": request.args.get("apply") == "1",
                                        "username": who}, triggered_by=who)
    return jsonify(run_id=run.id), 202


@api.op("/bulk/<int:run_id>", summary="The result of a bulk preview or import: counts, the "
        "first rows and rejected rows with their reasons (the full report is a CSV at "
        "/network-elements/bulk/runs/{run_id}/report.csv)", response={"type": "object"})
def bulk_result(run_id):
    summary = imports.summary(run_id)
    if summary is None:
        return error(404, "not_found", "No finished bulk run with that id")
    return jsonify(summary)
