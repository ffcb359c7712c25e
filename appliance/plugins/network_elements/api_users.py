"""Users and Services as JSON under /api/v1/network-elements: users, the flow-through queue
and Bulk User Provisioning."""

from flask import jsonify, request
from sqlalchemy import select

from appliance import limits
from appliance.api import ID, INT, error, invalid, items, json_object, obj, paged
from appliance.auth import username
from appliance.db import db
from appliance.host import host
from appliance.listing import paginate, query_params
from appliance.validation import Invalid

from . import flow, imports, service
from .api_base import BULK_BODY, CHANGE, FLAG, USER, api
from .models import Change, User


@api.op("/users", summary="Provisioned users (?q=, ?sort=, ?page=, ?per_page=; ?element=<id>: "
        "those living on that element)", response=paged(USER), query=[
            *query_params(service.USER_COLUMNS),
            {"name": "element", "in": "query", "required": False, "schema": ID,
             "description": "An element's id"}])
def list_users():
    page = paginate(service.users_query(request.args), service.USER_COLUMNS, request.args,
                    "login", search=(User.login, User.last_name, User.number), per_page=100,
                    tiebreak=User.id, adjustable=True)
    return jsonify(items=[service.user_dict(u) for u in page.rows], total=page.total,
                   page=page.page, pages=page.pages)


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


@api.op("/users", "POST", body=service.USER, status=201, response=USER,
        summary="Provision a user manually (the element must offer manual provisioning); "
        "the template or role fills the services, location and department left out")
def add_user():
    try:
        u = service.save_user(_user_body(), "manual")
    except Invalid as exc:
        db.session.rollback()
        return invalid(exc)
    return jsonify(service.user_dict(u)), 201


@api.op("/users/<int:uid>", "PUT", body=service.USER, response=USER, summary="Change a user "
        "(fields left out keep their value; services [] or location/department null: none)")
def put_user(uid):
    u = db.session.get(User, uid)
    if u is None:
        return error(404, "not_found", "No such user")
    try:
        service.save_user(_user_body(service.user_form(u)), "manual", u)
    except Invalid as exc:
        db.session.rollback()
        return invalid(exc)
    return jsonify(service.user_dict(u))


@api.op("/users/<int:uid>", "DELETE", status=204, summary="Delete a user")
def delete_user(uid):
    u = db.session.get(User, uid)
    if u is None:
        return error(404, "not_found", "No such user")
    service.delete_user(u)
    return "", 204


@api.op("/flow-through", summary="The flow-through queue: pending, delivered and failed "
        "changes, newest first", response=items(CHANGE))
def list_changes():
    rows = db.session.scalars(select(Change).order_by(Change.id.desc()).limit(500))
    return jsonify(items=[{"id": c.id, "element_id": c.element_id, "action": c.action,
                           "login": c.login, "state": c.state, "attempts": c.attempts,
                           "error": c.error or None} for c in rows])


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
    upload = request.files.get("file")
    try:
        if upload is None or not upload.filename:
            raise ValueError("Send the file in the multipart field `file`")
        token, fmt = imports.store(upload)
    except ValueError as exc:
        return invalid(Invalid({"file": ("file", str(exc))}))
    defaults = {k: request.form[k] for k in ("element", "template", "location", "department")
                if request.form.get(k)}
    who = username()
    run, _ = host().jobs.submit(
        imports.KIND, f"bulk:{token}", {"token": token, "fmt": fmt, "defaults": defaults,
                                        "apply": request.args.get("apply") == "1",
                                        "username": who}, triggered_by=who)
    return jsonify(run_id=run.id), 202


@api.op("/bulk/<int:run_id>", summary="The result of a bulk preview or import: counts, the "
        "first rows and rejected rows with their reasons (the full report is a CSV at "
        "/network-elements/bulk/runs/{run_id}/report.csv)", response={"type": "object"})
def bulk_result(run_id):
    summary = imports.summary(run_id)
    if summary is None:
        return error(404, "not_found", "No finished bulk run with that id")
    return jsonify(summary)
