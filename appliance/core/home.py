"""Core: the start page with the plugins' dashboard panels, and the plugin list."""

from flask import Blueprint, current_app

from appliance import hookimpl
from appliance.ui import Tab, render

bp = Blueprint("home", __name__)


@bp.get("/")
def index():
    return render("home/index.html", panels=current_app.extensions["appliance"].panels)


@bp.get("/plugins")
def plugins():
    host = current_app.extensions["appliance"]
    return render("home/plugins.html", infos=host.plugins.listing(), profile=host.plugins.profile)


@hookimpl
def appliance_metadata():
    return {"title": "Home", "description": "Start page and plugin list."}


@hookimpl
def appliance_blueprints():
    return [bp]


@hookimpl
def appliance_nav_tabs():
    return [Tab("Home", "home.index", order=0), Tab("Plugins", "home.plugins", order=950)]
