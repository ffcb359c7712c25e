"""Users and Services pages: users, the flow-through queue and Bulk User Provisioning."""

import json
import secrets

from flask import abort, flash, request, send_file, url_for
from sqlalchemy import select

from appliance import limits
from appliance.auth import username
from appliance.db import db
from appliance.host import host
from appliance.listing import paginate
from appliance.ui import redirect_to, render
from appliance.validation import Invalid, id_of

from . import bulk, flow, imports, service
from .models import Change, Element, User
from .pages import bp, form_choices, get_or_404, page_context

# --- users -----------------------------------------------------------------------------------


@bp.get("/users")
def users():
    page = paginate(service.users_query(request.args), service.USER_COLUMNS, request.args,
                    "login",
                    search=(User.login, User.last_name, User.first_name, User.number),
                    per_page=50, tiebreak=User.id)
    element_id = request.args.get("element", type=id_of)
    return render("network_elements/users.html", block="table", **page_context(
        page=page, element=db.session.get(Element, element_id) if element_id else None))


def _user_page(u, values, errors, status=200):
    return render("network_elements/user.html", block="form", **page_context(
        u=u, values=values, errors=errors, **form_choices())), status


def _user_form() -> dict:
    return {**request.form.to_dict(), "services": ";".join(request.form.getlist("services"))}


@bp.route("/users/new", methods=["GET", "POST"])
def user_new():
    if request.method == "GET":
        return _user_page(None, {}, {})
    try:
        u = service.save_user(_user_form(), "manual")
    except Invalid as exc:
        db.session.rollback()
        return _user_page(None, _user_form(), exc.messages(), 422)
    flash(f"User {u.login} provisioned.", "success")
    return redirect_to(url_for("network_elements.user_edit", user_id=u.id))


@bp.route("/users/<int:user_id>", methods=["GET", "POST"])
def user_edit(user_id):
    u = get_or_404(User, user_id)
    if request.method == "GET":
        return _user_page(u, service.user_form(u), {})
    try:
        service.save_user(_user_form(), "manual", u)
    except Invalid as exc:
        db.session.rollback()
        return _user_page(u, _user_form(), exc.messages(), 422)
    flash("User saved.", "success")
    return redirect_to(url_for("network_elements.user_edit", user_id=u.id))


@bp.post("/users/<int:user_id>/delete")
def user_delete(user_id):
    u = get_or_404(User, user_id)
    login = u.login
    service.delete_user(u)
    flash(f"User {login} deleted.", "success")
    return redirect_to(url_for("network_elements.users"))


# --- flow-through queue ----------------------------------------------------------------------


@bp.get("/flow")
def flow_page():
    changes = db.session.scalars(select(Change).order_by(Change.id.desc()).limit(200)).all()
    names = dict(db.session.execute(select(Element.id, Element.name)).all())
    return render("network_elements/flow.html", **page_context(changes=changes, names=names,
                                                       held=flow.held()))


@bp.post("/flow/retry")
def flow_retry():
    n = flow.retry_failed()
    flash(f"{n} failed change(s) queued again.", "success")
    return redirect_to(url_for("network_elements.flow_page"))


@bp.post("/flow/discard")
def flow_discard():
    n = flow.discard_failed()
    flash(f"{n} failed change(s) discarded: the changes behind them go on.", "success")
    return redirect_to(url_for("network_elements.flow_page"))


# --- Bulk User Provisioning ------------------------------------------------------------------


def _bulk_defaults(form) -> dict:
    return {k: form.get(k, "") for k in ("element", "template", "location", "department")
            if form.get(k)}


@bp.get("/bulk")
def bulk_page():
    return render("network_elements/bulk.html", **page_context(values={}, error=None,
                                                               **form_choices()))


@bp.post("/bulk/preview")
@limits.upload
def bulk_preview():
    upload = request.files.get("file")
    defaults = _bulk_defaults(request.form)
    try:
        if upload is None or not upload.filename:
            raise ValueError("Choose the file to import")
        token, fmt = imports.store(upload)
    except ValueError as exc:
        return render("network_elements/bulk.html", **page_context(
            values=defaults, error=str(exc), **form_choices())), 422
    return _start(token, fmt, defaults, apply=False)


@bp.post("/bulk/apply")
def bulk_apply():
    return _start(request.form.get("token", ""), request.form.get("fmt", ""),
                  json.loads(request.form.get("defaults") or "{}"), apply=True)


def _start(token, fmt, defaults, apply: bool):
    run, _ = host().jobs.submit(
        imports.KIND, f"bulk:{token}", {"token": token, "fmt": fmt, "defaults": defaults,
                                        "apply": apply, "username": username()},
        label="Bulk import" if apply else "Bulk import preview", triggered_by=username())
    return redirect_to(url_for("network_elements.bulk_run", run_id=run.id))


@bp.get("/bulk/runs/<int:run_id>")
def bulk_run(run_id):
    db.session.expire_all()
    run = host().jobs.get(run_id)
    if run is None or run.kind != imports.KIND:
        abort(404)
    return render("network_elements/bulk_run.html", block="result", **page_context(
        run=run, params=json.loads(run.params), summary=imports.summary(run.id)))


@bp.get("/bulk/runs/<int:run_id>/report.csv")
def bulk_report(run_id):
    path = imports.report_path(run_id)
    if not path.exists():
        abort(404)
    return send_file(path, mimetype="text/csv", as_attachment=True,
                     download_name=f"import-report-{run_id}.csv")


@bp.get("/users/export.csv")
def users_export():
    """Every user in the import's CSV format: importing this file changes nothing."""
    path = imports.folder() / f"export-{secrets.token_hex(8)}.csv"
    with path.open("w", newline="", encoding="utf-8") as f:
        bulk.export_csv(f)
    resp = send_file(path, mimetype="text/csv", as_attachment=True,
                     download_name="users.csv")
    resp.call_on_close(lambda: path.unlink(missing_ok=True))
    return resp
