"""Core: enterprises, their trusted servers, and the enterprise chosen in the header."""

from urllib.parse import urlsplit

from flask import (
    abort,
    current_app,
    flash,
    jsonify,
    render_template,
    request,
    session,
    url_for,
)
from sqlalchemy import select

from appliance import hookimpl
from appliance.api import INT, STR, array, body, error, invalid, obj
from appliance.db import db
from appliance.listing import paginate, query_params
from appliance.models import Enterprise
from appliance.ui import Tab, redirect_to, render, render_block
from appliance.validation import Invalid, id_of

from .enterprise_service import (
    COLUMNS,
    ENTERPRISE,
    api,
    as_dict,
    bp,
    create,
    delete,
    find,
    get_or_404,
    impact,
    update,
)
from .trusted import TRUSTED_RESPONSE


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
    ent = get_or_404(ent_id)
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
    ent = get_or_404(ent_id)
    name = ent.name
    delete(ent)
    flash(f"Enterprise {name} deleted.", "success")
    return _trigger(redirect_to(url_for("enterprises.index")), "enterprises-changed")


@bp.post("/session/enterprise", endpoint="select")
def select_():
    ent_id = id_of(request.form.get("enterprise_id"))
    if ent_id is None:
        abort(400, "Choose an enterprise from the list")
    ent = get_or_404(ent_id)
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


@api.op("/<int:ent_id>", summary="One enterprise", response=ENTERPRISE_RESPONSE)
def api_get(ent_id):
    ent = find(ent_id)
    return jsonify(as_dict(ent)) if ent else error(404, "not_found", "No such enterprise")


@api.op("/<int:ent_id>", "PUT", summary="Change an enterprise (fields may be left out)",
        body=ENTERPRISE, response=ENTERPRISE_RESPONSE)
def api_update(ent_id):
    ent = find(ent_id)
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
    ent = find(ent_id)
    if ent is None:
        return error(404, "not_found", "No such enterprise")
    delete(ent)
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
