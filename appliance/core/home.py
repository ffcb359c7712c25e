"""Core: the start page (the plugins' cards at a glance, then their dashboard panels), and
the plugin list."""

from itertools import chain

from flask import Blueprint

from appliance.host import host
from appliance.plugins import declare
from appliance.summary import Summary
from appliance.ui import Tab, render

bp = Blueprint("home", __name__)


def summaries() -> list[Summary]:
    """Every enabled plugin's home cards (appliance_home_summary), by (order, title)."""
    found = chain.from_iterable(host().plugins.hook.appliance_home_summary())
    return sorted(found, key=lambda s: (s.order, s.title))


@bp.get("/")
def index():
    return render("home/index.html", summaries=summaries(), panels=host().panels)


@bp.get("/plugins")
def plugins():
    plugins = host().plugins
    return render("home/plugins.html", infos=plugins.listing(), profile=plugins.profile)


declare(__name__, title="Home", description="Start page and plugin list.", blueprints=[bp],
        nav_tabs=[Tab("Home", "home.index", order=0), Tab("Plugins", "home.plugins", order=950)])
