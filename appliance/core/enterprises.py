"""Core: enterprises, their trusted servers, and the enterprise chosen in the header."""

from urllib.parse import urlsplit

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    jsonify,
    render_template,
    request,
    session,
    url_for,
)
from sqlalchemy import func, select

from appliance import audit, hookimpl
from appliance.api import INT, NULL_STR, STR, TIME, ApiBlueprint, array, body, error, invalid, obj
from appliance.db import db
from appliance.host import host
from appliance.listing import Column, paginate, query_params
from appliance.models import Account, Contact, Enterprise, TrustedServer
from appliance.peers import (
    TRUSTED,
    add_trusted,
    new_peer_key,
    remove_trusted,
    trusted_dict,
    update_trusted,
)
from appliance.ui import Tab, redirect_to, render, render_block
from appliance.validation import (
    ENTERPRISE_ID_RULES,
    Field,
    Invalid,
    Schema,
    id_of,
    length,
)

ENTERPRISE = Schema(
    "Enterprise",
    Field("name", "Name", (length(1, 128),)),
    Field("eid", "Enterprise ID", ENTERPRISE_ID_RULES,
          help="4 to 32 characters: letters, digits and dashes."),
)
COLUMNS = [
    Column("name", "Name", Enterprise.name),
    Column("eid", "Enterprise ID", Enterprise.eid),
    Column("created", "Created", Enterprise.created_at),
]

bp = Blueprint("enterprises", __name__)
api = ApiBlueprint("enterprises_api", __name__, url_prefix="/enterprises", tag="enterprises")


# --- the service: one place for each change, used by pages and API -------------------------

def as_dict(e: Enterprise) -> dict:
    return {"id": e.id, "eid": e.eid, "name": e.name,
            "trusted_servers": [trusted_dict(t) for t in e.trusted_servers]}



def _unique_eid(eid: str, own_id: int | None = None) -> None:
    same = func.lower(Enterprise.eid) == eid.lower()
    clash = db.session.scalar(select(Enterprise.id).where(same))
    if clash is not None and clash != own_id:
        raise Invalid({"eid": ("unique", "Enterprise ID is already in use")})


def create(data: dict) -> Enterprise:
    data = ENTERPRISE.validate(data)
    _unique_eid(data["eid"])
    ent = Enterprise(**data)
    db.session.add(ent)
    db.session.flush()
    audit.record("create", "enterprise", ent.id, ent.eid, after=data, commit=False)
    db.session.commit()
    return ent


def update(ent: Enterprise, data: dict, partial: bool = False) -> Enterprise:
    data = ENTERPRISE.validate(data, partial=partial)
    if "eid" in data:
        _unique_eid(data["eid"], ent.id)
    before = {"name": ent.name, "eid": ent.eid}
    for k, v in data.items():
        setattr(ent, k, v)
    audit.record("update", "enterprise", ent.id, ent.eid, before=before,
                 after={"name": ent.name, "eid": ent.eid}, commit=False)
    db.session.commit()
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
    db.session.delete(ent)
    db.session.commit()


def _get(ent_id: int) -> Enterprise:
    return db.session.get(Enterprise, ent_id) or abort(404, "No such enterprise")


# --- pages ---------------------------------------------------------------------------------

def _list(values=None, errors=None, status=200):
    page = paginate(select(Enterprise), COLUMNS, request.args, "name",
                    search=(Enterprise.name, Enterprise.eid),
                    per_page=current_app.config["PAGE_SIZE"], tiebreak=Enterprise.id)
    return render("enterprises/index.html", block="table", page=page, values=values or {},
                  errors=errors or {}), status


@bp.get("/enterprises")
def index():
    return _list()


@bp.post("/enterprises")
def add():
    try:
        ent = create(request.form)
    except Invalid as exc:
        if request.htmx:
            return render_block("enterprises/index.html", "add_form", values=request.form,
                                errors=exc.messages()), 422
        return _list(request.form, exc.messages(), 422)
    session["enterprise_id"] = ent.id
    flash(f"Enterprise {ent.name} ({ent.eid}) added and selected.", "success")
    resp = redirect_to(url_for("enterprises.index"))
    return _trigger(resp, "enterprises-changed")


@bp.route("/enterprises/<int:ent_id>", methods=["GET", "POST"])
def edit(ent_id):
    ent = _get(ent_id)
    values, errors, status = {"name": ent.name, "eid": ent.eid}, {}, 200
    if request.method == "POST":
        try:
            update(ent, request.form)
        except Invalid as exc:
            db.session.rollback()
            values, errors, status = request.form, exc.messages(), 422
        else:
            flash("Enterprise saved.", "success")
            return _trigger(redirect_to(url_for("enterprises.edit", ent_id=ent.id)),
                            "enterprises-changed")
    return render("enterprises/edit.html", block="edit_form", ent=ent, values=values,
                  errors=errors, impact=impact(ent), tvalues={}, terrors={}), status


@bp.post("/enterprises/<int:ent_id>/delete")
def remove(ent_id):
    ent = _get(ent_id)
    name = ent.name
    delete(ent)
    flash(f"Enterprise {name} deleted.", "success")
    return _trigger(redirect_to(url_for("enterprises.index")), "enterprises-changed")


def _trusted_block(ent, status=200, **context):
    if not request.htmx:
        return render("enterprises/edit.html", ent=ent, values=as_dict(ent), errors={},
                      impact=impact(ent), **{"tvalues": {}, "terrors": {}, **context}), status
    db.session.refresh(ent)
    return render("enterprises/edit.html", block="trusted", ent=ent,
                  **{"tvalues": {}, "terrors": {}, **context}), status


def _trusted(ent_id, tid) -> TrustedServer:
    t = db.session.get(TrustedServer, tid)
    if t is None or t.enterprise_id != ent_id:
        abort(404, "No such trusted server")
    return t


@bp.post("/enterprises/<int:ent_id>/trusted")
def trusted_add(ent_id):
    ent = _get(ent_id)
    try:
        t, key = add_trusted(ent, request.form)
    except Invalid as exc:
        db.session.rollback()
        return _trusted_block(ent, 422, tvalues=request.form, terrors=exc.messages())
    flash("Trusted server added.", "success")
    return _trusted_block(ent, new_key=(t.address, key) if key else None)


@bp.route("/enterprises/<int:ent_id>/trusted/<int:tid>", methods=["GET", "POST"])
def trusted_edit(ent_id, tid):
    t = _trusted(ent_id, tid)
    ent = t.enterprise
    if request.method == "GET":
        return _trusted_block(ent, editing=t.id, evalues=trusted_dict(t), eerrors={})
    try:
        key = update_trusted(t, request.form)
    except Invalid as exc:
        db.session.rollback()
        return _trusted_block(ent, 422, editing=t.id, evalues=request.form,
                              eerrors=exc.messages())
    flash(f"Trusted server {t.address} saved.", "success")
    return _trusted_block(ent, new_key=(t.address, key) if key else None)


@bp.post("/enterprises/<int:ent_id>/trusted/<int:tid>/key")
def trusted_key(ent_id, tid):
    t = _trusted(ent_id, tid)
    key = new_peer_key(t)
    return _trusted_block(t.enterprise, new_key=(t.address, key))


@bp.post("/enterprises/<int:ent_id>/trusted/<int:tid>/delete")
def trusted_remove(ent_id, tid):
    t = _trusted(ent_id, tid)
    ent = t.enterprise
    remove_trusted(t)
    flash("Trusted server removed.", "success")
    return _trusted_block(ent)


@bp.post("/session/enterprise", endpoint="select")
def select_():
    ent_id = id_of(request.form.get("enterprise_id"))
    if ent_id is None:
        abort(400, "Choose an enterprise from the list")
    ent = _get(ent_id)
    session["enterprise_id"] = ent.id
    # Reload the page the admin is on (HTMX names it; a plain form has the referrer).
    here = request.htmx.current_url if request.htmx else request.referrer
    return redirect_to(_local_path(here) or url_for("home.index"))


def _local_path(url: str | None) -> str | None:
    """The path and query of `url` if it is a page of this appliance."""
    if not url or not url.startswith(request.host_url):
        return None
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


@bp.get("/session/switcher")
def switcher():
    return render_template("_switcher.html")


def _trigger(resp, event: str):
    if isinstance(resp, tuple):
        body_, status, headers = resp
        return body_, status, {**headers, "HX-Trigger": event}
    return resp



# --- API -----------------------------------------------------------------------------------

TRUSTED_RESPONSE = obj(["id", "address"], id=INT, address=STR, description=NULL_STR,
                       peer_key_issued_at=TIME)
WITH_KEY = {**TRUSTED_RESPONSE, "properties": {
    **TRUSTED_RESPONSE["properties"],
    "peer_key": {**NULL_STR, "description": "The new peer key, this once; null: unchanged"}}}
ENTERPRISE_RESPONSE = obj(["id", "eid", "name", "trusted_servers"], id=INT, eid=STR, name=STR,
                          trusted_servers=array(TRUSTED_RESPONSE))
LIST_RESPONSE = obj(["items", "total", "page", "pages"], items=array(ENTERPRISE_RESPONSE),
                    total=INT, page=INT, pages=INT)


@api.op("", summary="List enterprises (?q=, ?sort=name|eid|created, ?dir=, ?page=, "
        "?per_page=)", response=LIST_RESPONSE, query=query_params(COLUMNS))
def api_list():
    page = paginate(select(Enterprise), COLUMNS, request.args, "name",
                    search=(Enterprise.name, Enterprise.eid), tiebreak=Enterprise.id,
                    adjustable=True)
    return jsonify(items=[as_dict(e) for e in page.rows], total=page.total, page=page.page,
                   pages=page.pages)


@api.op("", "POST", summary="Create an enterprise", body=ENTERPRISE, status=201,
        response=ENTERPRISE_RESPONSE)
def api_create():
    try:
        ent = create(body(ENTERPRISE))
    except Invalid as exc:
        db.session.rollback()
        return invalid(exc)
    return jsonify(as_dict(ent)), 201


def _api_get(ent_id):
    return db.session.get(Enterprise, ent_id)


@api.op("/<int:ent_id>", summary="One enterprise", response=ENTERPRISE_RESPONSE)
def api_get(ent_id):
    ent = _api_get(ent_id)
    return jsonify(as_dict(ent)) if ent else error(404, "not_found", "No such enterprise")


@api.op("/<int:ent_id>", "PUT", summary="Change an enterprise (fields may be left out)",
        body=ENTERPRISE, response=ENTERPRISE_RESPONSE)
def api_update(ent_id):
    ent = _api_get(ent_id)
    if ent is None:
        return error(404, "not_found", "No such enterprise")
    try:
        update(ent, body(ENTERPRISE, partial=True), partial=True)
    except Invalid as exc:
        db.session.rollback()
        return invalid(exc)
    return jsonify(as_dict(ent))


@api.op("/<int:ent_id>", "DELETE", summary="Delete an enterprise and all that belongs to it",
        status=204)
def api_delete(ent_id):
    ent = _api_get(ent_id)
    if ent is None:
        return error(404, "not_found", "No such enterprise")
    delete(ent)
    return "", 204


@api.op("/<int:ent_id>/trusted-servers", "POST", status=201, body=TRUSTED, response=WITH_KEY,
        summary="Trust a server; the answer carries its new peer key (`peer_key`) once, "
                "when the address had none")
def api_trusted_add(ent_id):
    ent = _api_get(ent_id)
    if ent is None:
        return error(404, "not_found", "No such enterprise")
    try:
        t, key = add_trusted(ent, body(TRUSTED))
    except Invalid as exc:
        db.session.rollback()
        return invalid(exc)
    return jsonify({**trusted_dict(t), "peer_key": key}), 201


def _api_trusted(ent_id, tid):
    t = db.session.get(TrustedServer, tid)
    return t if t is not None and t.enterprise_id == ent_id else None


@api.op("/<int:ent_id>/trusted-servers/<int:tid>", "PUT", body=TRUSTED, response=WITH_KEY,
        summary="Change a trusted server (fields may be left out); its peer key follows the "
                "address, or a new one is returned once as `peer_key`")
def api_trusted_update(ent_id, tid):
    t = _api_trusted(ent_id, tid)
    if t is None:
        return error(404, "not_found", "No such trusted server")
    try:
        key = update_trusted(t, body(TRUSTED, partial=True), partial=True)
    except Invalid as exc:
        db.session.rollback()
        return invalid(exc)
    return jsonify({**trusted_dict(t), "peer_key": key})


@api.op("/<int:ent_id>/trusted-servers/<int:tid>/key", "POST", response=WITH_KEY,
        summary="Issue a new peer key for the server's address (replaces the old one)")
def api_trusted_key(ent_id, tid):
    t = _api_trusted(ent_id, tid)
    if t is None:
        return error(404, "not_found", "No such trusted server")
    return jsonify({**trusted_dict(t), "peer_key": new_peer_key(t)})


@api.op("/<int:ent_id>/trusted-servers/<int:tid>", "DELETE", summary="Stop trusting a server",
        status=204)
def api_trusted_remove(ent_id, tid):
    t = _api_trusted(ent_id, tid)
    if t is None:
        return error(404, "not_found", "No such trusted server")
    remove_trusted(t)
    return "", 204


@hookimpl
def appliance_metadata():
    return {"title": "Enterprises", "description": "Enterprises and their trusted servers."}


@hookimpl
def appliance_blueprints():
    return [bp]


@hookimpl
def appliance_api_blueprints():
    return [api]


@hookimpl
def appliance_nav_tabs():
    return [Tab("Enterprises", "enterprises.index", order=10)]
