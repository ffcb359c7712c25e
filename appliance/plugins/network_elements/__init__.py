"""Network Elements and user provisioning (seed 004): platforms, licences, the site's
locations and departments, templates and roles, users, bulk import, flow-through
provisioning, the management-platform endpoint and IDS."""

from pathlib import Path

from appliance.plugins import declare
from appliance.ui import Tab

# api_users and views_users add their routes to `api` and `bp`.
from . import api_users, views_users  # noqa: F401
from .api import api
from .flow import DELIVER, FileConnector
from .home import appliance_home_summary, appliance_job_targets  # noqa: F401 (hooks)
from .ids import IDS
from .imports import BULK, TIDY
from .platform import platform
from .views import bp

TITLE = "Network Elements"

declare(__name__, title=TITLE, description="Network elements and user provisioning: "
        "licences, locations, departments, templates and roles, users, bulk import.",
        blueprints=[bp], api_blueprints=[api, platform],
        nav_tabs=[Tab(TITLE, "network_elements.index", order=60)],
        job_kinds=[DELIVER, IDS, BULK, TIDY], migrations=Path(__file__).parent / "migrations",
        flow_connectors=[FileConnector()])
