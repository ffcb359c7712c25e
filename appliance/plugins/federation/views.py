"""The Federation tab: the switch, the XMPP service panel, and the Federated Servers table."""

import secrets

from flask import Blueprint, flash, request, url_for
from markupsafe import escape

from appliance.db import db
from appliance.ui import on_invalid, redirect_to, render, render_block
from appliance.xmpp import service as xmpp

from . import service, table
from .table import Row

bp = Blueprint("federation", __name__, url_prefix="/federation", template_folder="templates")


def _page(rows=None, settings_values=None, settings_errors=None, editing=None, failed=False):
    s, x = service.settings(), xmpp.settings()
    db.session.commit()  # the settings rows, created on first visit
    rows = table.saved_rows() if rows is None else rows
    return render("federation/index.html", block="table", s=s, rows=rows,
                  pending=table.pending(rows), editing=editing, failed=failed,
                  values=settings_values or _settings_values(x), errors=settings_errors or {},
                  schema=xmpp.SETTINGS, locked=xmpp.locked())


def _settings_values(x) -> dict:
    return {k: getattr(x, k) for k in xmpp.SETTINGS.fields}


@bp.get("/")
def index():
    return _page()


@bp.get("/table")
def reset():
    """Reset: discard the pending edits and show what is saved."""
    return _table(table.saved_rows())


def _table(rows, editing=None, failed=False, focus=None):
    """The table (with any flash) for HTMX; the whole page otherwise. `focus`: the (row key,
    column) of the cell to focus, one that was just closed."""
    if not request.htmx:
        return _page(rows, editing=editing, failed=failed)
    return render("federation/index.html", block="table", rows=rows,
                  pending=table.pending(rows), editing=editing, failed=failed, focus=focus)


@bp.post("/table")
def edit_table():
    """One step of editing: add a row, open or close a cell, tick NextPlane, or delete a row.

    The page posts every row it holds, so pending edits live in the page until Apply or
    Reset; nothing here is saved.
    """
    rows = table.draft(request.form)
    op, key, col = request.args.get("op"), request.args.get("key"), request.args.get("col")
    editing = focus = None
    if op == "add":
        key = "n" + secrets.token_hex(4)
        rows.append(Row(key))
        editing = (key, "domain")
    elif op == "edit" and col in ("domain", "server", "port"):
        editing = (key, col)
    elif op == "close":  # the box's value is in the form: kept, or put back by the page
        focus = (key, col)
    elif op == "delete":
        rows = [r for r in rows if r.key != key]
    elif op == "toggle":
        row = next((r for r in rows if r.key == key), None)
        if row is not None and row.nextplane and not row.server:
            editing = (key, "server")
    return _table(rows, editing, focus=focus)


@bp.post("/apply")
def apply_table():
    """Apply: validate every row; save them all, or nothing and mark the bad rows."""
    rows = table.draft(request.form)
    on_invalid(lambda _: _table(rows, failed=True))  # the rows carry their errors
    message = table.save_rows(rows)
    flash(f"Federated Servers saved. {message}", "success")
    return _table(table.saved_rows())


@bp.post("/enable")
def enable():
    message = service.set_enabled(True)
    flash(f"Federation enabled. {message}", "success")
    return redirect_to(url_for("federation.index"))


@bp.post("/disable")
def disable():
    message = service.set_enabled(False)
    flash(f"Federation disabled: no server-to-server traffic. {message}", "success")
    return redirect_to(url_for("federation.index"))


@bp.post("/settings")
def save_settings():
    on_invalid(lambda errors: _page(settings_values=request.form.to_dict(),
                                    settings_errors=errors))
    s = xmpp.save_settings(request.form)
    flash(f"XMPP service settings saved. {xmpp.apply(s)}", "success")
    return redirect_to(url_for("federation.index"))


@bp.get("/status")
def status():
    return render_block("federation/index.html", "status", st=service.status())


@bp.post("/test")
def test():
    domain = request.args.get("domain", "")
    result = service.test_domain(domain)
    ways = f" ({result['directions']})" if result.get("directions") else ""
    if result.get("ok"):
        text = f"{domain} answered in {result.get('ms', 0):.0f} ms{ways}"
        return f'<span class="state state-succeeded" role="status">{escape(text)}</span>'
    return (f'<span class="error" role="status">{escape(domain)}: '
            f'{escape(result.get("message", "failed"))}{escape(ways)}</span>')


@bp.post("/links/disconnect")
def disconnect():
    """Disconnect one server-to-server link (from the XMPP service panel)."""
    flash(service.disconnect(request.form.get("local", "")[:253],
                             request.form.get("remote", "")[:253]), "success")
    return redirect_to(url_for("federation.index"))
