"""Core: the user accounts of the selected enterprise."""

from flask import Blueprint

from appliance import hookimpl
from appliance.api import INT, NULL_STR, STR, ApiBlueprint, obj, paged
from appliance.listing import Column, query_params
from appliance.models import Account, Enterprise
from appliance.ui import Tab

from . import people

COLUMNS = [
    Column("last_name", "Last name", (Account.last_name, Account.first_name)),
    Column("first_name", "First name", (Account.first_name, Account.last_name)),
    Column("email", "E-mail", Account.email),
    Column("phone", "Phone", Account.phone),
    Column("login", "Login", Account.login),
    Column("source", "Source", Account.source_label),
]
SEARCH = (Account.login, Account.last_name, Account.first_name, Account.email, Account.phone)

bp = Blueprint("accounts", __name__)
api = ApiBlueprint("accounts_api", __name__, url_prefix="/enterprises", tag="accounts")


def page_of(ent: Enterprise, args, per_page: int, adjustable: bool = False):
    return people.page_of(Account, COLUMNS, SEARCH, ent, args, per_page, adjustable)


def as_dict(c: Account) -> dict:
    return {"id": c.id, "login": c.login, "first_name": c.first_name, "last_name": c.last_name,
            "email": c.email, "phone": c.phone, "source": c.source,
            "source_label": c.source_label}


@bp.get("/accounts")
def index():
    return people.people_page(
        page_of, heading="Accounts", endpoint="accounts.index",
        search_hint="Search login, name, e-mail or phone",
        empty_text="No accounts yet. Synchronizers and provisioning bring them in.")


ACCOUNT = obj(["id", "login"], id=INT, login=STR, first_name=NULL_STR, last_name=NULL_STR,
              email=NULL_STR, phone=NULL_STR, source=NULL_STR, source_label=NULL_STR)


@api.op("/<int:ent_id>/accounts", summary="User accounts (?q=, ?sort=, ?dir=, ?page=, "
        "?per_page=)", response=paged(ACCOUNT), query=query_params(COLUMNS))
def api_accounts(ent_id):
    return people.people_api(ent_id, page_of, as_dict)


@hookimpl
def appliance_metadata():
    return {"title": "Accounts", "description": "User accounts of each enterprise."}


@hookimpl
def appliance_blueprints():
    return [bp]


@hookimpl
def appliance_api_blueprints():
    return [api]


@hookimpl
def appliance_nav_tabs():
    return [Tab("Accounts", "accounts.index", order=25, per_enterprise=True)]
