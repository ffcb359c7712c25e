"""Network Elements: network elements and user provisioning.

This plugin is a placeholder: it declares itself, its tab and its API root, and grows in its
own issue.
"""

from flask import Blueprint, jsonify

from appliance import hookimpl
from appliance.api import ApiBlueprint
from appliance.ui import Tab, render

TITLE = "Network Elements"
DESCRIPTION = "Network elements and user provisioning."

bp = Blueprint("network_elements", __name__, url_prefix="/network-elements")
api = ApiBlueprint("network_elements_api", __name__, url_prefix="/network-elements",
                   tag="network_elements")


@bp.get("/")
def index():
    return render("placeholder.html", title=TITLE, description=DESCRIPTION,
                  per_enterprise=True)


@api.op("", summary="What this plugin is")
def api_info():
    return jsonify(plugin="network_elements", title=TITLE, description=DESCRIPTION)


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
    return [Tab(TITLE, "network_elements.index", order=60, per_enterprise=True)]
