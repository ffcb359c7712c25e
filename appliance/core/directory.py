"""Core: the Corporate Directory of the selected enterprise."""

from appliance.api import BOOL, INT, NULL_STR, obj
from appliance.listing import Column
from appliance.models import Contact

from . import people


def as_dict(c: Contact) -> dict:
    return {"id": c.id, "first_name": c.first_name, "last_name": c.last_name, "email": c.email,
            "phone": c.phone, "department": c.department, "im_address": c.im_address,
            "federated": c.federated,
            "source": c.source, "source_label": c.source_label}


CONTACTS = people.People(Contact, [
    *people.columns(Contact),
    Column("source", "Source", Contact.source_label),
    Column("federated", "Federated", Contact.federated),
], (Contact.last_name, Contact.first_name, Contact.email, Contact.phone), as_dict)
CONTACT = obj(["id"], id=INT, first_name=NULL_STR, last_name=NULL_STR, email=NULL_STR,
              phone=NULL_STR, department=NULL_STR, im_address=NULL_STR, federated=BOOL,
              source=NULL_STR, source_label=NULL_STR)

people.tab(__name__, "directory", CONTACTS, CONTACT, title="Corporate Directory", order=20,
           description="Contacts of each enterprise.", api_path="contacts",
           summary="Corporate Directory", search_hint="Search name, e-mail or phone",
           empty_text="No contacts yet. Synchronizers and peers bring them in.")
