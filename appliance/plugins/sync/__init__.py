"""Synchronization: accounts and directory from AD/LDAP and PBX nodes.

This plugin is a placeholder: it declares itself, its tab and its API root, and grows in its
own issue.
"""

from flask import Blueprint, jsonify

from appliance import hookimpl
from appliance.api import ApiBlueprint
from appliance.ui import Tab, render

TITLE = "Synchronization"
DESCRIPTION = "Accounts and directory from AD/LDAP and PBX nodes."

bp = Blueprint("sync", __name__, url_prefix="/sync")
api = ApiBlueprint("sync_api", __name__, url_prefix="/sync", tag="sync")


@bp.get("/")
def index():
    return render("placeholder.html", title=TITLE, description=DESCRIPTION,
                  per_enterprise=True)


@api.op("", summary="What this plugin is")
def api_info():
    return jsonify(plugin="sync", title=TITLE, description=DESCRIPTION)


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
    return [Tab(TITLE, "sync.index", order=50, per_enterprise=True)]
