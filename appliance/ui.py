"""Page pieces shared by every tab: nav tabs, dashboard panels and HTMX-aware rendering."""

import json
from dataclasses import dataclass

from flask import abort, current_app, g, render_template, request
from flask import redirect as flask_redirect


@dataclass(frozen=True)
class Tab:
    label: str
    endpoint: str
    order: int = 100
    per_enterprise: bool = False  # the tab shows the enterprise selected in the header


@dataclass(frozen=True)
class Panel:
    title: str
    endpoint: str  # returns an HTML fragment
    order: int = 100


def render_block(template: str, block: str, **context) -> str:
    """Render one named block of a template: the HTMX partial of a page."""
    app = current_app._get_current_object()
    tmpl = app.jinja_env.get_template(template)
    app.update_template_context(context)
    return "".join(tmpl.blocks[block](tmpl.new_context(context)))


def render(template: str, block: str = "content", **context) -> str:
    """Render the full page, or only `block` when HTMX asks for a fragment."""
    if request.htmx and not request.htmx.boosted and not request.htmx.history_restore_request:
        return _partial(template, block, **context)
    return render_template(template, **context)


def on_invalid(render) -> None:
    """How this request's form answers a broken rule: `render(errors)` returns the page with
    the {field: message} errors shown. The host's handler for Invalid (app._wire_errors)
    rolls back, calls it and answers 422; without one it shows the error page."""
    g.on_invalid = render


def current_enterprise():
    """The enterprise chosen in the header list box, or None."""
    return g.get("enterprise")


def selected_enterprise():
    """The enterprise chosen in the header list box, or a 404 that says to choose one."""
    ent = g.get("enterprise")
    if ent is None:
        abort(404, "Select or add an enterprise first")
    return ent


def _oob_flashes() -> str:
    return render_template("_flash.html", oob=True)


def _partial(template: str, block: str, **context) -> str:
    """The block the HTMX target asks for (all of #main's content, or `block`), plus flashes."""
    name = "content" if request.htmx.target == "main" else block
    return render_block(template, name, **context) + _oob_flashes()


def redirect_to(url: str):
    """Go to `url`: an HTMX navigation into #main, or a plain redirect."""
    if request.htmx:
        return "", 204, {"HX-Location": json.dumps({"path": url, "target": "#main"})}
    return flask_redirect(url)
