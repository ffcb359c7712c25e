"""Core: the user accounts of the selected enterprise."""

from appliance.api import BOOL, INT, NULL_STR, STR, obj
from appliance.db import db
from appliance.listing import Column
from appliance.models import Account, Enterprise

from . import people
from .client.service import xmpp_address


def as_dict(c: Account) -> dict:
    return {"id": c.id, "login": c.login, "first_name": c.first_name, "last_name": c.last_name,
            "email": c.email, "phone": c.phone, "department": c.department, "source": c.source,
            "source_label": c.source_label, "enabled": c.enabled,
            "xmpp_address": xmpp_address(c, db.session.get(Enterprise, c.enterprise_id))}


ACCOUNTS = people.People(Account, [
    *people.columns(Account),
    Column("login", "Login", Account.login),
    Column("source", "Source", Account.source_label),
], (Account.login, Account.last_name, Account.first_name, Account.email, Account.phone),
    as_dict)
ACCOUNT = obj(["id", "login"], id=INT, login=STR, first_name=NULL_STR, last_name=NULL_STR,
              email=NULL_STR, phone=NULL_STR, department=NULL_STR, source=NULL_STR,
              source_label=NULL_STR, enabled=BOOL, xmpp_address=NULL_STR)

people.tab(__name__, "accounts", ACCOUNTS, ACCOUNT, title="Accounts", order=25,
           description="User accounts of each enterprise.", api_path="accounts",
           summary="User accounts", search_hint="Search login, name, e-mail or phone",
           empty_text="No accounts yet. Synchronizers and provisioning bring them in.",
           row_link="client.account")
