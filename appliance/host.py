"""What the host offers plugins: one typed handle on the running app's services.

A plugin reaches the job runner, the plugin list, the tabs and the profile's flags with
`host()`, never through `current_app.extensions`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from flask import current_app

if TYPE_CHECKING:
    from appliance.jobs import Jobs
    from appliance.plugins import Plugins
    from appliance.ui import Panel, Tab

KEY = "appliance"  # the app.extensions key the host keeps itself under


@dataclass
class Host:
    """The host's services of one app (plugins, tabs, panels, API blueprints, jobs)."""

    plugins: Plugins
    tabs: list[Tab] = field(default_factory=list)
    panels: list[Panel] = field(default_factory=list)
    account_panels: list[Panel] = field(default_factory=list)  # on each account's page
    api_blueprints: list = field(default_factory=list)
    jobs: Jobs | None = None
    xmpp: object = None  # appliance.xmpp.supervisor.Supervisor while `serve` runs Prosody

    @property
    def flags(self) -> dict:
        return self.plugins.flags


def host() -> Host:
    """The host of the current app."""
    return current_app.extensions[KEY]
