"""The JSON API under /api/v1: blueprints that document themselves into OpenAPI."""

import re
from collections.abc import Callable
from dataclasses import dataclass

from flask import Blueprint, current_app, jsonify, request

from appliance import __version__
from appliance.validation import Invalid, Schema

PREFIX = "/api/v1"

ERROR = {
    "type": "object",
    "properties": {
        "error": {"type": "string"},
        "message": {"type": "string"},
        "fields": {"type": "array", "items": {
            "type": "object",
            "properties": {"field": {"type": "string"}, "rule": {"type": "string"},
                           "message": {"type": "string"}}}},
    },
    "required": ["error", "message"],
}


@dataclass
class Operation:
    rule: str
    method: str
    summary: str
    body: Schema | None
    response: dict | None
    status: int
    endpoint: str


class ApiBlueprint(Blueprint):
    """A blueprint whose routes carry their OpenAPI description.

    `url_prefix` is relative to /api/v1 (e.g. "/enterprises"). Its routes need an
    administrator's token or session, unless `authenticate` is given: a function the host
    calls instead, before each request, that returns None to let it in or a response to
    refuse it (for callers that are not administrators, such as a network element's
    management platform with its own token).
    """

    def __init__(self, name: str, import_name: str, url_prefix: str = "", tag: str | None = None,
                 authenticate: Callable | None = None):
        super().__init__(name, import_name, url_prefix=PREFIX + url_prefix)
        self.tag = tag or name
        self.authenticate = authenticate
        self.operations: list[Operation] = []

    def op(self, rule: str, method: str = "GET", summary: str = "", body: Schema | None = None,
           response: dict | None = None, status: int = 200) -> Callable:
        """Route one method of `rule` and document it."""
        def deco(fn):
            endpoint = f"{fn.__name__}_{method.lower()}"
            self.add_url_rule(rule, endpoint=endpoint, view_func=fn, methods=[method])
            self.operations.append(Operation(rule, method, summary or (fn.__doc__ or "").strip(),
                                             body, response, status, endpoint))
            return fn
        return deco


def body(schema: Schema, partial: bool = False) -> dict:
    """Validate the JSON request body; Invalid becomes a 422 naming field and rule."""
    return schema.validate(request.get_json(silent=True), partial=partial)


def json_object() -> dict:
    """The JSON request body, which must be an object; Invalid otherwise."""
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise Invalid({"": ("object", "The request body must be a JSON object")})
    return data


def invalid(exc: Invalid):
    return jsonify(exc.as_json()), 422


def error(status: int, code: str, message: str):
    return jsonify(error=code, message=message), status


def _path(rule: str) -> tuple[str, list[dict]]:
    params = []

    def sub(m):
        conv, name = m.group(1), m.group(2)
        params.append({"name": name, "in": "path", "required": True,
                       "schema": {"type": "integer" if conv == "int" else "string"}})
        return "{" + name + "}"
    return re.sub(r"<(?:(\w+):)?(\w+)>", sub, rule), params


def openapi(blueprints: list[ApiBlueprint]) -> dict:
    """Build the OpenAPI 3.1 document from the mounted API blueprints."""
    paths: dict = {}
    schemas: dict = {"Error": ERROR}
    for bp in blueprints:
        for op in bp.operations:
            path, params = _path((bp.url_prefix or "") + op.rule)
            doc = {
                "tags": [bp.tag],
                "summary": op.summary,
                "operationId": f"{bp.name}.{op.endpoint}",
                "responses": {
                    str(op.status): {"description": "OK", **({"content": {"application/json": {
                        "schema": op.response}}} if op.response else {})},
                    "401": {"description": "Not authenticated", "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
                },
            }
            if params:
                doc["parameters"] = params
                doc["responses"]["404"] = {"description": "Not found", "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
            if op.body is not None:
                schemas[op.body.name] = op.body.json_schema()
                doc["requestBody"] = {"required": True, "content": {"application/json": {
                    "schema": {"$ref": f"#/components/schemas/{op.body.name}"}}}}
                doc["responses"]["422"] = {"description": "Invalid field", "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
            paths.setdefault(path, {})[op.method.lower()] = doc
    return {
        "openapi": "3.1.0",
        "info": {"title": "Appliance API", "version": __version__},
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
    }


host = ApiBlueprint("api_host", __name__, tag="host")


@host.op("/openapi.json", summary="This OpenAPI document")
def openapi_json():
    return jsonify(openapi(current_app.extensions["appliance"].api_blueprints))


@host.op("/plugins", summary="Every plugin, enabled or not, and what blocked it")
def plugins():
    return jsonify([i.as_dict() for i in current_app.extensions["appliance"].plugins.listing()])
