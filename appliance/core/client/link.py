"""The XMPP service's link to the appliance, under /xmpp/v1: sign-ins, directories and
signals. Only the local XMPP service may call it: from a loopback address, with the shared
secret (service.secret()) as its bearer token. Not for administrators: no session, no CSRF,
not in the OpenAPI document."""

import hmac
import ipaddress

from flask import Blueprint, abort, jsonify, request

from appliance.listing import number
from appliance.validation import MAX_ID, Invalid
from appliance.xmpp import service as xmpp

from . import service

PREFIX = "/xmpp/v1"
bp = Blueprint("client_link", __name__, url_prefix=PREFIX)


def guard():
    """Let only the local XMPP service in: a loopback address and the shared secret."""
    try:
        loopback = ipaddress.ip_address(request.remote_addr or "").is_loopback
    except ValueError:
        loopback = False
    token = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    if not loopback or not hmac.compare_digest(token.encode(), xmpp.secret().encode()):
        return jsonify(error="forbidden", message="Only the local XMPP service may call this"), 403
    return None


bp.authenticate = guard  # the host calls it before each request instead of a login


@bp.errorhandler(400)
def bad_request(exc):
    return jsonify(error="bad_request", message=exc.description), 400


@bp.errorhandler(Invalid)
def invalid(exc: Invalid):
    return jsonify(exc.as_json()), 422


@bp.post("/auth")
def auth():
    """{"user", "host", "password", "ip"} -> {"result": ok | wrong | disabled | unavailable
    | locked}; `ip`, the client's address, is optional."""
    data = request.get_json(silent=True)
    if not isinstance(data, dict) or not all(
            isinstance(data.get(k), str) and len(data[k]) <= 1024
            for k in ("user", "host", "password")) or not isinstance(data.get("ip", ""), str):
        abort(400, "Send user, host and password as strings of at most 1024 characters")
    return jsonify(result=service.check(data["host"], data["user"], data["password"],
                                        data.get("ip", "")[:64]))


@bp.post("/sessions")
def sessions():
    """Who is signed in now: {"hosts": {domain: [{"user", "resource", "since"}]}}."""
    service.record_sessions(request.get_json(silent=True))
    return "", 204


@bp.get("/events")
def events():
    return jsonify(service.events(number(request.args, "after", 0, 0, MAX_ID)))


@bp.get("/hosts/<domain>/directory")
def directory(domain):
    ent = service.enterprise_of(domain)
    if ent is None:
        return jsonify(error="not_found", message=f"No enterprise has the IM domain {domain}"), 404
    return jsonify(service.directory(ent))
