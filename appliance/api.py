"""The JSON API under /api/v1: blueprints that document themselves into OpenAPI."""

import re
from collections.abc import Callable
from dataclasses import dataclass

from flask import Blueprint, jsonify, request

from appliance.host import host
from appliance.validation import MAX_ID, Invalid, Schema
from appliance.version import __version__

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


# Shapes for documenting answers.
INT, STR, BOOL = {"type": "integer"}, {"type": "string"}, {"type": "boolean"}
NULL_STR, NULL_INT = {"type": ["string", "null"]}, {"type": ["integer", "null"]}
TIME = {"type": ["string", "null"], "format": "date-time"}
ID = {"type": "integer", "minimum": 0, "maximum": MAX_ID}  # what an <int:...> URL part takes


def obj(required=(), **props) -> dict:
    """An object schema with these properties (others may come too)."""
    return {"type": "object", "properties": props, "required": list(required)}


def array(items: dict) -> dict:
    return {"type": "array", "items": items}


def items(schema: dict, **more) -> dict:
    """{"items": [schema, ...], **more}."""
    return obj(["items", *more], items=array(schema), **more)


def paged(schema: dict) -> dict:
    """One page of a listing (listing.Page.json): items, total, more, page, pages, per_page."""
    more = {**BOOL, "description": "A search counts up to 1,000 matches: true when it has "
                                   "more than `total` (a page past them counts them all)"}
    return items(schema, total=INT, more=more, page=INT, pages=INT, per_page=INT)


#: The answer of an operation that starts a job.
RUN = obj(["run_id"], run_id=INT, created=BOOL, state=STR)

#: What each error status means, for every operation it applies to.
ERRORS = {
    400: "Bad request",
    401: "Not authenticated",
    403: "Not allowed for this caller",
    404: "Not found",
    409: "Conflict with the current state",
    413: "Request body too large",
    422: "Invalid field or query argument",
    502: "The outside server could not be used",
    503: "Database busy or unavailable (Retry-After)",
}


@dataclass
class Operation:
    rule: str
    method: str
    summary: str
    body: Schema | dict | None
    response: dict | None
    status: int
    endpoint: str
    errors: tuple[int, ...] = ()
    query: tuple[dict, ...] = ()


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

    def op(self, rule: str, method: str = "GET", summary: str = "",
           body: Schema | dict | None = None, response: dict | None = None, status: int = 200,
           errors: tuple[int, ...] = (), query: list[dict] = ()) -> Callable:
        """Route one method of `rule` and document it: `body` is a Schema (or a JSON schema
        whose "x-media-type" may say multipart/form-data), `response` the JSON schema of the
        `status` answer, `errors` the other statuses besides those derived (400, 401, 413 and
        503 always; 404 with a path parameter; 422 with a body or query; a 2xx among them
        answers `response` too), `query` OpenAPI query parameters."""
        def deco(fn):
            endpoint = f"{fn.__name__}_{method.lower()}"
            self.add_url_rule(rule, endpoint=endpoint, view_func=fn, methods=[method])
            self.operations.append(Operation(rule, method, summary or (fn.__doc__ or "").strip(),
                                             body, response, status, endpoint, tuple(errors),
                                             tuple(query)))
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
                       "schema": ID if conv == "int" else {"type": "string"}})
        return "{" + name + "}"
    return re.sub(r"<(?:(\w+):)?(\w+)>", sub, rule), params


def _responses(op: Operation, has_params: bool) -> dict:
    """Every answer `op` can give: its success and the error statuses that apply."""
    ok = {"description": "OK"}
    if op.response is not None:
        ok["content"] = {"application/json": {"schema": op.response}}
    codes = {400, 401, 413, 503, *op.errors}
    if has_params:
        codes.add(404)
    if op.body is not None or op.query:
        codes.add(422)
    out = {str(op.status): ok}
    for code in sorted(c for c in codes if c < 300):
        out[str(code)] = ok
    for code in sorted(c for c in codes if c >= 300):
        out[str(code)] = {"description": ERRORS[code], "content": {"application/json": {
            "schema": {"$ref": "#/components/schemas/Error"}}}}
    out["503"]["headers"] = {"Retry-After": {"schema": INT}}
    return out


def _request_body(body: Schema | dict, schemas: dict) -> dict:
    if isinstance(body, Schema):
        schema = body.json_schema()
        if schemas.setdefault(body.name, schema) != schema:
            raise ValueError(f"Two request bodies are named {body.name}: name each its own")
        schema, media = {"$ref": f"#/components/schemas/{body.name}"}, "application/json"
    else:
        schema = {k: v for k, v in body.items() if k != "x-media-type"}
        media = body.get("x-media-type", "application/json")
    return {"required": True, "content": {media: {"schema": schema}}}


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
                "responses": _responses(op, bool(params)),
            }
            if params or op.query:
                doc["parameters"] = [*params, *op.query]
            if op.body is not None:
                doc["requestBody"] = _request_body(op.body, schemas)
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


host_api = ApiBlueprint("api_host", __name__, tag="host")


@host_api.op("/openapi.json", summary="This OpenAPI document",
         response=obj(["openapi", "paths"], openapi=STR, info=obj(), paths=obj()))
def openapi_json():
    return jsonify(openapi(host().api_blueprints))


@host_api.op("/plugins", summary="Every plugin, enabled or not, and what blocked it",
         response=array(obj(["name"], name=STR, version=STR, enabled=BOOL)))
def plugins():
    return jsonify([i.as_dict() for i in host().plugins.listing()])
