"""The network elements API blueprint and the JSON shapes its operations answer with."""

from appliance.api import BOOL, INT, NULL_INT, NULL_STR, STR, ApiBlueprint, array, obj
from appliance.validation import MAX_INT, Schema

from . import rules

api = ApiBlueprint("network_elements_api", __name__, url_prefix="/network-elements",
                   tag="network elements")

ELEMENT = obj(["id", "name", "platform", "methods"], id=INT, name=STR, platform=STR,
              address=NULL_STR, port=NULL_INT, username=NULL_STR, password_set=BOOL,
              description=NULL_STR, connector=NULL_STR, token_set=BOOL,
              methods=array(obj(["method", "label"], method=STR, label=STR, recommended=BOOL)),
              enterprise_id=NULL_INT,
              accounts={**obj(["enterprise_id", "accounts", "conflicts"], enterprise_id=INT,
                              enterprise=STR, accounts=INT, conflicts=array(obj(
                                  ["login", "account_of"], login=STR, account_of=STR))),
                        "type": ["object", "null"],
                        "description": "Added or changed: the accounts its users are in its "
                        "enterprise, and the users left without one because another "
                        "source's account has their login (null: no enterprise)"})
LICENCE = obj(["type", "available", "in_use"], type=STR, available=INT, in_use=INT)
LICENCES_BODY = obj(["items"], items=array(obj(["type", "available"], type=STR, available={
    "type": "integer", "minimum": 0, "maximum": MAX_INT})))
NAMED = obj(["id", "name"], id=INT, name=STR, description=NULL_STR)
TEMPLATE = obj(["id", "name", "kind"], id=INT, name=STR, kind=STR, services=array(STR),
               location=NULL_STR, department=NULL_STR)
USER = obj(["id", "login"], id=INT, login=STR, first_name=NULL_STR, last_name=NULL_STR,
           email=NULL_STR, number=NULL_STR, element=NULL_STR, location=NULL_STR,
           department=NULL_STR, template=NULL_STR, template_kind=NULL_STR,
           services=array(STR), origin=NULL_STR, enterprise=NULL_STR,
           account_id={**NULL_INT, "description": "Provisioned or changed: the user's account "
                       "in its element's enterprise (set its XMPP password at "
                       "/api/v1/accounts/{id}/xmpp-password)"},
           account_conflict={**NULL_STR, "description": "Why the user has no account: "
                             "another source's account of the enterprise has its login"})
CHANGE = obj(["id", "action", "state"], id=INT, element_id=NULL_INT, action=STR, login=NULL_STR,
             state=STR, attempts=INT, error=NULL_STR)
ENTRIES = obj(["entries"], entries=array({"type": "object"}))
BULK_BODY = {"x-media-type": "multipart/form-data", **obj(
    ["file"], file={"type": "string", "format": "binary"}, element=STR, template=STR,
    location=STR, department=STR)}
FLAG = {"type": "string", "enum": ["0", "1"]}



def _with_services(schema: Schema, description: str) -> dict:
    """`schema`'s JSON schema, its services also a list of names (services_of reads both)."""
    doc = schema.json_schema()
    names = array({"type": "string", "enum": [*rules.SERVICES, rules.NONE]})
    text = {"type": "string", "maxLength": 512,
            "description": "Service names separated by semicolons"}
    return {**doc, "properties": {**doc["properties"], "services": {
        "title": "Services", "description": description, "oneOf": [names, text]}}}


#: A template or role: services is a list (or 'A;B'); empty: none.
TEMPLATE_BODY = _with_services(rules.TEMPLATE, "The services its users get")
#: A user to provision: what it leaves out comes from its template or role.
USER_BODY = _with_services(rules.USER, "Empty: the template's or role's; none: no services")
#: A change to a user: fields left out keep their value; [] or none: no services, a null
#: location or department: none.
USER_UPDATE_BODY = _with_services(rules.USER.optional(), "[] or none: no services")
for _name in ("location", "department"):
    USER_UPDATE_BODY["properties"][_name] = {**USER_UPDATE_BODY["properties"][_name],
                                             "type": ["string", "null"]}
