"""Schemas and lookups the service modules share: field rules, names, services."""

from sqlalchemy import select

from appliance.db import db
from appliance.validation import (
    MAX_INT,
    Field,
    Invalid,
    Rule,
    Schema,
    email,
    host_or_ip,
    int_range,
    length,
    max_length,
    one_of,
    only,
    valid_characters,
)

from .models import PLATFORMS

#: Services a user can have, each consuming one licence of the same name.
SERVICES = ("MiCollab Client", "NuPoint Voice Mail", "Audio Web Video", "Teleworker")

ELEMENT = Schema(
    "NetworkElement",
    Field("name", "Name", (length(1, 64), valid_characters())),
    Field("platform", "Platform", (one_of(PLATFORMS),)),
    Field("address", "FQDN or IP address", (host_or_ip(),)),
    Field("port", "Management port", (int_range(1, 65535),), required=False, type="integer",
          help="Empty: the platform's default."),
    Field("username", "Administrator username", (max_length(64), valid_characters()),
          required=False),
    Field("password", "Administrator password", (max_length(128),), required=False,
          secret=True, help="Never shown again; leave empty to keep the stored one."),
    Field("description", "Description", (max_length(255), valid_characters()),
          required=False),
    Field("connector", "Flow-through connector", (max_length(32),), required=False,
          help="MiVoice Business: what delivers its users' changes. file, the built-in one, "
          "writes them as import files; plugins add others. Empty: keep it, or file."),
    Field("enterprise_id", "Enterprise", (int_range(1, MAX_INT),), required=False,
          type="integer", help="The enterprise whose accounts the users provisioned here "
          "are: they sign in to its XMPP service once a password is set for them. Empty: "
          "none."),
)

#: A change to an element: the fields it names.
ELEMENT_UPDATE = ELEMENT.optional()


def not_none() -> Rule:
    def check(label, v):
        if v.lower() == NONE:
            return f"{label} cannot be {NONE}: users and import files use it to mean no " \
                   "location or department"
    return Rule("reserved", check)


NAMED = Schema(
    "SiteItem",
    Field("name", "Name", (length(1, 64), valid_characters(), not_none())),
    Field("description", "Description", (max_length(255), valid_characters()),
          required=False),
)
TEMPLATE = Schema(
    "UserTemplate",
    Field("name", "Name", (length(1, 64), valid_characters())),
    Field("kind", "Kind", (one_of(("template", "role")),)),
    Field("location", "Location", (max_length(64),), required=False),
    Field("department", "Department", (max_length(64),), required=False),
)
USER = Schema(
    "ProvisionedUser",
    Field("login", "Login", (length(1, 128), only(r"[A-Za-z0-9._@+-]",
          "letters, digits and . _ @ + -"))),
    Field("first_name", "First name", (max_length(64), valid_characters()), required=False),
    Field("last_name", "Last name", (length(1, 64), valid_characters())),
    Field("email", "E-mail", (max_length(255), valid_characters(), email()), required=False),
    Field("number", "Directory number", (max_length(32), only(r"[0-9*#+]",
          "digits, *, # and +")), required=False),
    Field("element", "Network element", (max_length(64),)),
    Field("location", "Location", (max_length(64),), required=False,
          help="Empty: the template's or role's; none: no location."),
    Field("department", "Department", (max_length(64),), required=False,
          help="Empty: the template's or role's; none: no department."),
    Field("template", "Template or role", (max_length(64),), required=False),
    Field("services", "Services", (max_length(512),), required=False,
          help="Service names separated by semicolons; empty: the template's or role's; "
          "none: no services."),
)


def by_name(model, name: str):
    """The row named `name`, ignoring case (in Python: SQLite's lower() folds only ASCII).
    These tables are small: the site's elements, locations, departments and templates."""
    want = name.casefold()
    return next((r for r in db.session.scalars(select(model)) if r.name.casefold() == want),
                None)


#: A user's services, location or department written as this mean "none", where an empty
#: value means "the template's or role's": so an exported user re-imports as the same user.
NONE = "none"


def import_cells(location: str | None, department: str | None, template: str | None,
                 services: list[str]) -> tuple[str, str, str]:
    """A user's location, department and services as import files and forms spell them: an
    empty one is NONE where the user's template would otherwise fill it."""
    empty = NONE if template else ""
    return location or empty, department or empty, ";".join(services) or NONE


def services_of(text_or_list) -> list[str]:
    """Service names from 'A;B' or a list (NONE: no services); unknown names raise Invalid."""
    if isinstance(text_or_list, list):
        items = text_or_list
    elif text_or_list is None or isinstance(text_or_list, str):
        items = [s.strip() for s in (text_or_list or "").split(";")]
    else:
        items = [text_or_list]
    if not all(isinstance(s, str) for s in items):
        raise Invalid({"services": ("services", "Services must be service names: a list, "
                                                "or text separated by semicolons")})
    items = [s for s in items if s]
    if NONE in (s.lower() for s in items):
        if len(items) > 1:
            raise Invalid({"services": ("none_alone", f"Services: {NONE} means no "
                           "services, and cannot be listed with service names")})
        return []
    lookup = {s.lower(): s for s in SERVICES}
    bad = [s for s in items if s.lower() not in lookup]
    if bad:
        raise Invalid({"services": ("unknown_service", f"Unknown service {bad[0]}: use "
                       f"{', '.join(SERVICES)}")})
    return sorted({lookup[s.lower()] for s in items}, key=SERVICES.index)


def _ref(model, name: str | None, field: str, errors: dict):
    if not name:
        return None
    row = by_name(model, name)
    if row is None:
        errors[field] = ("unknown", f"Unknown {field} {name}: add it first")
    return row
