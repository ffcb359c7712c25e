"""Core: API tokens, listed with their owner and use, created (shown once) and revoked."""

from flask import Blueprint, flash, g, jsonify, request

from appliance import api_tokens
from appliance.api import ApiBlueprint, body, paged
from appliance.db import found, utcnow
from appliance.listing import query_params
from appliance.models import ApiToken
from appliance.plugins import declare
from appliance.ui import Tab, on_invalid, render

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


def revoke_by_id(token_id: int) -> str:
    """Revoke a token; return its name."""
    row = found(ApiToken, token_id, "API token")
    name = row.label
    api_tokens.revoke_token(row)
    return name


# --- pages ---------------------------------------------------------------------------------

def _page(**context):
    context = {"values": {}, "errors": {}, "new_token": None, **context}
    return render("tokens/index.html", block="tokens", tokens=api_tokens.tokens(), now=utcnow(),
                  schema=api_tokens.TOKEN, **context)


@bp.get("/tokens")
def index():
    return _page()


@bp.post("/tokens")
def add():
    on_invalid(lambda errors: _page(values=request.form, errors=errors))
    row, token = create(request.form)
    return _page(new_token=(row.label, token))


@bp.post("/tokens/<int:token_id>/revoke")
def revoke(token_id):
    flash(f"API token {revoke_by_id(token_id)} revoked.", "success")
    return _page()


# --- API -----------------------------------------------------------------------------------

@api.op("", summary="API tokens, newest first (never the token itself; ?q=, ?sort=, ?dir=, "
        "?page=, ?per_page=)", response=paged(TOKEN_RESPONSE),
        query=query_params(api_tokens.COLUMNS))
def api_list():
    page = api_tokens.tokens_page(request.args, 100, adjustable=True)
    return jsonify(page.json(api_tokens.token_dict))


@api.op("", "POST", body=api_tokens.TOKEN, status=201, response=NEW_TOKEN_RESPONSE,
        summary="Create an API token of the caller; the answer carries it (`token`) once")
def api_create():
    row, token = create(body(api_tokens.TOKEN))
    return jsonify({**api_tokens.token_dict(row), "token": token}), 201


@api.op("/<int:token_id>", "DELETE", status=204,
        summary="Revoke an API token: calls sending it answer 401 from now on")
def api_revoke(token_id):
    revoke_by_id(token_id)
    return "", 204


declare(__name__, title="API tokens", description="API tokens: list, create, revoke.",
        blueprints=[bp], api_blueprints=[api],
        nav_tabs=[Tab("API tokens", "tokens.index", order=940)])
