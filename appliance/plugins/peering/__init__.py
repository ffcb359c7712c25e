"""Peering: peer servers and contact sync between appliances and external IM servers.

This plugin is a placeholder: it declares itself, its tab and its API root, and grows in its
own issue.
"""

from flask import Blueprint, jsonify

from appliance import hookimpl
from appliance.api import ApiBlueprint
from appliance.ui import Tab, render

TITLE = "Peering"
DESCRIPTION = "Peer servers and contact sync between appliances and external IM servers."

bp = Blueprint("peering", __name__, url_prefix="/peering")
api = ApiBlueprint("peering_api", __name__, url_prefix="/peering", tag="peering")


@bp.get("/")
def index():
    return render("placeholder.html", title=TITLE, description=DESCRIPTION,
                  per_enterprise=True)


@api.op("", summary="What this plugin is")
def api_info():
    return jsonify(plugin="peering", title=TITLE, description=DESCRIPTION)


@hookimpl
def appliance_metadata():
    return {"title": TITLE, "description": DESCRIPTION}


@hookimpl
def appliance_blueprints():
    return [bp]


@hookimpl
def appliance_api_blueprints():
    return [api]


@hookimpl
def appliance_nav_tabs():
    return [Tab(TITLE, "peering.index", order=30, per_enterprise=True)]
