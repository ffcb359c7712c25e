"""Core: the start page with the plugins' dashboard panels, and the plugin list."""

from flask import Blueprint

from appliance.host import host
from appliance.plugins import declare
from appliance.ui import Tab, render

bp = Blueprint("home", __name__)


@bp.get("/")
def index():
    return render("home/index.html", panels=host().panels)


@bp.get("/plugins")
def plugins():
    plugins = host().plugins
    return render("home/plugins.html", infos=plugins.listing(), profile=plugins.profile)


declare(__name__, title="Home", description="Start page and plugin list.", blueprints=[bp],
        nav_tabs=[Tab("Home", "home.index", order=0), Tab("Plugins", "home.plugins", order=950)])
