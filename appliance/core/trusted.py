"""Core: an enterprise's trusted servers and their peer keys, pages and API (on the
enterprises blueprints)."""

from flask import flash, jsonify, request

from appliance.api import INT, NULL_STR, STR, TIME, json_object, obj
from appliance.db import db, found
from appliance.models import TrustedServer
from appliance.peers import (
    TRUSTED,
    TRUSTED_UPDATE,
    add_trusted,
    new_peer_key,
    remove_trusted,
    trusted_dict,
    update_trusted,
)
from appliance.ui import on_invalid, render

from .enterprise_service import ENTERPRISE, api, as_dict, bp, enterprise, impact


def _trusted_block(ent, **context):
    context = {"tvalues": {}, "terrors": {}, "trusted": TRUSTED, **context}
    if not request.htmx:
        return render("enterprises/edit.html", ent=ent, values=as_dict(ent), errors={},
                      impact=impact(ent), schema=ENTERPRISE, **context)
    db.session.refresh(ent)
    return render("enterprises/edit.html", block="trusted", ent=ent, **context)


def _trusted(ent_id, tid) -> TrustedServer:
    return found(TrustedServer, tid, "trusted server", enterprise_id=ent_id)


@bp.post("/enterprises/<int:ent_id>/trusted")
def trusted_add(ent_id):
    ent = enterprise(ent_id)
    on_invalid(lambda errors: _trusted_block(ent, tvalues=request.form, terrors=errors))
    t, key = add_trusted(ent, request.form)
    flash("Trusted server added.", "success")
    return _trusted_block(ent, new_key=(t.address, key) if key else None)


@bp.route("/enterprises/<int:ent_id>/trusted/<int:tid>", methods=["GET", "POST"])
def trusted_edit(ent_id, tid):
    t = _trusted(ent_id, tid)
    ent = t.enterprise
    if request.method == "GET":
        return _trusted_block(ent, editing=tid, evalues=trusted_dict(t), eerrors={})
    on_invalid(lambda errors: _trusted_block(ent, editing=tid, evalues=request.form,
                                             eerrors=errors))
    key = update_trusted(t, request.form)
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
    t, key = add_trusted(enterprise(ent_id), json_object())
    return jsonify({**trusted_dict(t), "peer_key": key}), 201


@api.op("/<int:ent_id>/trusted-servers/<int:tid>", "PUT", body=TRUSTED_UPDATE,
        response=WITH_KEY, summary="Change a trusted server (fields left out keep their "
        "value); its peer key follows the address, or a new one is returned once as "
        "`peer_key`")
def api_trusted_update(ent_id, tid):
    t = _trusted(ent_id, tid)
    key = update_trusted(t, json_object(), partial=True)
    return jsonify({**trusted_dict(t), "peer_key": key})


@api.op("/<int:ent_id>/trusted-servers/<int:tid>/key", "POST", response=WITH_KEY,
        summary="Issue a new peer key for the server's address (replaces the old one)")
def api_trusted_key(ent_id, tid):
    t = _trusted(ent_id, tid)
    return jsonify({**trusted_dict(t), "peer_key": new_peer_key(t)})


@api.op("/<int:ent_id>/trusted-servers/<int:tid>", "DELETE", summary="Stop trusting a server",
        status=204)
def api_trusted_remove(ent_id, tid):
    remove_trusted(_trusted(ent_id, tid))
    return "", 204
