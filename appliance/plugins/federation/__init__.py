"""Federation: iM and presence federation with external XMPP servers.

This plugin is a placeholder: it declares itself, its tab and its API root, and grows in its
own issue.
"""

from flask import Blueprint, jsonify

from appliance import hookimpl
from appliance.api import ApiBlueprint
from appliance.ui import Tab, render

TITLE = "Federation"
DESCRIPTION = "IM and presence federation with external XMPP servers."

bp = Blueprint("federation", __name__, url_prefix="/federation")
api = ApiBlueprint("federation_api", __name__, url_prefix="/federation", tag="federation")


@bp.get("/")
def index():
    return render("placeholder.html", title=TITLE, description=DESCRIPTION,
                  per_enterprise=False)


@api.op("", summary="What this plugin is")
def api_info():
    return jsonify(plugin="federation", title=TITLE, description=DESCRIPTION)


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
    return [Tab(TITLE, "federation.index", order=40, per_enterprise=False)]
