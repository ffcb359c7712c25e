"""The client service: the accounts sign in to the embedded XMPP service and find the
corporate directory as their roster. Part of the host, not a feature plugin: a profile that
leaves federation out still serves its users."""

from appliance.hookspecs import hookimpl
from appliance.plugins import declare
from appliance.ui import Panel

from . import link, service, views
from .api import api

declare(__name__, title="Client service",
        description="Sign-in to the XMPP service and the directory as every user's roster.",
        blueprints=[link.bp, views.bp], api_blueprints=[api],
        dashboard_panels=[Panel("Client service", "client.panel", order=5)])


@hookimpl
def appliance_contacts_imported(enterprise, source, result):
    service.directory_changed(enterprise)


@hookimpl
def appliance_accounts_imported(enterprise, source, result):
    service.directory_changed(enterprise)


@hookimpl
def appliance_accounts_removed(enterprise, source, logins):
    service.sign_out(enterprise, logins)
