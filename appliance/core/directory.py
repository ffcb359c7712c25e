"""Core: the Corporate Directory of the selected enterprise."""

from flask import Blueprint

from appliance import hookimpl
from appliance.api import BOOL, INT, NULL_STR, ApiBlueprint, obj, paged
from appliance.listing import Column, query_params
from appliance.models import Contact, Enterprise
from appliance.ui import Tab

from . import people

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
    return people.page_of(Contact, COLUMNS, SEARCH, ent, args, per_page, adjustable)


def as_dict(c: Contact) -> dict:
    return {"id": c.id, "first_name": c.first_name, "last_name": c.last_name, "email": c.email,
            "phone": c.phone, "im_address": c.im_address, "federated": c.federated,
            "source": c.source, "source_label": c.source_label}


@bp.get("/directory")
def index():
    return people.people_page(
        page_of, heading="Corporate Directory", endpoint="directory.index",
        search_hint="Search name, e-mail or phone",
        empty_text="No contacts yet. Synchronizers and peers bring them in.")


CONTACT = obj(["id"], id=INT, first_name=NULL_STR, last_name=NULL_STR, email=NULL_STR,
              phone=NULL_STR, im_address=NULL_STR, federated=BOOL, source=NULL_STR,
              source_label=NULL_STR)


@api.op("/<int:ent_id>/contacts", summary="Corporate Directory (?q=, ?sort=, ?dir=, ?page=, "
        "?per_page=)", response=paged(CONTACT), query=query_params(COLUMNS))
def api_contacts(ent_id):
    return people.people_api(ent_id, page_of, as_dict)


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
