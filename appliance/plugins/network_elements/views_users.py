"""Users and Services pages: users, the flow-through queue and Bulk User Provisioning."""

import json
import secrets

from flask import abort, current_app, flash, request, send_file, url_for
from sqlalchemy import select

from appliance import limits
from appliance.auth import username
from appliance.db import db, found
from appliance.host import host
from appliance.ui import on_invalid, redirect_to, render
from appliance.validation import id_of

from . import accounts, bulk_export, flow, imports, service
from .models import Element, User
from .pages import bp, form_choices, page_context

# --- users -----------------------------------------------------------------------------------


@bp.get("/users")
def users():
    element_id = request.args.get("element", type=id_of)
    return render("network_elements/users.html", block="table", **page_context(
        page=service.users(request.args, per_page=current_app.config["PAGE_SIZE"]),
        element=db.session.get(Element, element_id) if element_id else None))


def _user_page(u, values, errors) -> str:
    return render("network_elements/user.html", block="form", **page_context(
        u=u, values=values, errors=errors, USER=service.USER,
        account=accounts.user_account(u) if u else None,
        **form_choices(keep=u.element.name if u else None)))


def _flash_account(u: User) -> None:
    """Warn when the user has no account in its element's enterprise (another source's
    account has its login): the save itself stands."""
    conflict = accounts.user_account(u)["account_conflict"]
    if conflict:
        flash(conflict + ".", "warning")


def _user_form() -> dict:
    return {**request.form.to_dict(), "services": ";".join(request.form.getlist("services"))}


@bp.route("/users/new", methods=["GET", "POST"])
def user_new():
    if request.method == "GET":
        return _user_page(None, {}, {})
    on_invalid(lambda errors: _user_page(None, _user_form(), errors))
    u = service.save_user(_user_form(), "manual")
    flash(f"User {u.login} provisioned.", "success")
    _flash_account(u)
    return redirect_to(url_for("network_elements.user_edit", user_id=u.id))


@bp.route("/users/<int:user_id>", methods=["GET", "POST"])
def user_edit(user_id):
    u = found(User, user_id, "user")
    if request.method == "GET":
        return _user_page(u, service.user_form(u), {})
    on_invalid(lambda errors: _user_page(u, _user_form(), errors))
    service.save_user(_user_form(), "manual", u)
    flash("User saved.", "success")
    _flash_account(u)
    return redirect_to(url_for("network_elements.user_edit", user_id=u.id))


@bp.post("/users/<int:user_id>/delete")
def user_delete(user_id):
    u = found(User, user_id, "user")
    login = u.login
    service.delete_user(u)
    flash(f"User {login} deleted.", "success")
    return redirect_to(url_for("network_elements.users"))


# --- flow-through queue ----------------------------------------------------------------------


@bp.get("/flow")
def flow_page():
    page = flow.changes(request.args, per_page=current_app.config["PAGE_SIZE"])
    names = dict(db.session.execute(select(Element.id, Element.name)).all())
    return render("network_elements/flow.html", block="table", **page_context(
        page=page, names=names, held=flow.held()))


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


def _bulk_page(values: dict, errors: dict) -> str:
    return render("network_elements/bulk.html", **page_context(values=values, errors=errors,
                                                               **form_choices()))


@bp.get("/bulk")
def bulk_page():
    return _bulk_page({}, {})


@bp.post("/bulk/preview")
@limits.upload
def bulk_preview():
    options = imports.defaults(request.form)
    on_invalid(lambda errors: _bulk_page(options, errors))
    token, fmt = imports.store(request.files.get("file"))
    return _start(token, fmt, options, apply=False)


@bp.post("/bulk/apply")
def bulk_apply():
    return _start(request.form.get("token", ""), request.form.get("fmt", ""),
                  json.loads(request.form.get("defaults") or "{}"), apply=True)


def _start(token, fmt, options, apply: bool):
    run = imports.submit(token, fmt, options, apply, username())
    return redirect_to(url_for("network_elements.bulk_run", run_id=run.id))


@bp.get("/bulk/runs/<int:run_id>")
def bulk_run(run_id):
    db.session.expire_all()
    run = host().jobs.get(run_id)
    if run is None or run.kind != imports.KIND:
        abort(404, "No such bulk run")
    return render("network_elements/bulk_run.html", block="result", **page_context(
        run=run, params=json.loads(run.params), summary=imports.summary(run.id)))


@bp.get("/bulk/runs/<int:run_id>/report.csv")
def bulk_report(run_id):
    path = imports.report_path(run_id)
    if not path.exists():
        abort(404, "No report for that bulk run")
    return send_file(path, mimetype="text/csv", as_attachment=True,
                     download_name=f"import-report-{run_id}.csv")


@bp.get("/users/export.csv")
def users_export():
    """Every user in the import's CSV format: importing this file changes nothing."""
    path = imports.folder() / f"export-{secrets.token_hex(8)}.csv"
    with path.open("w", newline="", encoding="utf-8") as f:
        bulk_export.export_csv(f)
    resp = send_file(path, mimetype="text/csv", as_attachment=True,
                     download_name="users.csv")
    resp.call_on_close(lambda: path.unlink(missing_ok=True))
    return resp
