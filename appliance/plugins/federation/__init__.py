"""Federation: IM and presence federation through the embedded XMPP service (seed 002).
Not offered under the micloud-flex-gcp profile."""

from pathlib import Path

from appliance import hookimpl
from appliance.ui import Tab

from . import service
from .api import api
from .views import bp

TITLE = "Federation"


@hookimpl
def appliance_metadata():
    return {"title": TITLE, "description": "IM and presence federation with external XMPP "
            "servers through the embedded XMPP service (Prosody)."}


@hookimpl
def appliance_blueprints():
    return [bp]


@hookimpl
def appliance_api_blueprints():
    return [api]


@hookimpl
def appliance_nav_tabs():
    return [Tab(TITLE, "federation.index", order=40)]


@hookimpl
def appliance_migrations():
    return str(Path(__file__).parent / "migrations")


@hookimpl
def appliance_contacts_imported(enterprise, source, result):
    service.contacts_imported(enterprise, source)
