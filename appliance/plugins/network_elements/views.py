"""Users and Services: network elements, licences, locations, departments, templates and
roles, users, and the flow-through queue."""

import json
import re
import secrets

from flask import (
    Blueprint,
    abort,
    flash,
    request,
    send_file,
    url_for,
)
from sqlalchemy import func, select

from appliance import ldapdir, ldapform, limits
from appliance.auth import username
from appliance.db import db
from appliance.host import host
from appliance.listing import Column, paginate
from appliance.models import Enterprise
from appliance.ui import redirect_to, render, render_block
from appliance.validation import Invalid, id_of

from . import bulk, flow, ids, imports, service
from .models import (
    FORMATS,
    METHOD_LABELS,
    METHODS,
    PLATFORMS,
    RECOMMENDED,
    Change,
    Department,
    Element,
    IdsSource,
    Location,
    Template,
    User,
)

bp = Blueprint("network_elements", __name__, url_prefix="/network-elements",
               template_folder="templates")

USER_COLUMNS = [
    Column("login", "Login", User.login),
    Column("last_name", "Last name", (User.last_name, User.first_name)),
    Column("first_name", "First name", User.first_name),
    Column("number", "Number", User.number),
    Column("element", "Network element", Element.name),
    Column("template", "Template or role"),
    Column("services", "Services"),
    Column("origin", "Provisioned by", User.origin),
]


def users_query(args):
    """The users a listing shows: all, or those of ?element=<id>; with their element joined
    (the listing sorts by its name)."""
    stmt = select(User).join(Element, Element.id == User.element_id)
    element_id = args.get("element", type=id_of)
    if element_id is not None:
        stmt = stmt.where(User.element_id == element_id)
    return stmt
SITE = {"locations": (Location, "Location", "Locations"),
        "departments": (Department, "Department", "Departments")}


def _ctx(**kw) -> dict:
    return {"platforms": PLATFORMS, "methods": METHODS, "labels": METHOD_LABELS,
            "recommended": RECOMMENDED, "formats": FORMATS, "services": service.SERVICES, **kw}


def _get(model, row_id):
    return db.session.get(model, row_id) or abort(404)


# --- network elements ------------------------------------------------------------------------


@bp.get("/")
def index():
    elements = db.session.scalars(select(Element).order_by(Element.name)).all()
    users = dict(db.session.execute(select(User.element_id, func.count()).group_by(
        User.element_id)).all())
    return render("network_elements/index.html", **_ctx(elements=elements, users=users))


def _element_page(e, values, errors, status=200, token=None, ids_values=None,
                  ids_errors=None):
    src = db.session.get(IdsSource, e.id) if e else None
    return render("network_elements/element.html", block="form", **_ctx(
        e=e, values=values, errors=errors, token=token, presets=ldapform.PRESETS,
        ids_values=ids_values or ({**ldapform.DEFAULTS, **src.settings,
                                   "template": src.template,
                                   "enterprise_id": src.enterprise_id} if src else
                                  dict(ldapform.DEFAULTS)),
        ids_errors=ids_errors or {}, ids_set=src is not None,
        ids_seeds=ids.seeds(e) if e else None, impact=service.element_impact(e) if e else None,
        connectors=sorted(flow.connectors()),
        enterprises=db.session.execute(select(Enterprise.id, Enterprise.name)
                                       .order_by(Enterprise.name)).all(),
        **_names())), status


@bp.post("/elements/<int:element_id>/ids")
def element_ids(element_id):
    e = _get(Element, element_id)
    try:
        ids.save(e, request.form)
    except Invalid as exc:
        db.session.rollback()
        return _element_page(e, service.element_dict(e), {}, status=422,
                             ids_values=request.form.to_dict(), ids_errors=exc.messages())
    if request.form.get("run"):
        ids.submit(e, username())
        flash("IDS settings saved; seeding started (see Jobs).", "success")
    else:
        flash("IDS settings saved.", "success")
    return redirect_to(url_for("network_elements.element_edit", element_id=e.id))


@bp.post("/elements/<int:element_id>/ids/test")
def element_ids_test(element_id):
    """Test connection: bind, search, and show the first entries as IDS would seed them."""
    e = _get(Element, element_id)
    try:
        clean = ldapform.SCHEMA.validate(request.form)
        password = ids.password(e, clean)
    except Invalid as exc:
        return render_block("network_elements/element.html", "ids_test",
                            test_errors=exc.messages(),
                            failure="Fix the fields marked below first."), 422
    result, failure = ldapform.try_connection(clean, password,
                                              ldapdir.MAPPING_PRESETS[clean["preset"]])
    return render_block("network_elements/element.html", "ids_test", result=result,
                        failure=failure, ids_seeds=ids.seeds(e))


@bp.post("/elements/<int:element_id>/ids/delete")
def element_ids_delete(element_id):
    e = _get(Element, element_id)
    try:
        n = service.remove_ids(e)
    except Invalid as exc:
        db.session.rollback()
        flash(str(exc), "error")
    else:
        flash(f"IDS removed from {e.name}" + (f", with the {n:,} contact(s) it seeded."
                                               if n else "."), "success")
    return redirect_to(url_for("network_elements.element_edit", element_id=e.id))


@bp.route("/elements/new", methods=["GET", "POST"])
def element_new():
    if request.method == "GET":
        return _element_page(None, {"platform": PLATFORMS[0]}, {})
    try:
        e = service.save_element(request.form)
    except Invalid as exc:
        db.session.rollback()
        return _element_page(None, request.form.to_dict(), exc.messages(), 422)
    flash(f"Network element {e.name} added.", "success")
    return redirect_to(url_for("network_elements.element_edit", element_id=e.id))


@bp.route("/elements/<int:element_id>", methods=["GET", "POST"])
def element_edit(element_id):
    e = _get(Element, element_id)
    if request.method == "GET":
        return _element_page(e, service.element_dict(e), {})
    try:
        service.save_element(request.form, e)
    except Invalid as exc:
        db.session.rollback()
        return _element_page(e, request.form.to_dict(), exc.messages(), 422)
    flash("Network element saved.", "success")
    return redirect_to(url_for("network_elements.element_edit", element_id=e.id))


@bp.post("/elements/<int:element_id>/token")
def element_token(element_id):
    e = _get(Element, element_id)
    token = service.new_platform_token(e)
    return _element_page(e, service.element_dict(e), {}, token=token)


@bp.post("/elements/<int:element_id>/delete")
def element_delete(element_id):
    e = _get(Element, element_id)
    name = e.name
    try:
        gone = service.delete_element(e)
    except Invalid as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return redirect_to(url_for("network_elements.element_edit", element_id=e.id))
    flash(f"Network element {name} deleted" + (
        f", with the {gone['ids_contacts']:,} contact(s) IDS seeded." if gone["ids_contacts"]
        else "."), "success")
    return redirect_to(url_for("network_elements.index"))


# --- licences --------------------------------------------------------------------------------


@bp.route("/licences", methods=["GET", "POST"])
def licences():
    errors, status, typed = {}, 200, {}
    if request.method == "POST":
        typed = {t: request.form.get(t, "").strip() for t in service.SERVICES}
        try:
            bad = {t: ("range", f"{t}: available must be a whole number, 0 or more")
                   for t, raw in typed.items() if not re.fullmatch("[0-9]{1,9}", raw)}
            if bad:
                raise Invalid(bad)
            service.set_licences({t: int(raw) for t, raw in typed.items()})
        except Invalid as exc:
            db.session.rollback()
            errors, status = exc.messages(), 422
        else:
            flash("Licences saved.", "success")
            typed = {}
    return render("network_elements/licences.html", **_ctx(
        rows=service.licences(), typed=typed, errors=errors)), status


# --- locations and departments ---------------------------------------------------------------


@bp.route("/<any(locations, departments):kind>", methods=["GET", "POST"])
def site_items(kind, values=None, errors=None, status=200):
    model, one, many = SITE[kind]
    if request.method == "POST" and values is None:
        try:
            service.save_named(model, request.form)
        except Invalid as exc:
            db.session.rollback()
            values, errors, status = request.form.to_dict(), exc.messages(), 422
        else:
            flash(f"{one} added.", "success")
    rows = db.session.scalars(select(model).order_by(model.name)).all()
    return render("network_elements/site.html", **_ctx(
        kind=kind, one=one, many=many, rows=rows, values=values or {},
        errors=errors or {})), status


@bp.post("/<any(locations, departments):kind>/<int:row_id>")
def site_item_edit(kind, row_id):
    model, one, _many = SITE[kind]
    row = _get(model, row_id)
    try:
        service.save_named(model, request.form, row)
    except Invalid as exc:
        db.session.rollback()
        flash(f"{one} not saved: {exc}", "error")
    else:
        flash(f"{one} saved.", "success")
    return redirect_to(url_for("network_elements.site_items", kind=kind))


@bp.post("/<any(locations, departments):kind>/<int:row_id>/delete")
def site_item_delete(kind, row_id):
    model, one, _many = SITE[kind]
    row = _get(model, row_id)
    try:
        service.delete_named(row)
    except Invalid as exc:
        db.session.rollback()
        flash(str(exc), "error")
    else:
        flash(f"{one} {row.name} deleted.", "success")
    return redirect_to(url_for("network_elements.site_items", kind=kind))


# --- templates and roles ---------------------------------------------------------------------


@bp.route("/templates", methods=["GET", "POST"])
@bp.route("/templates/<int:row_id>", methods=["GET", "POST"])
def templates(row_id=None):
    """The list, with the form adding one (or, with row_id, changing that one)."""
    row = _get(Template, row_id) if row_id else None
    values, errors, status = {}, {}, 200
    if row is not None:
        values = service.template_dict(row)
    if request.method == "POST":
        data = {**request.form.to_dict(), "services": request.form.getlist("services")}
        try:
            saved = service.save_template(data, row)
        except Invalid as exc:
            db.session.rollback()
            values, errors, status = data, exc.messages(), 422
        else:
            flash(f"{saved.kind.capitalize()} {saved.name} saved.", "success")
            return redirect_to(url_for("network_elements.templates"))
    rows = db.session.scalars(select(Template).order_by(Template.kind, Template.name)).all()
    return render("network_elements/templates.html", **_ctx(
        rows=rows, row=row, values=values, errors=errors, **_names())), status


@bp.post("/templates/<int:row_id>/delete")
def template_delete(row_id):
    row = _get(Template, row_id)
    try:
        service.delete_template(row)
    except Invalid as exc:
        db.session.rollback()
        flash(str(exc), "error")
    else:
        flash(f"{row.kind.capitalize()} {row.name} deleted.", "success")
    return redirect_to(url_for("network_elements.templates"))


def _names() -> dict:
    return {"location_names": db.session.scalars(select(Location.name).order_by(
                Location.name)).all(),
            "department_names": db.session.scalars(select(Department.name).order_by(
                Department.name)).all(),
            "template_names": db.session.scalars(select(Template.name).order_by(
                Template.name)).all(),
            "element_names": db.session.scalars(select(Element.name).order_by(
                Element.name)).all()}


# --- users -----------------------------------------------------------------------------------


@bp.get("/users")
def users():
    page = paginate(users_query(request.args), USER_COLUMNS, request.args, "login",
                    search=(User.login, User.last_name, User.first_name, User.number),
                    per_page=50, tiebreak=User.id)
    element_id = request.args.get("element", type=id_of)
    return render("network_elements/users.html", block="table", **_ctx(
        page=page, element=db.session.get(Element, element_id) if element_id else None))


def _user_page(u, values, errors, status=200):
    return render("network_elements/user.html", block="form", **_ctx(
        u=u, values=values, errors=errors, **_names())), status


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
    u = _get(User, user_id)
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
    u = _get(User, user_id)
    login = u.login
    service.delete_user(u)
    flash(f"User {login} deleted.", "success")
    return redirect_to(url_for("network_elements.users"))


# --- flow-through queue ----------------------------------------------------------------------


@bp.get("/flow")
def flow_page():
    changes = db.session.scalars(select(Change).order_by(Change.id.desc()).limit(200)).all()
    names = dict(db.session.execute(select(Element.id, Element.name)).all())
    return render("network_elements/flow.html", **_ctx(changes=changes, names=names,
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
    return render("network_elements/bulk.html", **_ctx(values={}, error=None, **_names()))


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
        return render("network_elements/bulk.html", **_ctx(
            values=defaults, error=str(exc), **_names())), 422
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
    return render("network_elements/bulk_run.html", block="result", **_ctx(
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
