"""GET/POST /api/v1/hello/greetings, documented in /api/v1/openapi.json."""

from flask import jsonify

from appliance.api import ApiBlueprint, body, invalid
from appliance.db import db
from appliance.validation import Invalid

from . import service

api = ApiBlueprint("hello_api", __name__, url_prefix="/hello", tag="hello")


@api.op("/greetings", summary="List the greetings")
def list_greetings():
    return jsonify(items=[service.as_dict(gr) for gr in service.greetings()])


@api.op("/greetings", "POST", summary="Add a greeting", body=service.GREETING, status=201)
def create_greeting():
    try:
        gr = service.add(body(service.GREETING))
    except Invalid as exc:  # 422 naming the field and the rule it broke
        db.session.rollback()
        return invalid(exc)
    return jsonify(service.as_dict(gr)), 201
