"""The Synchronization tab as JSON under /api/v1/sync."""

from flask import jsonify, request

from appliance import ldapdir, ldapform
from appliance.api import (
    BOOL,
    INT,
    NULL_STR,
    RUN,
    STR,
    ApiBlueprint,
    array,
    items,
    json_object,
    obj,
    paged,
)
from appliance.db import db, found
from appliance.host import host
from appliance.listing import query_params
from appliance.models import Account, Enterprise

from . import numbers, service
from .models import LDAP, PBX, Synchronizer

api = ApiBlueprint("sync_api", __name__, url_prefix="/sync", tag="sync")
LDAP_BODY, NODE_BODY = service.BODIES[LDAP], service.BODIES[PBX]
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
KIND = {"name": "kind", "in": "query", "required": False,
        "schema": {"type": "string", "enum": [LDAP, PBX]},
        "description": "Only the AD/LDAP synchronizers (ldap) or the PBX nodes (pbx)"}


def _ent(ent_id) -> Enterprise:
    return found(Enterprise, ent_id, "enterprise")


def _settings(s) -> dict:
    return {"mode": s.mode, "feature_profile": s.feature_profile,
            "dynamic_only": s.dynamic_only}


@api.op("/enterprises/<int:ent_id>", summary="The enterprise's synchronization type and PBX "
        "options (its synchronizers: /enterprises/{ent_id}/synchronizers)",
        response={**SETTINGS, "properties": {**SETTINGS["properties"], "integrated_mode": BOOL}})
def get_enterprise(ent_id):
    s = service.settings_of(_ent(ent_id))
    db.session.commit()
    return jsonify(**_settings(s), integrated_mode=service.integrated())


@api.op("/enterprises/<int:ent_id>", "PUT", body=service.SETTINGS,
        summary="Set the synchronization type (ldap or pbx) and the PBX options",
        response=SETTINGS)
def put_enterprise(ent_id):
    return jsonify(_settings(service.save_settings(_ent(ent_id), json_object())))


@api.op("/enterprises/<int:ent_id>/synchronizers", summary="The enterprise's synchronizers "
        "with their account counts (?kind=ldap|pbx, ?q=, ?sort=name|kind|platform|address, "
        "?dir=, ?page=, ?per_page=)",
        response=paged(obj(["id"], **SYNCHRONIZER["properties"], accounts=INT)),
        query=[KIND, *query_params(service.COLUMNS[None])])
def list_synchronizers(ent_id):
    kind = request.args.get("kind") if request.args.get("kind") in (LDAP, PBX) else None
    page = service.synchronizers(_ent(ent_id).id, request.args, kind, per_page=100,
                                 adjustable=True)
    return jsonify(page.json(lambda x: {**service.as_dict(x), "accounts":
                                        service.accounts_of(x)}))


def _create(ent_id, kind):
    syn = service.save(_ent(ent_id), kind, json_object())
    return jsonify(service.as_dict(syn)), 201


@api.op("/enterprises/<int:ent_id>/ldap", "POST", body=LDAP_BODY, status=201,
        summary="Add an AD/LDAP synchronizer", response=SYNCHRONIZER)
def add_ldap(ent_id):
    return _create(ent_id, LDAP)


@api.op("/enterprises/<int:ent_id>/pbx-nodes", "POST", body=NODE_BODY, status=201,
        summary="Add a PBX node", response=SYNCHRONIZER)
def add_node(ent_id):
    return _create(ent_id, PBX)


def _syn(syn_id, kind: str | None = None, what: str = "synchronizer") -> Synchronizer:
    return found(Synchronizer, syn_id, what, **({"kind": kind} if kind else {}))


@api.op("/synchronizers/<int:syn_id>", summary="One synchronizer with its last sync report "
        "and the skipped or failed entries", response={**SYNCHRONIZER, "properties": {
            **SYNCHRONIZER["properties"], "accounts": INT, "issues": array(obj(
                ["kind"], kind=STR, entry=NULL_STR, attribute=NULL_STR, reason=NULL_STR))}})
def get_one(syn_id):
    syn = _syn(syn_id)
    return jsonify({**service.as_dict(syn), "accounts": service.accounts_of(syn),
                    "issues": [{"kind": i.kind, "entry": i.entry, "attribute": i.attribute,
                                "reason": i.reason} for i in service.issues(syn)]})


def _update(syn: Synchronizer):
    changes = service.BODIES[syn.kind].optional().validate(json_object())
    return jsonify(service.as_dict(service.update(syn, changes)))


@api.op("/ldap/<int:syn_id>", "PUT", body=LDAP_BODY.optional(), response=SYNCHRONIZER,
        summary="Change an AD/LDAP synchronizer (fields left out keep their value; the "
                "password too)")
def put_ldap(syn_id):
    return _update(_syn(syn_id, LDAP, "AD/LDAP synchronizer"))


@api.op("/pbx-nodes/<int:syn_id>", "PUT", body=NODE_BODY.optional(), response=SYNCHRONIZER,
        summary="Change a PBX node (fields left out keep their value)")
def put_node(syn_id):
    return _update(_syn(syn_id, PBX, "PBX node"))


@api.op("/synchronizers/<int:syn_id>", "PUT", response=SYNCHRONIZER, body={"anyOf": [
            {"$ref": f"#/components/schemas/{LDAP_BODY.optional().name}"},
            {"$ref": f"#/components/schemas/{NODE_BODY.optional().name}"}]},
        summary="Change a synchronizer of either kind: the fields of PUT /ldap/{syn_id} or "
                "of PUT /pbx-nodes/{syn_id}, as its kind is (fields left out keep their value)")
def put_one(syn_id):
    return _update(_syn(syn_id))


@api.op("/synchronizers/<int:syn_id>", "DELETE",
        summary="Delete a synchronizer and every account it created; returns how many",
        response=obj(["accounts_deleted"], accounts_deleted=INT), errors=(409,))
def delete_one(syn_id):
    return jsonify(accounts_deleted=service.delete(_syn(syn_id)))


@api.op("/synchronizers/<int:syn_id>/sync", "POST", status=202,
        summary="Sync Now (?confirm=1 after 'needs attention': allows the removals); returns "
                "the job run to follow at /api/v1/jobs/{id} (409 naming the run while one is "
                "active)", response=RUN, errors=(409,),
        query=[{"name": "confirm", "in": "query", "required": False,
                "schema": {"type": "string", "enum": ["0", "1"]},
                "description": "1: allow the removals a 'needs attention' sync held back"}])
def sync_one(syn_id):
    run, created = service.sync_now(_syn(syn_id), confirmed=request.args.get("confirm") == "1")
    if not created:
        raise host().jobs.already_running(run)
    return jsonify(run_id=run.id, created=True, state=run.state), 202


@api.op("/test-ldap", "POST", body=service.TEST, summary="Test connection: the first entries "
        "as they would be synchronized, or the precise reason it failed", response=ENTRIES,
        errors=(502,))
def test_ldap():
    clean = service.test_values(json_object())
    try:
        entries = ldapdir.test_connection(ldapform.settings(clean, clean.get("password") or ""),
                                          service.mapping_of(clean))
    except ldapdir.LdapError as exc:
        return jsonify(error=exc.kind, message=exc.message), 502
    return jsonify(entries=entries)


# --- an account's numbers and dynamic statuses (rule 6), under /api/v1/accounts -----------

accounts_api = ApiBlueprint("sync_accounts_api", __name__, url_prefix="/accounts",
                            tag="accounts")
NUMBER = obj(["number", "kind", "origin", "on_pbx"], number=STR, kind=STR,
             origin={"type": "string", "enum": ["pbx", "manual"]}, on_pbx=BOOL,
             statuses=array(STR), kept_because={
                 **NULL_STR, "description": "Why a number the PBX does not have stays "
                                            "(rule 6); null while the PBX has it"})
STATUS = obj(["name", "make_call_from"], name=STR, make_call_from=STR)


def _account(account_id: int) -> Account:
    return found(Account, account_id, "account")


@accounts_api.op("/<int:account_id>/numbers", summary="The account's phone numbers: from "
                 "the PBX or added manually, the dynamic statuses pointing to each, and why "
                 "one the PBX deleted stays (rule 6)", response=items(NUMBER))
def list_numbers(account_id):
    return jsonify(items=numbers.listing(_account(account_id)))


@accounts_api.op("/<int:account_id>/numbers", "POST", body=numbers.MANUAL, status=201,
                 response=NUMBER, errors=(409,), summary="Add a number manually (it stays "
                 "whatever the PBX says; 409 if the account has it)")
def add_number(account_id):
    return jsonify(numbers.add(_account(account_id), json_object())), 201


@accounts_api.op("/<int:account_id>/numbers/<number>", "DELETE", status=204, errors=(409,),
                 summary="Remove a number the PBX does not have (409 while the PBX has it or "
                 "a dynamic status points to it)")
def remove_number(account_id, number):
    numbers.remove(_account(account_id), number)
    return "", 204


@accounts_api.op("/<int:account_id>/statuses", summary="The account's dynamic statuses and the "
                 "number each one's \"Make Call from\" points to", response=items(STATUS))
def list_statuses(account_id):
    return jsonify(items=numbers.statuses(_account(account_id)))


@accounts_api.op("/<int:account_id>/statuses/<name>", "PUT", body=numbers.STATUS,
                 response=STATUS, summary="Create a dynamic status or point its \"Make Call "
                 "from\" at another of the account's numbers, as the desktop client does")
def put_status(account_id, name):
    return jsonify(numbers.set_status(_account(account_id), name, json_object()))


@accounts_api.op("/<int:account_id>/statuses/<name>", "DELETE", status=204,
                 summary="Delete a dynamic status")
def delete_status(account_id, name):
    numbers.remove_status(_account(account_id), name)
    return "", 204
