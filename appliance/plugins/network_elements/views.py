"""Users and Services pages: network elements with their IDS, licences, locations,
departments, templates and roles."""

import re

from flask import flash, request, url_for
from sqlalchemy import func, select

from appliance import ldapdir, ldapform
from appliance.auth import username
from appliance.db import db
from appliance.models import Enterprise
from appliance.ui import redirect_to, render, render_block
from appliance.validation import Invalid

from . import flow, ids, service
from .models import PLATFORMS, Department, Element, IdsSource, Location, Template, User
from .pages import bp, form_choices, get_or_404, page_context

SITE = {"locations": (Location, "Location", "Locations"),
        "departments": (Department, "Department", "Departments")}


# --- network elements ------------------------------------------------------------------------


@bp.get("/")
def index():
    elements = db.session.scalars(select(Element).order_by(Element.name)).all()
    users = dict(db.session.execute(select(User.element_id, func.count()).group_by(
        User.element_id)).all())
    return render("network_elements/index.html", **page_context(elements=elements, users=users))


def _element_page(e, values, errors, status=200, token=None, ids_values=None,
                  ids_errors=None):
    src = db.session.get(IdsSource, e.id) if e else None
    return render("network_elements/element.html", block="form", **page_context(
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
        **form_choices())), status


@bp.post("/elements/<int:element_id>/ids")
def element_ids(element_id):
    e = get_or_404(Element, element_id)
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
    e = get_or_404(Element, element_id)
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
    e = get_or_404(Element, element_id)
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
    e = get_or_404(Element, element_id)
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
    e = get_or_404(Element, element_id)
    token = service.new_platform_token(e)
    return _element_page(e, service.element_dict(e), {}, token=token)


@bp.post("/elements/<int:element_id>/delete")
def element_delete(element_id):
    e = get_or_404(Element, element_id)
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
    return render("network_elements/licences.html", **page_context(
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
    return render("network_elements/site.html", **page_context(
        kind=kind, one=one, many=many, rows=rows, values=values or {},
        errors=errors or {})), status


@bp.post("/<any(locations, departments):kind>/<int:row_id>")
def site_item_edit(kind, row_id):
    model, one, _many = SITE[kind]
    row = get_or_404(model, row_id)
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
    row = get_or_404(model, row_id)
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
    row = get_or_404(Template, row_id) if row_id else None
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
    return render("network_elements/templates.html", **page_context(
        rows=rows, row=row, values=values, errors=errors, **form_choices())), status


@bp.post("/templates/<int:row_id>/delete")
def template_delete(row_id):
    row = get_or_404(Template, row_id)
    try:
        service.delete_template(row)
    except Invalid as exc:
        db.session.rollback()
        flash(str(exc), "error")
    else:
        flash(f"{row.kind.capitalize()} {row.name} deleted.", "success")
    return redirect_to(url_for("network_elements.templates"))
