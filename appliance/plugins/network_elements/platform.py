"""Provision from the management platform: a MiVoice 5000 / MX-ONE management platform
creates, updates and removes users carrying a MiCollab role, with the element's own token."""

from flask import abort, g, jsonify, request
from sqlalchemy import func, select

from appliance.api import ApiBlueprint, error, json_object, paged
from appliance.db import db
from appliance.listing import query_params
from appliance.validation import Field, Invalid, Schema, max_length

from . import accounts, service
from .api_base import USER
from .models import PLATFORM, Template, User


def _element_auth():
    header = request.headers.get("Authorization", "")
    element = service.element_for_token(header[7:].strip()) if header.startswith("Bearer ") \
        else None
    if element is None:
        return error(401, "unauthorized", "Send 'Authorization: Bearer <token>' with the token "
                     "issued on the network element's page")
    if PLATFORM not in element.methods:
        return error(403, "forbidden", f"{element.platform} does not provision from its "
                     "management platform")
    g.element = element
    return None


#: What the management platform sends for a user (the login is in the path, the element is
#: the token's, and the role stands for the template).
PLATFORM_USER = Schema(
    "PlatformUser",
    *(f for name, f in service.USER.fields.items() if name not in ("login", "element",
                                                                    "template")),
    Field("role", "MiCollab role", (max_length(64),),
          help="The name of a role defined on the appliance: its services, location and "
          "department fill what the user's data leaves out."),
)

platform = ApiBlueprint("network_elements_platform", __name__,
                        url_prefix="/network-elements/platform", tag="management platform",
                        authenticate=_element_auth)


def _who() -> str:
    """How the audit log names the caller."""
    return f"platform:{g.element.name}"


def _user(login: str) -> User | None:
    return db.session.scalar(select(User).where(func.lower(User.login) == login.lower(),
                                                User.element_id == g.element.id))


@platform.op("/users", summary="Users this element provisioned (element token; ?q=, ?sort=, "
             "?dir=, ?page=, ?per_page=)", response=paged(USER),
             query=query_params(service.USER_COLUMNS), errors=(403,))
def list_users():
    page = service.users(request.args, per_page=100, adjustable=True, element_id=g.element.id)
    known = accounts.user_accounts(page.rows)
    return jsonify(page.json(lambda u: {**service.user_dict(u), **known[u.id]}))


@platform.op("/users/<login>", "PUT", body=PLATFORM_USER, summary="Create (201) or update "
             "(200) a user with its MiCollab role (`role`: the name of a role); element token",
             response=USER, status=201, errors=(200, 403))
def put_user(login):
    data = json_object()
    PLATFORM_USER.validate(data)
    role = data["role"].strip()
    found = db.session.scalar(select(Template).where(func.lower(Template.name) == role.lower(),
                                                     Template.kind == "role"))
    if found is None:
        raise Invalid({"role": ("role", "role must name a MiCollab role defined on the "
                                "appliance")})
    user = _user(login)
    other = db.session.scalar(select(User).where(func.lower(User.login) == login.lower()))
    if user is None and other is not None:
        raise Invalid({"login": ("unique", f"{login} belongs to another network element")})
    body = {**data, "login": login, "element": g.element.name, "template": found.name}
    saved = service.save_user(body, PLATFORM, user, who=_who())
    return jsonify({**service.user_dict(saved), **accounts.user_account(saved)}), \
        201 if user is None else 200


@platform.op("/users/<login>", "DELETE", status=204, summary="Remove a user (element token)",
             errors=(403,))
def delete_user(login):
    user = _user(login)
    if user is None:
        abort(404, f"No user {login} on this element")
    service.delete_user(user, who=_who())
    return "", 204
