"""Core: the Corporate Directory of the selected enterprise."""

from flask import Blueprint, current_app, jsonify, request
from sqlalchemy import select

from appliance import hookimpl
from appliance.api import BOOL, INT, NULL_STR, ApiBlueprint, error, obj, paged
from appliance.db import db
from appliance.listing import Column, paginate, query_params
from appliance.models import Contact, Enterprise
from appliance.ui import Tab, current_enterprise, render

COLUMNS = [
    Column("last_name", "Last name", (Contact.last_name, Contact.first_name)),
    Column("first_name", "First name", (Contact.first_name, Contact.last_name)),
    Column("email", "E-mail", Contact.email),
    Column("phone", "Phone", Contact.phone),
    Column("source", "Source", Contact.source_label),
    Column("federated", "Federated", Contact.federated),
]
SEARCH = (Contact.last_name, Contact.first_name, Contact.email, Contact.phone)

bp = Blueprint("directory", __name__)
api = ApiBlueprint("directory_api", __name__, url_prefix="/enterprises", tag="directory")


def page_of(ent: Enterprise, args, per_page: int, adjustable: bool = False):
    stmt = select(Contact).where(Contact.enterprise_id == ent.id)
    return paginate(stmt, COLUMNS, args, "last_name", search=SEARCH, per_page=per_page,
                    tiebreak=Contact.id, adjustable=adjustable)


def as_dict(c: Contact) -> dict:
    return {"id": c.id, "first_name": c.first_name, "last_name": c.last_name, "email": c.email,
            "phone": c.phone, "im_address": c.im_address, "federated": c.federated,
            "source": c.source, "source_label": c.source_label}


@bp.get("/directory")
def index():
    ent = current_enterprise()
    page = page_of(ent, request.args, current_app.config["PAGE_SIZE"]) if ent else None
    return render("_people.html", block="table", page=page, heading="Corporate Directory",
                  endpoint="directory.index", search_hint="Search name, e-mail or phone",
                  empty_text="No contacts yet. Synchronizers and peers bring them in.")


CONTACT = obj(["id"], id=INT, first_name=NULL_STR, last_name=NULL_STR, email=NULL_STR,
              phone=NULL_STR, im_address=NULL_STR, federated=BOOL, source=NULL_STR,
              source_label=NULL_STR)


@api.op("/<int:ent_id>/contacts", summary="Corporate Directory (?q=, ?sort=, ?dir=, ?page=, "
        "?per_page=)", response=paged(CONTACT), query=query_params(COLUMNS))
def api_contacts(ent_id):
    ent = db.session.get(Enterprise, ent_id)
    if ent is None:
        return error(404, "not_found", "No such enterprise")
    page = page_of(ent, request.args, 100, adjustable=True)
    return jsonify(items=[as_dict(c) for c in page.rows], total=page.total, page=page.page,
                   pages=page.pages)


@hookimpl
def appliance_metadata():
    return {"title": "Corporate Directory", "description": "Contacts of each enterprise."}


@hookimpl
def appliance_blueprints():
    return [bp]


@hookimpl
def appliance_api_blueprints():
    return [api]


@hookimpl
def appliance_nav_tabs():
    return [Tab("Corporate Directory", "directory.index", order=20, per_enterprise=True)]
