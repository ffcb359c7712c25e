"""Core: API tokens, listed with their owner and use, created (shown once) and revoked."""

from flask import Blueprint, abort, flash, g, jsonify, request

from appliance import api_tokens, hookimpl
from appliance.api import ApiBlueprint, body, error, invalid
from appliance.db import db, utcnow
from appliance.models import ApiToken
from appliance.ui import Tab, render
from appliance.validation import Invalid

bp = Blueprint("tokens", __name__)
api = ApiBlueprint("tokens_api", __name__, url_prefix="/tokens", tag="tokens")

TOKEN_RESPONSE = {"type": "object", "properties": api_tokens.TOKEN_FIELDS}
NEW_TOKEN_RESPONSE = {"type": "object", "properties": {
    **api_tokens.TOKEN_FIELDS,
    "token": {"type": "string", "description": "The token itself, returned only this once"}}}


def create(data) -> tuple[ApiToken, str]:
    """Validate and issue a token for the current administrator."""
    data = api_tokens.TOKEN.validate(data)
    row, token = api_tokens.issue_token(g.user, data["name"], data["expires_days"])
    api_tokens.audit_token(row)
    return row, token


# --- pages ---------------------------------------------------------------------------------

def _page(status=200, **context):
    context = {"values": {}, "errors": {}, "new_token": None, **context}
    return render("tokens/index.html", block="tokens", tokens=api_tokens.tokens(), now=utcnow(),
                  **context), status


@bp.get("/tokens")
def index():
    return _page()


@bp.post("/tokens")
def add():
    try:
        row, token = create(request.form)
    except Invalid as exc:
        db.session.rollback()
        return _page(422, values=request.form, errors=exc.messages())
    return _page(new_token=(row.label, token))


@bp.post("/tokens/<int:token_id>/revoke")
def revoke(token_id):
    row = db.session.get(ApiToken, token_id) or abort(404, "No such API token")
    name = row.label
    api_tokens.revoke_token(row)
    flash(f"API token {name} revoked.", "success")
    return _page()


# --- API -----------------------------------------------------------------------------------

@api.op("", summary="Every API token (never the token itself), newest first",
        response={"type": "array", "items": TOKEN_RESPONSE})
def api_list():
    return jsonify([api_tokens.token_dict(t) for t in api_tokens.tokens()])


@api.op("", "POST", body=api_tokens.TOKEN, status=201, response=NEW_TOKEN_RESPONSE,
        summary="Create an API token of the caller; the answer carries it (`token`) once")
def api_create():
    try:
        row, token = create(body(api_tokens.TOKEN))
    except Invalid as exc:
        db.session.rollback()
        return invalid(exc)
    return jsonify({**api_tokens.token_dict(row), "token": token}), 201


@api.op("/<int:token_id>", "DELETE", status=204,
        summary="Revoke an API token: calls sending it answer 401 from now on")
def api_revoke(token_id):
    row = db.session.get(ApiToken, token_id)
    if row is None:
        return error(404, "not_found", "No such API token")
    api_tokens.revoke_token(row)
    return "", 204


@hookimpl
def appliance_metadata():
    return {"title": "API tokens", "description": "API tokens: list, create, revoke."}


@hookimpl
def appliance_blueprints():
    return [bp]


@hookimpl
def appliance_api_blueprints():
    return [api]


@hookimpl
def appliance_nav_tabs():
    return [Tab("API tokens", "tokens.index", order=940)]
