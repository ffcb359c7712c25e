"""Users and Services pages: network elements with their IDS, licences, locations,
departments, templates and roles. A broken rule goes to the host's handler (ui.on_invalid
says which form shows it); a refusal (Conflict) is flashed on the page the action came from."""

from flask import current_app, flash, request, url_for
from sqlalchemy import select

from appliance import ldapform
from appliance.auth import username
from appliance.db import db, found
from appliance.models import Enterprise
from appliance.ui import on_invalid, redirect_to, render, render_block

from . import accounts, flow, ids, service
from .models import PLATFORMS, Department, Element, IdsSource, Location, Template
from .pages import bp, form_choices, page_context

SITE = {"locations": (Location, "Location", "Locations"),
        "departments": (Department, "Department", "Departments")}


def _page_size() -> int:
    return current_app.config["PAGE_SIZE"]


# --- network elements ------------------------------------------------------------------------


@bp.get("/")
def index():
    page = service.elements(request.args, per_page=_page_size())
    return render("network_elements/index.html", block="table", **page_context(
        page=page, users=service.users_by_element([e.id for e in page.rows])))


def _element(element_id: int) -> Element:
    return found(Element, element_id, "network element")


def _element_page(e, values, errors, token=None, ids_values=None, ids_errors=None) -> str:
    src = db.session.get(IdsSource, e.id) if e else None
    return render("network_elements/element.html", block="form", **page_context(
        e=e, values=values, errors=errors, token=token, presets=ldapform.PRESETS,
        ELEMENT=service.ELEMENT, TARGET=ids.TARGET,
        ids_values=ids_values or ({**ldapform.DEFAULTS, **src.settings,
                                   "template": src.template,
                                   "enterprise_id": src.enterprise_id} if src else
                                  dict(ldapform.DEFAULTS)),
        ids_errors=ids_errors or {}, ids_set=src is not None,
        ids_seeds=ids.seeds(e) if e else None, impact=service.element_impact(e) if e else None,
        element_accounts=accounts.element_accounts(e) if e else None,
        connectors=sorted(flow.connectors()),
        enterprises=db.session.execute(select(Enterprise.id, Enterprise.name)
                                       .order_by(Enterprise.name)).all(),
        **form_choices()))


def _back_to(e: Element):
    """The answer of an action on the element's page: that page again."""
    return redirect_to(url_for("network_elements.element_edit", element_id=e.id))


@bp.post("/elements/<int:element_id>/ids")
def element_ids(element_id):
    e = _element(element_id)
    on_invalid(lambda errors: _element_page(e, service.element_dict(e), {},
                                            ids_values=request.form.to_dict(),
                                            ids_errors=errors))
    ids.save(e, request.form)
    if request.form.get("run"):
        ids.submit(e, username())
        flash("IDS settings saved; seeding started (see Jobs).", "success")
    else:
        flash("IDS settings saved.", "success")
    return _back_to(e)


@bp.post("/elements/<int:element_id>/ids/test")
def element_ids_test(element_id):
    """Test connection: bind, search, and show the first entries as IDS would seed them."""
    e = _element(element_id)
    on_invalid(lambda errors: render_block("network_elements/element.html", "ids_test",
                                           test_errors=errors,
                                           failure="Fix the fields marked below first."))
    result, failure = ids.test_connection(e, request.form)
    return render_block("network_elements/element.html", "ids_test", result=result,
                        failure=failure, ids_seeds=ids.seeds(e))


@bp.post("/elements/<int:element_id>/ids/delete")
def element_ids_delete(element_id):
    e = _element(element_id)
    on_invalid(lambda _: _back_to(e))
    n = service.remove_ids(e)
    flash(f"IDS removed from {e.name}" + (f", with the {n:,} contact(s) it seeded."
                                           if n else "."), "success")
    return _back_to(e)


@bp.route("/elements/new", methods=["GET", "POST"])
def element_new():
    if request.method == "GET":
        return _element_page(None, {"platform": PLATFORMS[0]}, {})
    on_invalid(lambda errors: _element_page(None, request.form.to_dict(), errors))
    e = service.save_element(request.form)
    flash(f"Network element {e.name} added.", "success")
    return _back_to(e)


def _flash_conflicts(e: Element) -> None:
    """Warn of the element's users that have no account (another source has the login)."""
    summary = accounts.element_accounts(e)
    if summary and summary["conflicts"]:
        names = ", ".join(c["login"] for c in summary["conflicts"][:5])
        more = len(summary["conflicts"]) - 5
        flash(f"{len(summary['conflicts'])} user(s) of {e.name} have no account in "
              f"{summary['enterprise']}, because an account of another source has their "
              f"login: {names}" + (f" and {more} more" if more > 0 else "") + ".", "warning")


@bp.route("/elements/<int:element_id>", methods=["GET", "POST"])
def element_edit(element_id):
    e = _element(element_id)
    if request.method == "GET":
        return _element_page(e, service.element_dict(e), {})
    on_invalid(lambda errors: _element_page(e, request.form.to_dict(), errors))
    service.save_element(request.form, e)
    flash("Network element saved.", "success")
    _flash_conflicts(e)
    return _back_to(e)


@bp.post("/elements/<int:element_id>/token")
def element_token(element_id):
    e = _element(element_id)
    token = service.new_platform_token(e)
    return _element_page(e, service.element_dict(e), {}, token=token)


@bp.post("/elements/<int:element_id>/delete")
def element_delete(element_id):
    e = _element(element_id)
    name = e.name
    on_invalid(lambda _: _back_to(e))
    gone = service.delete_element(e)
    flash(f"Network element {name} deleted" + (
        f", with the {gone['ids_contacts']:,} contact(s) IDS seeded." if gone["ids_contacts"]
        else "."), "success")
    return redirect_to(url_for("network_elements.index"))


# --- licences --------------------------------------------------------------------------------


def _licences_page(typed: dict, errors: dict) -> str:
    return render("network_elements/licences.html", **page_context(
        rows=service.licences(), typed=typed, errors=errors))


@bp.route("/licences", methods=["GET", "POST"])
def licences():
    if request.method == "POST":
        typed = {t: request.form.get(t, "").strip() for t in service.SERVICES}
        on_invalid(lambda errors: _licences_page(typed, errors))
        service.set_licences(typed)
        flash("Licences saved.", "success")
    return _licences_page({}, {})


# --- locations and departments ---------------------------------------------------------------


def _site_page(kind: str, values: dict, errors: dict, edit: tuple = (None, {}, {})) -> str:
    """The list with the form adding one; `edit`: (id, values, errors) of a row whose change
    was refused, shown in its row."""
    model, one, many = SITE[kind]
    edit_id, edit_values, edit_errors = edit
    return render("network_elements/site.html", block="table", **page_context(
        kind=kind, one=one, many=many, NAMED=service.NAMED, values=values, errors=errors,
        # kind rides along with the table's sort, search and page links
        page=service.named(model, {**request.args.to_dict(), "kind": kind},
                           per_page=_page_size()), edit_id=edit_id,
        edit_values=edit_values, edit_errors=edit_errors))


@bp.route("/<any(locations, departments):kind>", methods=["GET", "POST"])
def site_items(kind):
    model, one, _many = SITE[kind]
    if request.method == "POST":
        on_invalid(lambda errors: _site_page(kind, request.form.to_dict(), errors))
        service.save_named(model, request.form)
        flash(f"{one} added.", "success")
    return _site_page(kind, {}, {})


@bp.post("/<any(locations, departments):kind>/<int:row_id>")
def site_item_edit(kind, row_id):
    model, one, _many = SITE[kind]
    row = found(model, row_id, one.lower())
    on_invalid(lambda errors: _site_page(kind, {}, {}, (row_id, request.form.to_dict(),
                                                          errors)))
    service.save_named(model, request.form, row)
    flash(f"{one} saved.", "success")
    return redirect_to(url_for("network_elements.site_items", kind=kind))


@bp.post("/<any(locations, departments):kind>/<int:row_id>/delete")
def site_item_delete(kind, row_id):
    model, one, _many = SITE[kind]
    row = found(model, row_id, one.lower())
    name = row.name
    listing = url_for("network_elements.site_items", kind=kind)
    on_invalid(lambda _: redirect_to(listing))
    service.delete_named(row)
    flash(f"{one} {name} deleted.", "success")
    return redirect_to(listing)


# --- templates and roles ---------------------------------------------------------------------


def _templates_page(row: Template | None, values: dict, errors: dict) -> str:
    return render("network_elements/templates.html", block="table", **page_context(
        page=service.templates(request.args, per_page=_page_size()), row=row, values=values,
        errors=errors, TEMPLATE=service.TEMPLATE, **form_choices()))


@bp.route("/templates", methods=["GET", "POST"])
@bp.route("/templates/<int:row_id>", methods=["GET", "POST"])
def templates(row_id=None):
    """The list, with the form adding one (or, with row_id, changing that one)."""
    row = found(Template, row_id, "template or role") if row_id is not None else None
    if request.method == "POST":
        data = {**request.form.to_dict(), "services": request.form.getlist("services")}
        on_invalid(lambda errors: _templates_page(row, data, errors))
        saved = service.save_template(data, row)
        flash(f"{saved.kind.capitalize()} {saved.name} saved.", "success")
        return redirect_to(url_for("network_elements.templates"))
    return _templates_page(row, service.template_dict(row) if row else {}, {})


@bp.post("/templates/<int:row_id>/delete")
def template_delete(row_id):
    row = found(Template, row_id, "template or role")
    what = f"{row.kind.capitalize()} {row.name}"
    listing = url_for("network_elements.templates")
    on_invalid(lambda _: redirect_to(listing))
    service.delete_template(row)
    flash(f"{what} deleted.", "success")
    return redirect_to(listing)
