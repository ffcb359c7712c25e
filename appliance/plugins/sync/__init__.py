"""Synchronization: AD/LDAP and PBX node synchronizers that fill an enterprise's accounts
and Corporate Directory (seed 003), and never remove accounts on a suspicious result."""

from pathlib import Path

from sqlalchemy import select

from appliance import files, hookimpl
from appliance.db import db
from appliance.host import host
from appliance.plugins import declare
from appliance.ui import Panel, Tab

from . import service, signin
from .api import accounts_api, api
from .home import appliance_home_summary, appliance_job_targets  # noqa: F401 (hooks)
from .jobs import SYNC
from .models import Synchronizer
from .pbx_csv import CsvConnector
from .views import bp

TITLE = "Synchronization"


@hookimpl
def appliance_enterprise_deleted(enterprise):
    """The enterprise's synchronizers go with it (rows by cascade; schedules here)."""
    jobs = host().jobs
    for syn in db.session.scalars(select(Synchronizer).where(
            Synchronizer.enterprise_id == enterprise.id)):
        jobs.unschedule(service.KIND, syn.source)


@hookimpl
def appliance_account_password(account, password):
    """An LDAP synchronizer's accounts sign in with their directory password."""
    return signin.check(account, password)


def open_export(path: str):
    """A node's CSV export, read only inside the import directory (files.open_admin_file)."""
    return files.open_admin_file(path, mode="rb")


declare(__name__, title=TITLE, description="AD/LDAP and PBX node synchronizers that keep an "
        "enterprise's accounts and Corporate Directory current.", blueprints=[bp],
        api_blueprints=[api, accounts_api],
        nav_tabs=[Tab(TITLE, "sync.index", order=50, per_enterprise=True)],
        account_panels=[Panel("Numbers and dynamic statuses", "sync.account_numbers")],
        job_kinds=[SYNC], migrations=Path(__file__).parent / "migrations",
        pbx_connectors=[CsvConnector(opener=open_export)])
