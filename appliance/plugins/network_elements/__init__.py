"""Network Elements and user provisioning (seed 004): platforms, licences, the site's
locations and departments, templates and roles, users, bulk import, flow-through
provisioning, the management-platform endpoint and IDS."""

from pathlib import Path

from appliance import hookimpl
from appliance.ui import Tab

# api_users and views_users add their routes to `api` and `bp`.
from . import api_users, views_users  # noqa: F401
from .api import api
from .flow import DELIVER, FileConnector
from .ids import IDS
from .imports import BULK, TIDY
from .platform import platform
from .views import bp

TITLE = "Network Elements"


@hookimpl
def appliance_metadata():
    return {"title": TITLE, "description": "Network elements and user provisioning: "
            "licences, locations, departments, templates and roles, users, bulk import."}


@hookimpl
def appliance_blueprints():
    return [bp]


@hookimpl
def appliance_api_blueprints():
    return [api, platform]


@hookimpl
def appliance_nav_tabs():
    return [Tab(TITLE, "network_elements.index", order=60)]


@hookimpl
def appliance_job_kinds():
    return [DELIVER, IDS, BULK, TIDY]


@hookimpl
def appliance_migrations():
    return str(Path(__file__).parent / "migrations")


@hookimpl
def appliance_flow_connectors():
    return [FileConnector()]
