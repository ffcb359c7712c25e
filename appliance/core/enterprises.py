"""Core: enterprises, their trusted servers, and the enterprise chosen in the header."""

from urllib.parse import urlsplit

from flask import abort, current_app, flash, jsonify, render_template, request, session, url_for

from appliance.api import INT, NULL_STR, STR, array, json_object, obj, paged
from appliance.listing import query_params
from appliance.peers import TRUSTED
from appliance.plugins import declare
from appliance.ui import Tab, on_invalid, redirect_to, render
from appliance.validation import id_of

from .enterprise_service import (
    COLUMNS,
    ENTERPRISE,
    ENTERPRISE_UPDATE,
    api,
    as_dict,
    bp,
    create,
    delete,
    enterprise,
    enterprises,
    impact,
    update,
)
from .trusted import TRUSTED_RESPONSE


def _list(block="table", values=None, errors=None):
    page = enterprises(request.args, current_app.config["PAGE_SIZE"])
    return render("enterprises/index.html", block=block, page=page, schema=ENTERPRISE,
                  values=values or {}, errors=errors or {})


@bp.get("/enterprises")
def index():
    return _list()


@bp.post("/enterprises")
def add():
    # Only the form comes back to an HTMX request, with what was typed and the messages.
    on_invalid(lambda errors: _list("add_form", request.form, errors))
    ent = create(request.form)
    session["enterprise_id"] = ent.id
    flash(f"Enterprise {ent.name} ({ent.eid}) added and selected.", "success")
    return _trigger(redirect_to(url_for("enterprises.index")), "enterprises-changed")


def _edit(ent, values: dict, errors: dict):
    return render("enterprises/edit.html", block="edit_form", ent=ent, values=values,
                  errors=errors, impact=impact(ent), schema=ENTERPRISE, trusted=TRUSTED,
                  tvalues={}, terrors={})


@bp.route("/enterprises/<int:ent_id>", methods=["GET", "POST"])
def edit(ent_id):
    ent = enterprise(ent_id)
    if request.method == "GET":
        return _edit(ent, {"name": ent.name, "eid": ent.eid, "im_domain": ent.im_domain or ""}, {})
    on_invalid(lambda errors: _edit(ent, request.form, errors))
    update(ent, request.form)
    flash("Enterprise saved.", "success")
    return _trigger(redirect_to(url_for("enterprises.edit", ent_id=ent.id)),
                    "enterprises-changed")


@bp.post("/enterprises/<int:ent_id>/delete")
def remove(ent_id):
    ent = enterprise(ent_id)
    name = ent.name
    delete(ent)
    flash(f"Enterprise {name} deleted.", "success")
    return _trigger(redirect_to(url_for("enterprises.index")), "enterprises-changed")


@bp.post("/session/enterprise", endpoint="select")
def select_():
    ent_id = id_of(request.form.get("enterprise_id"))
    if ent_id is None:
        abort(400, "Choose an enterprise from the list")
    session["enterprise_id"] = enterprise(ent_id).id
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

ENTERPRISE_RESPONSE = obj(["id", "eid", "name", "im_domain", "trusted_servers"], id=INT,
                          eid=STR, name=STR, im_domain=NULL_STR,
                          trusted_servers=array(TRUSTED_RESPONSE))


@api.op("", summary="List enterprises (?q=, ?sort=name|eid|created, ?dir=, ?page=, "
        "?per_page=)", response=paged(ENTERPRISE_RESPONSE), query=query_params(COLUMNS))
def api_list():
    return jsonify(enterprises(request.args, 50, adjustable=True).json(as_dict))


@api.op("", "POST", summary="Create an enterprise", body=ENTERPRISE, status=201,
        response=ENTERPRISE_RESPONSE)
def api_create():
    return jsonify(as_dict(create(json_object()))), 201


@api.op("/<int:ent_id>", summary="One enterprise", response=ENTERPRISE_RESPONSE)
def api_get(ent_id):
    return jsonify(as_dict(enterprise(ent_id)))


@api.op("/<int:ent_id>", "PUT", summary="Change an enterprise (fields left out keep their "
        "value)", body=ENTERPRISE_UPDATE, response=ENTERPRISE_RESPONSE)
def api_update(ent_id):
    return jsonify(as_dict(update(enterprise(ent_id), json_object(), partial=True)))


@api.op("/<int:ent_id>", "DELETE", summary="Delete an enterprise and all that belongs to it",
        status=204)
def api_delete(ent_id):
    delete(enterprise(ent_id))
    return "", 204


declare(__name__, title="Enterprises", description="Enterprises and their trusted servers.",
        blueprints=[bp], api_blueprints=[api],
        nav_tabs=[Tab("Enterprises", "enterprises.index", order=10)])
