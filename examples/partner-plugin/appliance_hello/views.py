"""The Greetings tab and the `appliance hello` command."""

import click
from flask import Blueprint, flash, request, url_for
from flask.cli import with_appcontext

from appliance.ui import on_invalid, redirect_to, render

from . import service

# template_folder makes templates/hello/... visible as "hello/..."; url_prefix keeps the
# plugin's pages under /hello/ so they never collide with the host's.
bp = Blueprint("hello", __name__, url_prefix="/hello", template_folder="templates")


def _page(block="greetings", values=None, errors=None):
    return render("hello/index.html", block=block, greetings=service.greetings(),
                  schema=service.GREETING, values=values or {}, errors=errors or {})


@bp.get("/")
def index():
    return _page()


@bp.post("/")
def add():
    # On a broken rule the host rolls back and answers 422 with this: the whole page, or
    # to HTMX only the form, with what was typed and the messages.
    on_invalid(lambda errors: _page("add_form", request.form, errors))
    gr = service.add(request.form)
    flash(f"Greeting “{gr.text}” added.", "success")
    return redirect_to(url_for("hello.index"))


@click.command("hello")
@with_appcontext
def hello_cli():
    """List the greetings."""
    for gr in service.greetings():
        click.echo(f"{gr.id:>4}  {gr.text}")
