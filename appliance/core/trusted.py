"""Core: an enterprise's trusted servers and their peer keys, pages and API (on the
enterprises blueprints)."""

from flask import abort, flash, jsonify, request

from appliance.api import INT, NULL_STR, STR, TIME, body, error, invalid, obj
from appliance.db import db
from appliance.models import TrustedServer
from appliance.peers import (
    TRUSTED,
    add_trusted,
    new_peer_key,
    remove_trusted,
    trusted_dict,
    update_trusted,
)
from appliance.ui import render
from appliance.validation import Invalid

from .enterprise_service import api, as_dict, bp, find, get_or_404, impact


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
    ent = get_or_404(ent_id)
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


TRUSTED_RESPONSE = obj(["id", "address"], id=INT, address=STR, description=NULL_STR,
                       peer_key_issued_at=TIME)
WITH_KEY = {**TRUSTED_RESPONSE, "properties": {
    **TRUSTED_RESPONSE["properties"],
    "peer_key": {**NULL_STR, "description": "The new peer key, this once; null: unchanged"}}}


@api.op("/<int:ent_id>/trusted-servers", "POST", status=201, body=TRUSTED, response=WITH_KEY,
        summary="Trust a server; the answer carries its new peer key (`peer_key`) once, "
                "when the address had none")
def api_trusted_add(ent_id):
    ent = find(ent_id)
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


