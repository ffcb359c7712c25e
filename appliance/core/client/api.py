"""An account's sign-in as JSON under /api/v1/accounts."""

from flask import jsonify

from appliance.api import BOOL, INT, NULL_STR, STR, TIME, ApiBlueprint, json_object, obj

from . import accounts

api = ApiBlueprint("client_api", __name__, url_prefix="/accounts", tag="accounts")

ACCOUNT = obj(["id", "login", "enabled", "xmpp_address", "sign_in"], id=INT,
              enterprise_id=INT, login=STR, first_name=STR, last_name=STR, email=STR,
              phone=STR, department=STR, source=STR, source_label=STR, enabled=BOOL,
              xmpp_address=NULL_STR,
              sign_in={"type": "string", "enum": ["directory", "password"]},
              password_set=BOOL,
              online={"type": ["boolean", "null"],
                      "description": "Signed in now; null when the XMPP service has not "
                                     "reported lately"})
LINK = obj(["url", "expires_at"], url=STR, expires_at={"type": "string", "format": "date-time"})


@api.op("/<int:account_id>", summary="One account: its XMPP address and how it signs in "
        "(with its directory password, or one set here)", response=ACCOUNT)
def get_account(account_id):
    return jsonify(accounts.as_dict(accounts.account(account_id)))


@api.op("/<int:account_id>", "PUT", body=accounts.ACCOUNT.optional(), response=ACCOUNT,
        summary="Enable or disable sign-in (disabling ends the account's sessions)")
def update_account(account_id):
    acc = accounts.update(accounts.account(account_id), json_object())
    return jsonify(accounts.as_dict(acc))


@api.op("/<int:account_id>/xmpp-password", "PUT", body=accounts.SET_PASSWORD, status=204,
        errors=(409,), summary="Set the XMPP password of an account that does not sign in "
        "with a directory password (409 for one that does)")
def put_password(account_id):
    accounts.set_password(accounts.account(account_id), json_object())
    return "", 204


@api.op("/<int:account_id>/password-link", "POST", status=201, response=LINK, errors=(409,),
        summary="A one-time link with which the account's user sets the XMPP password "
        "(replaces earlier links; valid 72 hours)")
def post_link(account_id):
    return jsonify(accounts.make_link(accounts.account(account_id))), 201


SESSIONS = obj(["fresh", "users_online"], fresh=BOOL, reported_at=TIME,
               users_online=obj(), service=obj())


@api.op("/online", summary="The XMPP service: its state, when it last reported who is signed "
        "in (fresh: within 90 s), and users signed in per enterprise id", response=SESSIONS)
def online():
    return jsonify(accounts.online_summary())
