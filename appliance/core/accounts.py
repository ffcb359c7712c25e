"""Core: the user accounts of the selected enterprise."""

from flask import Blueprint, current_app, jsonify, request
from sqlalchemy import select

from appliance import hookimpl
from appliance.api import INT, NULL_STR, STR, ApiBlueprint, error, obj, paged
from appliance.db import db
from appliance.listing import Column, paginate, query_params
from appliance.models import Account, Enterprise
from appliance.ui import Tab, current_enterprise, render

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
    stmt = select(Account).where(Account.enterprise_id == ent.id)
    return paginate(stmt, COLUMNS, args, "last_name", search=SEARCH, per_page=per_page,
                    tiebreak=Account.id, adjustable=adjustable)


def as_dict(c: Account) -> dict:
    return {"id": c.id, "login": c.login, "first_name": c.first_name, "last_name": c.last_name,
            "email": c.email, "phone": c.phone, "source": c.source,
            "source_label": c.source_label}


@bp.get("/accounts")
def index():
    ent = current_enterprise()
    page = page_of(ent, request.args, current_app.config["PAGE_SIZE"]) if ent else None
    return render("_people.html", block="table", page=page, heading="Accounts",
                  endpoint="accounts.index", search_hint="Search login, name, e-mail or phone",
                  empty_text="No accounts yet. Synchronizers and provisioning bring them in.")


ACCOUNT = obj(["id", "login"], id=INT, login=STR, first_name=NULL_STR, last_name=NULL_STR,
              email=NULL_STR, phone=NULL_STR, source=NULL_STR, source_label=NULL_STR)


@api.op("/<int:ent_id>/accounts", summary="User accounts (?q=, ?sort=, ?dir=, ?page=, "
        "?per_page=)", response=paged(ACCOUNT), query=query_params(COLUMNS))
def api_accounts(ent_id):
    ent = db.session.get(Enterprise, ent_id)
    if ent is None:
        return error(404, "not_found", "No such enterprise")
    page = page_of(ent, request.args, 100, adjustable=True)
    return jsonify(items=[as_dict(c) for c in page.rows], total=page.total, page=page.page,
                   pages=page.pages)


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
