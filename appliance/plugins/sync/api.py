"""The Synchronization tab as JSON under /api/v1/sync."""

from flask import jsonify, request
from sqlalchemy import select

from appliance import ldapdir, ldapform
from appliance.api import (
    BOOL,
    INT,
    NULL_STR,
    RUN,
    STR,
    ApiBlueprint,
    array,
    error,
    invalid,
    json_object,
    obj,
)
from appliance.auth import username
from appliance.db import db
from appliance.host import host
from appliance.models import Enterprise
from appliance.validation import Invalid, Schema

from . import service
from .models import LDAP, PBX, Synchronizer

api = ApiBlueprint("sync_api", __name__, url_prefix="/sync", tag="sync")
LDAP_BODY = Schema("LdapSynchronizer", *service.COMMON.fields.values(),
                   *ldapform.FIELDS, *service.MAPPING.fields.values())
NODE_BODY = Schema("PbxNodeSynchronizer", *service.COMMON.fields.values(),
                   *service.NODE.fields.values())
SYNCHRONIZER = obj(["id", "enterprise_id", "kind", "name"], id=INT, enterprise_id=INT, kind=STR,
                   name=STR, max_drop={"type": ["integer", "null"]},
                   schedule={"type": ["object", "null"]}, needs_attention=BOOL,
                   attention={"type": ["object", "string", "null"]},
                   last_sync={"type": ["object", "string", "null"]}, source=STR,
                   ldap={"type": "object"}, password_set=BOOL, platform=NULL_STR,
                   address=NULL_STR, connector=NULL_STR,
                   connector_settings={"type": ["object", "null"]})
SETTINGS = obj(["mode"], mode=STR, feature_profile=NULL_STR, dynamic_only=BOOL)
ENTRIES = obj(["entries"], entries=array({"type": "object"}))



def _ent(ent_id):
    return db.session.get(Enterprise, ent_id)


@api.op("/enterprises/<int:ent_id>", summary="The enterprise's synchronization type, PBX "
        "options and synchronizers", response={**SETTINGS, "properties": {
            **SETTINGS["properties"], "integrated_mode": BOOL, "synchronizers": array(obj(
                ["id"], **SYNCHRONIZER["properties"], accounts=INT))}})
def get_enterprise(ent_id):
    ent = _ent(ent_id)
    if ent is None:
        return error(404, "not_found", "No such enterprise")
    s = service.settings_of(ent)
    db.session.commit()
    syns = db.session.scalars(select(Synchronizer).where(Synchronizer.enterprise_id == ent.id)
                              .order_by(Synchronizer.name))
    return jsonify(mode=s.mode, feature_profile=s.feature_profile, dynamic_only=s.dynamic_only,
                   integrated_mode=service.integrated(),
                   synchronizers=[{**service.as_dict(x), "accounts": service.accounts_of(x)}
                                  for x in syns])


@api.op("/enterprises/<int:ent_id>", "PUT", body=service.SETTINGS,
        summary="Set the synchronization type (ldap or pbx) and the PBX options",
        response=SETTINGS)
def put_enterprise(ent_id):
    ent = _ent(ent_id)
    if ent is None:
        return error(404, "not_found", "No such enterprise")
    try:
        s = service.save_settings(ent, json_object())
    except Invalid as exc:
        db.session.rollback()
        return invalid(exc)
    return jsonify(mode=s.mode, feature_profile=s.feature_profile, dynamic_only=s.dynamic_only)


def _create(ent_id, kind):
    ent = _ent(ent_id)
    if ent is None:
        return error(404, "not_found", "No such enterprise")
    try:
        syn = service.save(ent, kind, json_object())
    except Invalid as exc:
        db.session.rollback()
        return invalid(exc)
    return jsonify(service.as_dict(syn)), 201


@api.op("/enterprises/<int:ent_id>/ldap", "POST", body=LDAP_BODY, status=201,
        summary="Add an AD/LDAP synchronizer", response=SYNCHRONIZER)
def add_ldap(ent_id):
    return _create(ent_id, LDAP)


@api.op("/enterprises/<int:ent_id>/pbx-nodes", "POST", body=NODE_BODY, status=201,
        summary="Add a PBX node", response=SYNCHRONIZER)
def add_node(ent_id):
    return _create(ent_id, PBX)


@api.op("/synchronizers/<int:syn_id>", summary="One synchronizer with its last sync report "
        "and the skipped or failed entries", response={**SYNCHRONIZER, "properties": {
            **SYNCHRONIZER["properties"], "accounts": INT, "issues": array(obj(
                ["kind"], kind=STR, entry=NULL_STR, attribute=NULL_STR, reason=NULL_STR))}})
def get_one(syn_id):
    syn = db.session.get(Synchronizer, syn_id)
    if syn is None:
        return error(404, "not_found", "No such synchronizer")
    return jsonify({**service.as_dict(syn), "accounts": service.accounts_of(syn),
                    "issues": [{"kind": i.kind, "entry": i.entry, "attribute": i.attribute,
                                "reason": i.reason} for i in service.issues(syn)]})


@api.op("/synchronizers/<int:syn_id>", "PUT", body=LDAP_BODY,
        summary="Change a synchronizer (fields left out keep their value; the password too)",
        response=SYNCHRONIZER)
def put_one(syn_id):
    syn = db.session.get(Synchronizer, syn_id)
    if syn is None:
        return error(404, "not_found", "No such synchronizer")
    try:
        service.save(db.session.get(Enterprise, syn.enterprise_id), syn.kind,
                     {**service.form_values(syn), **json_object()}, syn)
    except Invalid as exc:
        db.session.rollback()
        return invalid(exc)
    return jsonify(service.as_dict(syn))


@api.op("/synchronizers/<int:syn_id>", "DELETE",
        summary="Delete a synchronizer and every account it created; returns how many",
        response=obj(["accounts_deleted"], accounts_deleted=INT), errors=(409,))
def delete_one(syn_id):
    syn = db.session.get(Synchronizer, syn_id)
    if syn is None:
        return error(404, "not_found", "No such synchronizer")
    try:
        return jsonify(accounts_deleted=service.delete(syn))
    except service.Busy as exc:
        return error(409, "busy", str(exc))


@api.op("/synchronizers/<int:syn_id>/sync", "POST", status=202,
        summary="Sync Now (?confirm=1 after 'needs attention': allows the removals); returns "
                "the job run to follow at /api/v1/jobs/{id}", response=RUN,
        query=[{"name": "confirm", "in": "query", "required": False,
                "schema": {"type": "string", "enum": ["0", "1"]},
                "description": "1: allow the removals a 'needs attention' sync held back"}])
def sync_one(syn_id):
    syn = db.session.get(Synchronizer, syn_id)
    if syn is None:
        return error(404, "not_found", "No such synchronizer")
    confirmed = request.args.get("confirm") == "1"
    if confirmed:
        service.confirm(syn)
    run, created = host().jobs.submit(
        service.KIND, syn.source, {"allow_drop": confirmed}, label=f"Synchronize {syn.name}",
        triggered_by=username())
    return jsonify(run_id=run.id, created=created, state=run.state), 202


@api.op("/test-ldap", "POST", body=LDAP_BODY, summary="Test connection: the first entries as "
        "they would be synchronized, or the precise reason it failed", response=ENTRIES,
        errors=(502,))
def test_ldap():
    try:
        data = json_object()
        clean = ldapform.SCHEMA.validate(data)
        clean["mapping"] = {k[4:]: v for k, v in service.MAPPING.validate(data).items() if v}
    except Invalid as exc:
        return invalid(exc)
    try:
        entries = ldapdir.test_connection(ldapform.settings(clean, clean.get("password") or ""),
                                          service.mapping_of(clean))
    except ldapdir.LdapError as exc:
        return jsonify(error=exc.kind, message=exc.message), 502
    return jsonify(entries=entries)
