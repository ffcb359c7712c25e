"""Federation: IM and presence federation through the embedded XMPP service (seed 002).
Not offered under the micloud-flex-gcp profile."""

from pathlib import Path

from appliance import hookimpl
from appliance.plugins import declare
from appliance.ui import Tab

from . import service
from .api import api
from .views import bp

TITLE = "Federation"

declare(__name__, title=TITLE, description="IM and presence federation with external XMPP "
        "servers through the embedded XMPP service (Prosody).", blueprints=[bp],
        api_blueprints=[api], nav_tabs=[Tab(TITLE, "federation.index", order=40)],
        migrations=Path(__file__).parent / "migrations")


@hookimpl
def appliance_xmpp_policy():
    """The federated domains, their routes, and whether federation is on."""
    return service.policy()


@hookimpl
def appliance_contacts_imported(enterprise, source, result):
    service.contacts_imported(enterprise, source)
