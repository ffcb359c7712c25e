"""The Federation tab as JSON under /api/v1/federation."""

from flask import jsonify, request

from appliance.api import (
    BOOL,
    ID,
    INT,
    NULL_STR,
    STR,
    ApiBlueprint,
    array,
    items,
    json_object,
    obj,
    paged,
)
from appliance.db import db, found
from appliance.listing import query_params
from appliance.validation import Field, Invalid, Schema, max_length
from appliance.xmpp import service as xmpp

from . import service, table
from .models import Server
from .table import Row

api = ApiBlueprint("federation_api", __name__, url_prefix="/federation", tag="federation")
SERVER = obj(["id", "domain"], id=INT, domain=STR, nextplane=BOOL, server=NULL_STR,
             port={"type": ["integer", "null"]}, origin=NULL_STR)
SERVER_BODY = obj(["domain"], id=ID, domain=STR, nextplane=BOOL,
                  server=STR, port={"type": "integer", "minimum": 1, "maximum": 65535})
SWITCHED = obj(["enabled", "message"], enabled=BOOL, message=STR)
SETTINGS = obj(["enabled"], enabled=BOOL, **{
    n: {"type": ["integer", "null"]} if f.type == "integer" else NULL_STR
    for n, f in xmpp.SETTINGS.fields.items()})


def _server(s: Server) -> dict:
    return {"id": s.id, "domain": s.domain, "nextplane": s.nextplane,
            "server": s.server or None, "port": s.port, "origin": s.origin or None}


def _settings(s) -> dict:
    return {k: getattr(s, k) for k in xmpp.SETTINGS.fields} | {
        "enabled": service.settings().enabled}


@api.op("", summary="Federation state and the XMPP service panel (the federated servers: "
        "/federation/servers)", response=obj(
            ["enabled", "service"], enabled=BOOL, service=obj(
                ["installed", "running"], installed=BOOL, running=BOOL, version=NULL_STR,
                s2s_port=INT, c2s_port=INT, domain=STR, connections=array({}), enabled=BOOL,
                locked={"type": "object", "description": "Settings fixed by the deployment "
                        "(APPLIANCE_XMPP_C2S_PORT, _S2S_PORT, _INTERFACE): field -> "
                        "{value, by}; the saved setting waits unused"},
                supervised={"type": ["object", "null"], "description": "While this process "
                            "runs the service: state, pid, restarts, last_exit, next_try_in"})))
def state():
    st = service.status()
    return jsonify(enabled=st["enabled"], service=st)


@api.op("/enable", "POST", summary="Enable Federation (configures the XMPP service)",
        response=SWITCHED)
def enable():
    return jsonify(enabled=True, message=service.set_enabled(True))


@api.op("/disable", "POST", summary="Disable Federation (stops all server-to-server traffic)",
        response=SWITCHED)
def disable():
    return jsonify(enabled=False, message=service.set_enabled(False))


@api.op("/settings", summary="The XMPP service settings", response=SETTINGS)
def get_settings():
    s = xmpp.settings()
    db.session.commit()
    return jsonify(_settings(s))


@api.op("/settings", "PUT", body=xmpp.SETTINGS, summary="Change the XMPP service settings "
        "and apply them", response={**SETTINGS, "properties": {
            **SETTINGS["properties"], "message": STR}})
def put_settings():
    s = xmpp.save_settings(json_object())
    return jsonify({**_settings(s), "message": xmpp.apply(s)})


@api.op("/servers", summary="The Federated Servers table (?q= searches the domains, "
        "?sort=domain|nextplane|server|port, ?dir=, ?page=, ?per_page=)",
        response=paged(SERVER), query=query_params(table.COLUMNS))
def list_servers():
    return jsonify(table.servers_page(request.args, per_page=100, adjustable=True)
                   .json(_server))


def _rows(items) -> list[Row]:
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise Invalid({"servers": ("array", "servers must be a list of objects")})
    return [Row(str(n), i.get("id") if isinstance(i.get("id"), int) else None,
                str(i.get("domain") or "").strip(), bool(i.get("nextplane")),
                str(i.get("server") or "").strip(),
                "" if i.get("port") in (None, "") else str(i.get("port")))
            for n, i in enumerate(items)]


@api.op("/servers", "PUT", summary="Apply: replace the whole table with {\"servers\": [...]} "
        "(rows with an id are kept and changed, the others added, missing ones deleted); "
        "every row is validated and nothing is saved when one is wrong (422 naming "
        "servers[<index>].<column>)",
        body=obj(["servers"], servers=array(SERVER_BODY)), response=items(SERVER, message=STR))
def put_servers():
    message = table.save_rows(_rows(json_object().get("servers")))
    return jsonify(items=[_server(s) for s in service.servers()], message=message)


@api.op("/servers", "POST", body=table.ROW_API, status=201, summary="Add one server",
        response={**SERVER, "properties": {**SERVER["properties"], "message": STR}})
def add_server():
    added, message = table.add(json_object())
    return jsonify({**_server(added), "message": message}), 201


@api.op("/servers/<int:sid>", "DELETE", summary="Delete a server from the table",
        response=obj(["message"], message=STR))
def delete_server(sid):
    return jsonify(message=table.delete(found(Server, sid, "federated server")))


@api.op("/servers/<int:sid>/test", "POST", summary="Test: can the embedded XMPP service reach "
        "this domain (XMPP ping)? ok, or the reason (policy, certificate, not_found, timeout)",
        response=obj(["domain", "ok"], domain=STR, ok=BOOL, reason=NULL_STR, message=NULL_STR,
                     directions={"type": "string", "description": "Each direction in words: "
                                 "our stream out, theirs in, and how each authenticated"},
                     links=array(obj(["direction", "authenticated"], direction=STR,
                                     authenticated=BOOL, by=NULL_STR, tls=NULL_STR,
                                     certificate=NULL_STR))))
def test_server(sid):
    srv = found(Server, sid, "federated server")
    return jsonify(domain=srv.domain, **service.test_domain(srv.domain))


LINK = Schema("FederatedLink", Field("local", "Local domain", (max_length(253),)),
              Field("remote", "Remote domain", (max_length(253),)))


@api.op("/links/disconnect", "POST", body=LINK, response=obj(["message"], message=STR),
        errors=(404,),
        summary="Disconnect the server-to-server link between a local and a remote domain "
                "(404 when no such link is up)")
def disconnect():
    data = LINK.validate(json_object())
    return jsonify(message=service.disconnect(data["local"], data["remote"]))
