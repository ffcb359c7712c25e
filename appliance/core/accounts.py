"""Core: the user accounts of the selected enterprise."""

from appliance.api import INT, NULL_STR, STR, obj
from appliance.listing import Column
from appliance.models import Account

from . import people


def as_dict(c: Account) -> dict:
    return {"id": c.id, "login": c.login, "first_name": c.first_name, "last_name": c.last_name,
            "email": c.email, "phone": c.phone, "source": c.source,
            "source_label": c.source_label}


ACCOUNTS = people.People(Account, [
    *people.columns(Account),
    Column("login", "Login", Account.login),
    Column("source", "Source", Account.source_label),
], (Account.login, Account.last_name, Account.first_name, Account.email, Account.phone),
    as_dict)
ACCOUNT = obj(["id", "login"], id=INT, login=STR, first_name=NULL_STR, last_name=NULL_STR,
              email=NULL_STR, phone=NULL_STR, source=NULL_STR, source_label=NULL_STR)

people.tab(__name__, "accounts", ACCOUNTS, ACCOUNT, title="Accounts", order=25,
           description="User accounts of each enterprise.", api_path="accounts",
           summary="User accounts", search_hint="Search login, name, e-mail or phone",
           empty_text="No accounts yet. Synchronizers and provisioning bring them in.")
