"""The Greetings tab and the `appliance hello` command."""

import click
from flask import Blueprint, flash, request, url_for
from flask.cli import with_appcontext

from appliance.db import db
from appliance.ui import redirect_to, render, render_block
from appliance.validation import Invalid

from . import service

# template_folder makes templates/hello/... visible as "hello/..."; url_prefix keeps the
# plugin's pages under /hello/ so they never collide with the host's.
bp = Blueprint("hello", __name__, url_prefix="/hello", template_folder="templates")


def _page(values=None, errors=None, status=200):
    return render("hello/index.html", block="greetings", greetings=service.greetings(),
                  values=values or {}, errors=errors or {}), status


@bp.get("/")
def index():
    return _page()


@bp.post("/")
def add():
    try:
        gr = service.add(request.form)
    except Invalid as exc:
        db.session.rollback()
        if request.htmx:  # only the form comes back, with what was typed and the message
            return render_block("hello/index.html", "add_form", values=request.form,
                                errors=exc.messages()), 422
        return _page(request.form, exc.messages(), 422)
    flash(f"Greeting “{gr.text}” added.", "success")
    return redirect_to(url_for("hello.index"))


@click.command("hello")
@with_appcontext
def hello_cli():
    """List the greetings."""
    for gr in service.greetings():
        click.echo(f"{gr.id:>4}  {gr.text}")
