"""GET/POST /api/v1/hello/greetings, documented in /api/v1/openapi.json."""

from flask import jsonify, request

from appliance.api import ApiBlueprint, json_object, paged
from appliance.listing import query_params

from . import service

api = ApiBlueprint("hello_api", __name__, url_prefix="/hello", tag="hello")


@api.op("/greetings", summary="List the greetings (?q=, ?sort=, ?dir=, ?page=, ?per_page=)",
        response=paged(service.GREETING_JSON), query=query_params(service.COLUMNS))
def list_greetings():
    page = service.greetings_page(request.args, per_page=100, adjustable=True)
    return jsonify(page.json(service.as_dict))  # {items, total, page, pages, per_page}


@api.op("/greetings", "POST", summary="Add a greeting", body=service.GREETING, status=201,
        response=service.GREETING_JSON)
def create_greeting():
    # A broken rule raises Invalid: the host answers 422 naming the field and the rule.
    return jsonify(service.as_dict(service.add(json_object()))), 201
