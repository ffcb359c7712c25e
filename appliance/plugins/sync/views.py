"""The Synchronization tab: the enterprise's synchronization type, AD/LDAP synchronizers,
PBX nodes, and each one's details page."""

from flask import Blueprint, current_app, flash, request, url_for

from appliance import ldapdir, ldapform
from appliance.db import db, found
from appliance.host import host
from appliance.models import Account
from appliance.ui import (
    current_enterprise,
    on_invalid,
    redirect_to,
    render,
    render_block,
    selected_enterprise,
)
from appliance.validation import id_of

from . import numbers, service
from .models import LDAP, MODES, PBX, PLATFORMS, Synchronizer

bp = Blueprint("sync", __name__, url_prefix="/sync", template_folder="templates")


def _syn(syn_id: int) -> Synchronizer:
    return found(Synchronizer, syn_id, "synchronizer in the selected enterprise",
                 enterprise_id=selected_enterprise().id)


def _common() -> dict:
    return {"modes": MODES, "platforms": PLATFORMS, "presets": ldapform.PRESETS,
            "integrated": service.integrated(), "fields": ldapdir.FIELDS,
            "locked": service.INTEGRATED_LOCKED if service.integrated() else (),
            "schemas": service.BODIES, "settings_schema": service.SETTINGS}


def _index(values=None, errors=None, block="content"):
    ent = current_enterprise()
    ctx = {}
    if ent is not None:
        sset = service.settings_of(ent)
        db.session.commit()
        page = service.synchronizers(ent.id, request.args, sset.mode,
                                     per_page=current_app.config["PAGE_SIZE"])
        ctx = {"sset": sset, "page": page,
               "values": values or {"mode": sset.mode, "feature_profile": sset.feature_profile,
                                    "dynamic_only": sset.dynamic_only},
               "errors": errors or {},
               "counts": {s.id: service.accounts_of(s) for s in page.rows}}
    return render("sync/index.html", block=block, **ctx, **_common())


@bp.get("/")
def index():
    return _index(block="table")


@bp.post("/settings")
def save_settings():
    ent = selected_enterprise()
    on_invalid(lambda errors: _index(request.form.to_dict(), errors))
    service.save_settings(ent, request.form)
    flash("Synchronization settings saved.", "success")
    return redirect_to(url_for("sync.index"))


def _page(syn, kind, values, errors):
    last = host().jobs.last(syn.source) if syn else None
    return render("sync/edit.html", block="form", syn=syn, kind=kind, values=values,
                  errors=errors, last_run=last, issues=service.issues(syn) if syn else [],
                  accounts=service.accounts_of(syn) if syn else 0,
                  running=bool(syn and service.running(syn)),
                  next_sync=service.next_sync(syn) if syn else None, **_common())


def _defaults(kind: str) -> dict:
    base = {"max_drop": 20, **service.SCHEDULE_DEFAULT}
    if kind == LDAP:
        return {**base, **ldapform.DEFAULTS}
    return {**base, "platform": PLATFORMS[0]}


@bp.route("/new", methods=["GET", "POST"])
def new():
    ent = selected_enterprise()
    kind = request.args.get("kind") if request.args.get("kind") in (LDAP, PBX) else LDAP
    if request.method == "GET":
        return _page(None, kind, _defaults(kind), {})
    on_invalid(lambda errors: _page(None, kind, request.form.to_dict(), errors))
    syn = service.save(ent, kind, request.form)
    flash(f"{'PBX node' if kind == PBX else 'Synchronizer'} {syn.name} added.", "success")
    return redirect_to(url_for("sync.edit", syn_id=syn.id))


@bp.route("/<int:syn_id>", methods=["GET", "POST"])
def edit(syn_id):
    syn = _syn(syn_id)
    if request.method == "GET":
        return _page(syn, syn.kind, service.form_values(syn), {})
    on_invalid(lambda errors: _page(syn, syn.kind, request.form.to_dict(), errors))
    service.save(selected_enterprise(), syn.kind, request.form, syn)
    flash("Saved.", "success")
    return redirect_to(url_for("sync.edit", syn_id=syn.id))


@bp.get("/<int:syn_id>/status")
def status(syn_id):
    syn = _syn(syn_id)
    db.session.expire_all()
    return render_block("sync/edit.html", "status", syn=syn, issues=service.issues(syn),
                        running=bool(service.running(syn)), accounts=service.accounts_of(syn),
                        oob=True)


@bp.post("/<int:syn_id>/sync")
def sync_now(syn_id):
    syn = _syn(syn_id)
    run, created = service.sync_now(syn, allow_drop=request.form.get("allow_drop") == "1")
    if not created:
        flash("This synchronizer is already running; showing its progress.", "info")
    return render_block("sync/edit.html", "sync", syn=syn, last_run=run, running=True)


@bp.post("/<int:syn_id>/confirm")
def confirm(syn_id):
    syn = _syn(syn_id)
    service.sync_now(syn, confirmed=True)
    flash("Confirmed: this sync may remove the accounts no longer in the directory.", "info")
    return redirect_to(url_for("sync.edit", syn_id=syn.id))


@bp.post("/<int:syn_id>/delete")
def remove(syn_id):
    syn = _syn(syn_id)
    name = syn.name
    on_invalid(lambda _: redirect_to(url_for("sync.edit", syn_id=syn_id)))
    n = service.delete(syn)
    flash(f"{name} deleted with the {n:,} account(s) it created.", "success")
    return redirect_to(url_for("sync.index"))


@bp.post("/test-ldap")
def test_ldap():
    """Test connection: bind, search, show the first entries as they would be mapped."""
    values = request.form.to_dict()
    syn_id = request.args.get("syn_id", type=id_of)
    on_invalid(lambda errors: render_block("sync/edit.html", "ldap_test", test_errors=errors,
                                           failure="Fix the fields marked below first."))
    clean = service.test_values(values)
    syn = _syn(syn_id) if syn_id else None
    password = ldapform.password_for(clean, syn.settings if syn else None,
                                     syn.password_sealed if syn else "")
    result, failure = ldapform.try_connection(clean, password, service.mapping_of(clean))
    return render_block("sync/edit.html", "ldap_test", result=result, failure=failure)


# --- the account page's panel: numbers and dynamic statuses (rule 6) ------------------------


def _numbers_page(acc, values=None, errors=None):
    return render("sync/numbers.html", block="numbers", acc=acc, numbers=numbers.listing(acc),
                  statuses=numbers.statuses(acc), fields=numbers.MANUAL.fields,
                  values=values or {}, errors=errors or {})


def _account(account_id: int) -> Account:
    return found(Account, account_id, "account")


@bp.get("/accounts/<int:account_id>/numbers")
def account_numbers(account_id):
    """The account's numbers, where each came from and why one stays, and its statuses."""
    return _numbers_page(_account(account_id))


@bp.post("/accounts/<int:account_id>/numbers")
def add_number(account_id):
    acc = _account(account_id)
    on_invalid(lambda errors: _numbers_page(acc, request.form.to_dict(), errors))
    added = numbers.add(acc, request.form)
    flash(f"{added['number']} added to {acc.login}.", "success")
    return _numbers_page(acc) if request.htmx else \
        redirect_to(url_for("client.account", account_id=acc.id))


@bp.post("/accounts/<int:account_id>/numbers/<number>/delete")
def remove_number(account_id, number):
    acc = _account(account_id)
    on_invalid(lambda errors: _numbers_page(acc, errors=errors))
    numbers.remove(acc, number)
    flash(f"{number} removed from {acc.login}.", "success")
    return _numbers_page(acc) if request.htmx else \
        redirect_to(url_for("client.account", account_id=acc.id))
