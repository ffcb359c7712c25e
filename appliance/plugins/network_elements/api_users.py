"""Users and Services as JSON under /api/v1/network-elements: users, the flow-through queue
and Bulk User Provisioning."""

from flask import abort, jsonify, request

from appliance import limits
from appliance.api import ID, INT, json_object, obj, paged
from appliance.auth import username
from appliance.db import found
from appliance.listing import query_params

from . import accounts, flow, imports, service
from .api_base import BULK_BODY, CHANGE, FLAG, USER, USER_BODY, USER_UPDATE_BODY, api
from .models import User


@api.op("/users", summary="Provisioned users (?q=, ?sort=, ?page=, ?per_page=; ?element=<id>: "
        "those living on that element)", response=paged(USER), query=[
            *query_params(service.USER_COLUMNS),
            {"name": "element", "in": "query", "required": False, "schema": ID,
             "description": "An element's id"}])
def list_users():
    page = service.users(request.args, per_page=100, adjustable=True)
    known = accounts.user_accounts(page.rows)
    return jsonify(page.json(lambda u: {**service.user_dict(u), **known[u.id]}))


def _user_body(current: dict | None = None) -> dict:
    """The request's user, over `current` (a PUT changes only what it names). Services may
    be a list. Changing a user, an empty list or a null location or department means none;
    provisioning one, they mean the template's or role's."""
    data = {**(current or {}), **json_object()}
    if isinstance(data.get("services"), list):
        data["services"] = ";".join(map(str, data["services"])) or (
            service.NONE if current else "")
    if current:
        for name in ("location", "department"):
            if data.get(name) is None:
                data[name] = service.NONE
    return data


def _saved(u: User) -> dict:
    """The user, with its account (or why it has none) when its element has an enterprise."""
    return {**service.user_dict(u), **accounts.user_account(u)}


@api.op("/users", "POST", body=USER_BODY, status=201, response=USER,
        summary="Provision a user manually (the element must offer manual provisioning); "
        "the template or role fills the services, location and department left out. On an "
        "element of an enterprise the user becomes its account (account_id), unless another "
        "source's account has the login (account_conflict)")
def add_user():
    return jsonify(_saved(service.save_user(_user_body(), "manual"))), 201


@api.op("/users/<int:uid>", "PUT", body=USER_UPDATE_BODY, response=USER, summary="Change a "
        "user (fields left out keep their value; services [] or location/department null: "
        "none)")
def put_user(uid):
    u = found(User, uid, "user")
    service.save_user(_user_body(service.user_form(u)), "manual", u)
    return jsonify(_saved(u))


@api.op("/users/<int:uid>", "DELETE", status=204, summary="Delete a user (and its account, "
        "which is signed out)")
def delete_user(uid):
    service.delete_user(found(User, uid, "user"))
    return "", 204


@api.op("/flow-through", summary="The flow-through queue: pending, delivered, failed and "
        "discarded changes, newest first (?q=: a login; ?sort=, ?dir=, ?page=, ?per_page=)",
        response=paged(CHANGE), query=query_params(flow.COLUMNS))
def list_changes():
    return jsonify(flow.changes(request.args, per_page=100, adjustable=True)
                   .json(flow.change_dict))


@api.op("/flow-through/retry", "POST", summary="Queue the failed changes again",
        response=obj(["requeued"], requeued=INT))
def retry():
    return jsonify(requeued=flow.retry_failed())


@api.op("/flow-through/discard", "POST", summary="Discard the failed changes, so the changes "
        "queued behind them are delivered", response=obj(["discarded"], discarded=INT))
def discard():
    return jsonify(discarded=flow.discard_failed())


@api.op("/bulk", "POST", status=202, summary="Bulk User Provisioning: upload a CSV or LDIF "
        "file (multipart field `file`; form fields element, template, location, department "
        "for what rows leave out) to preview it (?apply=1 to import it); follow the job at "
        "/api/v1/jobs/{id} and read the result at /api/v1/network-elements/bulk/{run_id}",
        body=BULK_BODY, response=obj(["run_id"], run_id=INT), query=[
            {"name": "apply", "in": "query", "required": False, "schema": FLAG,
             "description": "1: import (otherwise: preview)"}])
@limits.upload
def bulk_upload():
    token, fmt = imports.store(request.files.get("file"))
    run = imports.submit(token, fmt, imports.defaults(request.form),
                         apply=request.args.get("apply") == "1", who=username())
    return jsonify(run_id=run.id), 202


@api.op("/bulk/<int:run_id>", summary="The result of a bulk preview or import: counts, the "
        "first rows and rejected rows with their reasons (the full report is a CSV at "
        "/network-elements/bulk/runs/{run_id}/report.csv)", response={"type": "object"})
def bulk_result(run_id):
    summary = imports.summary(run_id)
    if summary is None:
        abort(404, "No finished bulk run with that id")
    return jsonify(summary)
