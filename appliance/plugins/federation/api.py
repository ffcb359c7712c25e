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
    error,
    invalid,
    items,
    json_object,
    obj,
)
from appliance.db import db
from appliance.validation import Invalid

from . import service
from .models import Server
from .service import Row

api = ApiBlueprint("federation_api", __name__, url_prefix="/federation", tag="federation")
SERVER = obj(["id", "domain"], id=INT, domain=STR, nextplane=BOOL, server=NULL_STR,
             port={"type": ["integer", "null"]}, origin=NULL_STR)
SERVER_BODY = obj(["domain"], id=ID, domain=STR, nextplane=BOOL,
                  server=STR, port={"type": "integer", "minimum": 1, "maximum": 65535})
SWITCHED = obj(["enabled", "message"], enabled=BOOL, message=STR)
SETTINGS = obj(["enabled"], enabled=BOOL, **{
    n: {"type": ["integer", "null"]} if f.type == "integer" else NULL_STR
    for n, f in service.SETTINGS.fields.items()})



def _server(s: Server) -> dict:
    return {"id": s.id, "domain": s.domain, "nextplane": s.nextplane,
            "server": s.server or None, "port": s.port, "origin": s.origin or None}


def _settings(s) -> dict:
    return {k: getattr(s, k) for k in service.SETTINGS.fields} | {"enabled": s.enabled}


@api.op("", summary="Federation state, the XMPP service panel and the federated servers",
        response=obj(["enabled", "service", "servers"], enabled=BOOL, service=obj(
            ["installed", "running"], installed=BOOL, running=BOOL, version=NULL_STR,
            s2s_port=INT, domain=STR, connections=array({}), enabled=BOOL),
            servers=array(SERVER)))
def state():
    st = service.status()
    return jsonify(enabled=st["enabled"], service=st,
                   servers=[_server(s) for s in service.servers()])


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
    s = service.settings()
    db.session.commit()
    return jsonify(_settings(s))


@api.op("/settings", "PUT", body=service.SETTINGS, summary="Change the XMPP service settings "
        "and apply them", response={**SETTINGS, "properties": {
            **SETTINGS["properties"], "message": STR}})
def put_settings():
    try:
        s = service.save_settings(json_object())
    except Invalid as exc:
        db.session.rollback()
        return invalid(exc)
    return jsonify({**_settings(s), "message": service.apply(s)})


@api.op("/servers", summary="The Federated Servers table", response=items(SERVER))
def list_servers():
    return jsonify(items=[_server(s) for s in service.servers()])


def _rows(items) -> list[Row]:
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise Invalid({"servers": ("array", "servers must be a list of objects")})
    return [Row(str(n), i.get("id") if isinstance(i.get("id"), int) else None,
                str(i.get("domain") or "").strip(), bool(i.get("nextplane")),
                str(i.get("server") or "").strip(),
                "" if i.get("port") in (None, "") else str(i.get("port")))
            for n, i in enumerate(items)]


def _row_errors(rows: list[Row]):
    fields = [{"field": f"servers[{r.key}].{f}", "rule": "row", "message": m}
              for r in rows for f, m in r.errors.items()]
    return jsonify(error="invalid", message="Nothing was saved: fix the listed rows",
                   fields=fields), 422


@api.op("/servers", "PUT", summary="Apply: replace the whole table with {\"servers\": [...]} "
        "(rows with an id are kept and changed, the others added, missing ones deleted); "
        "every row is validated and nothing is saved when one is wrong",
        body=obj(["servers"], servers=array(SERVER_BODY)), response=items(SERVER, message=STR))
def put_servers():
    try:
        rows = _rows(json_object().get("servers"))
    except Invalid as exc:
        return invalid(exc)
    try:
        message = service.save_rows(rows)
    except Invalid:
        db.session.rollback()
        return _row_errors(rows)
    return jsonify(items=[_server(s) for s in service.servers()], message=message)


@api.op("/servers", "POST", body=service.ROW_API, status=201, summary="Add one server",
        response={**SERVER, "properties": {**SERVER["properties"], "message": STR}})
def add_server():
    body = request.get_json(silent=True) or {}
    rows = service.saved_rows() + _rows([body])
    rows[-1].key = "new"
    try:
        message = service.save_rows(rows)
    except Invalid:
        db.session.rollback()
        return _row_errors([r for r in rows if r.errors])
    added = db.session.query(Server).filter_by(domain=rows[-1].domain.lower().rstrip(".")).one()
    return jsonify({**_server(added), "message": message}), 201


@api.op("/servers/<int:sid>", "DELETE", summary="Delete a server from the table",
        response=obj(["message"], message=STR))
def delete_server(sid):
    rows = service.saved_rows()
    if not any(r.id == sid for r in rows):
        return error(404, "not_found", "No such federated server")
    return jsonify(message=service.save_rows([r for r in rows if r.id != sid]))


@api.op("/servers/<int:sid>/test", "POST", summary="Test: can the embedded XMPP service reach "
        "this domain (XMPP ping)? ok, or the reason (policy, certificate, not_found, timeout)",
        response=obj(["domain", "ok"], domain=STR, ok=BOOL, reason=NULL_STR, message=NULL_STR))
def test_server(sid):
    srv = db.session.get(Server, sid)
    if srv is None:
        return error(404, "not_found", "No such federated server")
    return jsonify(domain=srv.domain, **service.test_domain(srv.domain))
