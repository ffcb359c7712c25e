"""Everything on the Peering tab, as JSON under /api/v1/peering."""

from flask import jsonify, request

from appliance import ldapdir, ldapform
from appliance.api import (
    BOOL,
    INT,
    NULL_STR,
    RUN,
    STR,
    TIME,
    ApiBlueprint,
    array,
    items,
    json_object,
    obj,
    paged,
)
from appliance.auth import username
from appliance.db import db, found
from appliance.host import host
from appliance.listing import query_params
from appliance.models import Enterprise
from appliance.peers import PeerError
from appliance.validation import Field, Schema, host_or_ip, int_range, max_length

from . import service
from .models import Peer

api = ApiBlueprint("peering_api", __name__, url_prefix="/peering", tag="peering")

ASK = Schema(
    "PeerEnterprisesQuery",
    Field("hostname", "Hostname", (host_or_ip(),)),
    Field("port", "HTTPS port", (int_range(1, 65535),), required=False, type="integer"),
    Field("key", "Peer key", (max_length(128),), secret=True),
)
PEER = {**obj(["id", "enterprise_id", "kind", "description"], id=INT, enterprise_id=INT,
               kind=STR, type=STR, description=STR, server=NULL_STR, version=NULL_STR,
               status=NULL_STR, status_message=NULL_STR, checked_at=TIME,
               schedule={"type": ["object", "null"]}, source=STR, next_sync_at=TIME,
               warning=NULL_STR, hostname=NULL_STR, port={"type": ["integer", "null"]},
               peer_eid=NULL_STR, key_set=BOOL, password_set=BOOL,
               ldap={"type": "object"}, full_days=INT, full_sync_at=TIME,
               changes_offered=BOOL),
        "description": "A peer server; secrets are never returned."}
SAVED = {**PEER, "properties": {**PEER["properties"], "notes": array(STR)}}
ENTRIES = obj(["entries"], entries=array({"type": "object"}))
FLAG = {"type": "string", "enum": ["0", "1"]}




@api.op("/enterprises/<int:ent_id>/peers", summary="Peer servers of an enterprise "
        "(?sort=description|server|type|version|status, ?dir=, ?page=, ?per_page=)",
        response=paged(PEER), query=query_params(service.COLUMNS))
def list_peers(ent_id):
    found(Enterprise, ent_id, "enterprise")
    return jsonify(service.peers(ent_id, request.args, per_page=100, adjustable=True)
                   .json(service.as_dict))


@api.op("/enterprises/<int:ent_id>/peers", "POST", body=service.API_SCHEMA, status=201,
        summary="Add a peer server (kind mcs: hostname, port, peer_eid, dialing_prefix, key; "
                "kind external: the LDAP fields)", response=SAVED)
def create_peer(ent_id):
    peer, notes = service.save(found(Enterprise, ent_id, "enterprise"), json_object())
    return jsonify({**service.as_dict(peer), "notes": notes}), 201


def _peer(peer_id) -> Peer:
    return found(Peer, peer_id, "peer")


@api.op("/peers/<int:peer_id>", summary="One peer server", response=PEER)
def get_peer(peer_id):
    return jsonify(service.as_dict(_peer(peer_id)))


@api.op("/peers/<int:peer_id>", "PUT", body=service.API_SCHEMA, response=SAVED,
        summary="Change a peer server (fields left out keep their value; secrets left out "
                "are kept)")
def update_peer(peer_id):
    peer = _peer(peer_id)
    data = {**service.form_values(peer), **json_object()}
    peer, notes = service.save(db.session.get(Enterprise, peer.enterprise_id), data, peer)
    return jsonify({**service.as_dict(peer), "notes": notes})


@api.op("/peers/<int:peer_id>", "DELETE", summary="Delete a peer server with its synchronizer, "
        "schedule and imported contacts; returns what went",
        response=obj(["deleted"], deleted={"type": "object"}), errors=(409,))
def delete_peer(peer_id):
    return jsonify(deleted=service.delete(_peer(peer_id)))


@api.op("/peers/<int:peer_id>/sync", "POST", status=202,
        summary="Sync Now (?allow_drop=1 accepts a drop beyond the safety threshold; "
                "?full=1 reads every contact, not only what changed); returns the job run "
                "to follow at /api/v1/jobs/{id} (409 naming the run while one is active)",
        response=RUN, errors=(409,),
        query=[{"name": "allow_drop", "in": "query", "required": False, "schema": FLAG,
                "description": "1: accept a drop beyond the safety threshold"},
               {"name": "full", "in": "query", "required": False, "schema": FLAG,
                "description": "1: read every contact of the peer"}])
def sync_peer(peer_id):
    peer = _peer(peer_id)
    run = host().jobs.start_run(
        service.KIND, peer.source, {"allow_drop": request.args.get("allow_drop") == "1",
                                    "full": request.args.get("full") == "1"},
        label=f"Sync contacts from {peer.description}", triggered_by=username())
    return jsonify(run_id=run.id, created=True, state=run.state), 202


@api.op("/enterprises/<int:ent_id>/check", "POST", status=202, errors=(409,),
        summary="Check the status of the enterprise's MiCollab peers now (409 naming the "
                "run while one is active)", response=RUN)
def check_peers(ent_id):
    ent = found(Enterprise, ent_id, "enterprise")
    run = host().jobs.start_run(
        service.STATUS_KIND, f"peering-status:{ent.id}", label=f"Peer status of {ent.eid}",
        triggered_by=username())
    return jsonify(run_id=run.id, created=True, state=run.state), 202


@api.op("/peer-enterprises", "POST", body=ASK,
        summary="Select Enterprise: the enterprises a MiCollab peer offers this appliance",
        response=items(obj(["eid"], eid=STR, name=STR, upn_logins=BOOL)), errors=(502,))
def peer_enterprises():
    q = ASK.validate(json_object())
    try:
        items = service.peer_enterprises(q["hostname"], q.get("port"), q["key"])
    except PeerError as exc:
        return jsonify(error=exc.kind, message=exc.message), 502
    return jsonify(items=items)


@api.op("/test-ldap", "POST", body=ldapform.SCHEMA,
        summary="Test connection to an external IM server's AD/LDAP directory: the first "
                "entries as they would be imported, or why it failed", response=ENTRIES,
        errors=(502,))
def test_ldap():
    clean = ldapform.SCHEMA.validate(json_object())
    mapping = ldapdir.MAPPING_PRESETS[clean["preset"]]
    try:
        entries = ldapdir.test_connection(
            ldapform.settings(clean, clean.get("password") or ""), mapping)
    except ldapdir.LdapError as exc:
        return jsonify(error=exc.kind, message=exc.message), 502
    return jsonify(entries=entries)
