"""The Peering tab and the Peer Server Details page."""

from flask import Blueprint, current_app, flash, request, url_for

from appliance import ldapdir, ldapform
from appliance.auth import username
from appliance.db import db, found
from appliance.host import host
from appliance.jobs import Run
from appliance.peers import STATUSES, PeerError
from appliance.ui import (
    current_enterprise,
    on_invalid,
    redirect_to,
    render,
    render_block,
    selected_enterprise,
)
from appliance.validation import id_of

from . import service
from .models import MCS, TYPES, Peer

bp = Blueprint("peering", __name__, url_prefix="/peering", template_folder="templates")


def _peer(peer_id: int) -> Peer:
    return found(Peer, peer_id, "peer in the selected enterprise",
                 enterprise_id=selected_enterprise().id)


def _status_run(ent_id: int) -> Run | None:
    return host().jobs.active(f"peering-status:{ent_id}")


def _last_run(peer: Peer) -> Run | None:
    return host().jobs.last(peer.source)


@bp.get("/")
def index():
    ent = current_enterprise()
    page = None
    if ent is not None:
        db.session.expire_all()
        page = service.peers(ent.id, request.args, per_page=current_app.config["PAGE_SIZE"])
    return render("peering/index.html", block="table", page=page, statuses=STATUSES,
                  checking=_status_run(ent.id) if ent else None)


@bp.post("/check")
def check_now():
    """Poll this enterprise's MiCollab peers now; the table refreshes itself meanwhile."""
    ent = selected_enterprise()
    host().jobs.submit(
        service.STATUS_KIND, f"peering-status:{ent.id}", label=f"Peer status of {ent.eid}",
        triggered_by=username())
    return redirect_to(url_for("peering.index", **request.args))



def _form(peer: Peer | None, values: dict, errors: dict, status: int = 200, notes=()):
    return render("peering/edit.html", block="form", peer=peer, values=values, errors=errors,
                  notes=list(notes), last_run=_last_run(peer) if peer else None,
                  next_sync=service.next_sync(peer) if peer else None,
                  impact=service.impact(peer) if peer else None,
                  warning=service.upn_warning(peer) if peer else None,
                  presets=ldapform.PRESETS, types=TYPES, statuses=STATUSES,
                  common=service.COMMON, mcs=service.MCS_FIELDS,
                  dialing=service.dialing(values.get("dialing_prefix") or "")), status


def _defaults(kind: str) -> dict:
    return {"kind": kind, **service.SCHEDULE_DEFAULT, **ldapform.DEFAULTS,
            "full_days": service.FULL_DAYS}


@bp.route("/new", methods=["GET", "POST"])
def new():
    ent = selected_enterprise()
    if request.method == "GET":
        kind = request.args.get("kind") if request.args.get("kind") in TYPES else MCS
        return _form(None, {**_defaults(kind), **request.args.to_dict()}, {})
    on_invalid(lambda errors: _form(None, request.form.to_dict(), errors))
    peer, notes = service.save(ent, request.form)
    flash(f"Peer server {peer.description} added.", "success")
    for note in notes:
        flash(note, "warning")
    return redirect_to(url_for("peering.edit", peer_id=peer.id))


@bp.route("/<int:peer_id>", methods=["GET", "POST"])
def edit(peer_id):
    peer = _peer(peer_id)
    if request.method == "GET":
        values = service.form_values(peer)
        if request.args.get("kind") in TYPES:  # the admin switched the type on the page
            values = {**_defaults(request.args["kind"]), **request.args.to_dict()}
        return _form(peer, values, {})
    on_invalid(lambda errors: _form(peer, request.form.to_dict(), errors))
    peer, notes = service.save(selected_enterprise(), request.form, peer)
    flash("Peer server saved.", "success")
    for note in notes:
        flash(note, "warning")
    return redirect_to(url_for("peering.edit", peer_id=peer.id))


@bp.post("/<int:peer_id>/delete")
def remove(peer_id):
    peer = _peer(peer_id)
    name = peer.description
    on_invalid(lambda _: redirect_to(url_for("peering.edit", peer_id=peer_id)))
    gone = service.delete(peer)
    flash(f"Peer server {name} deleted, with its synchronization schedule and "
          f"{gone['contacts']:,} imported contact(s).", "success")
    return redirect_to(url_for("peering.index"))


@bp.post("/<int:peer_id>/sync")
def sync_now(peer_id):
    peer = _peer(peer_id)
    run, created = host().jobs.submit(
        service.KIND, peer.source, {"allow_drop": request.form.get("allow_drop") == "1"},
        label=f"Sync contacts from {peer.description}", triggered_by=username())
    if not created:
        flash("A sync of this peer is already running; showing its progress.", "info")
    return render_block("peering/edit.html", "sync", peer=peer, last_run=run)


@bp.post("/enterprises")
def select_enterprise():
    """Select Enterprise: ask the peer which enterprises it offers, and offer them as a list."""
    values = request.form.to_dict()
    peer_id = request.args.get("peer_id", type=id_of)
    peer = _peer(peer_id) if peer_id else None

    def answer(message: str = "", choices=None):
        return render_block("peering/edit.html", "peer_eid", values=values, peer=peer,
                            errors={"peer_eid": message} if message else {}, choices=choices)
    on_invalid(lambda errors: answer(next(iter(errors.values()))))
    port = service.MCS_FIELDS.fields["port"].clean(values.get("port")) or 443
    try:
        if not values.get("hostname"):
            raise PeerError("hostname", "Type the peer's Hostname first")
        key = service.key_for(peer, values["hostname"], port, values.get("key"))
        if not key:
            raise PeerError("key", "Type the Peer key the peer issued to this appliance first")
        return answer(choices=service.peer_enterprises(values["hostname"], port, key))
    except PeerError as exc:
        return answer(exc.message)


@bp.post("/test-ldap")
def test_ldap():
    """Test connection: bind, search, and show the first entries as they would be mapped."""
    values = request.form.to_dict()
    peer_id = request.args.get("peer_id", type=id_of)
    on_invalid(lambda errors: render_block("peering/edit.html", "ldap_test", result=None,
                                           test_errors=errors,
                                           failure="Fix the fields marked below first."))
    clean = ldapform.SCHEMA.validate(service.ldap_input(values))
    peer = _peer(peer_id) if peer_id else None
    password = ldapform.password_for(clean, peer.ldap_settings if peer else None,
                                     peer.ldap_password_sealed if peer else "")
    result, failure = ldapform.try_connection(clean, password,
                                              ldapdir.MAPPING_PRESETS[clean["preset"]])
    return render_block("peering/edit.html", "ldap_test", result=result, failure=failure)
