"""The network elements API blueprint and the JSON shapes its operations answer with."""

from appliance.api import (
    BOOL,
    INT,
    NULL_INT,
    NULL_STR,
    STR,
    ApiBlueprint,
    array,
    error,
    invalid,
    obj,
)
from appliance.validation import MAX_INT, Invalid

api = ApiBlueprint("network_elements_api", __name__, url_prefix="/network-elements",
                   tag="network elements")

ELEMENT = obj(["id", "name", "platform", "methods"], id=INT, name=STR, platform=STR,
              address=NULL_STR, port=NULL_INT, username=NULL_STR, password_set=BOOL,
              description=NULL_STR, connector=NULL_STR, token_set=BOOL,
              methods=array(obj(["method", "label"], method=STR, label=STR, recommended=BOOL)))
LICENCE = obj(["type", "available", "in_use"], type=STR, available=INT, in_use=INT)
LICENCES_BODY = obj(["items"], items=array(obj(["type", "available"], type=STR, available={
    "type": "integer", "minimum": 0, "maximum": MAX_INT})))
NAMED = obj(["id", "name"], id=INT, name=STR, description=NULL_STR)
TEMPLATE = obj(["id", "name", "kind"], id=INT, name=STR, kind=STR, services=array(STR),
               location=NULL_STR, department=NULL_STR)
USER = obj(["id", "login"], id=INT, login=STR, first_name=NULL_STR, last_name=NULL_STR,
           email=NULL_STR, number=NULL_STR, element=NULL_STR, location=NULL_STR,
           department=NULL_STR, template=NULL_STR, template_kind=NULL_STR,
           services=array(STR), origin=NULL_STR)
CHANGE = obj(["id", "action", "state"], id=INT, element_id=NULL_INT, action=STR, login=NULL_STR,
             state=STR, attempts=INT, error=NULL_STR)
ENTRIES = obj(["entries"], entries=array({"type": "object"}))
BULK_BODY = {"x-media-type": "multipart/form-data", **obj(
    ["file"], file={"type": "string", "format": "binary"}, element=STR, template=STR,
    location=STR, department=STR)}
FLAG = {"type": "string", "enum": ["0", "1"]}


def refused(exc: Invalid):
    """422 for a broken rule; 409 when IDS is seeding and the change must wait."""
    if any(rule == "busy" for rule, _ in exc.errors.values()):
        return error(409, "busy", str(exc))
    return invalid(exc)
