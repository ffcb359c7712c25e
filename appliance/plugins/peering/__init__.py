"""Peering: peer servers of an enterprise, the peer link between appliances, and contact
sync from peers (seeds 000 and 001). Not offered under the micloud-flex-gcp profile."""

from pathlib import Path

from sqlalchemy import select

from appliance import hookimpl
from appliance.config import Setting
from appliance.db import db
from appliance.host import host
from appliance.plugins import declare
from appliance.ui import Tab

from . import service
from .api import api
from .home import appliance_home_summary, appliance_job_targets  # noqa: F401 (hooks)
from .jobs import STATUS, SYNC
from .link import link
from .models import Peer
from .views import bp

TITLE = "Peering"

declare(__name__, title=TITLE, description="Peer servers (other MiCollab Client Services and "
        "external IM servers) and the contacts they share with an enterprise.",
        blueprints=[bp, link], api_blueprints=[api],
        nav_tabs=[Tab(TITLE, "peering.index", order=30, per_enterprise=True)],
        job_kinds=[SYNC, STATUS], migrations=Path(__file__).parent / "migrations",
        settings=[Setting("change_feed", default=True,
                          help="Serve peers what changed since their last sync (off: whole "
                               "pages only, as peer links without the feed answer)")])


@hookimpl
def appliance_enterprise_deleted(enterprise):
    """The enterprise's peers go with it (rows by cascade; their schedules here)."""
    jobs = host().jobs
    for peer in db.session.scalars(select(Peer).where(Peer.enterprise_id == enterprise.id)):
        jobs.unschedule(service.KIND, peer.source)
