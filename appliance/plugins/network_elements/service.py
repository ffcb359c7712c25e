"""Network elements and users: the one place that validates and stores them.

Pages, the API, bulk import, IDS and the management-platform endpoint all go through these
functions, so a rule (a licence, a department in use, a platform's methods) holds everywhere.
"""

import hashlib
import json
import secrets
from collections import Counter
from collections.abc import Mapping

from sqlalchemy import func, select

from appliance import audit, vault
from appliance.db import db
from appliance.directory import remove_source
from appliance.host import host
from appliance.models import Contact, Enterprise
from appliance.validation import (
    MAX_INT,
    Field,
    Invalid,
    Rule,
    Schema,
    host_or_ip,
    int_range,
    length,
    max_length,
    one_of,
    only,
    valid_characters,
)

from . import flow
from .models import (
    FLOW,
    IDS_SEEDS,
    METHOD_LABELS,
    METHODS,
    PLATFORMS,
    RECOMMENDED,
    Change,
    Department,
    Element,
    IdsSource,
    Licence,
    Location,
    Template,
    User,
)

#: Services a user can have, each consuming one licence of the same name.
SERVICES = ("MiCollab Client", "NuPoint Voice Mail", "Audio Web Video", "Teleworker")

ELEMENT = Schema(
    "NetworkElement",
    Field("name", "Name", (length(1, 64), valid_characters())),
    Field("platform", "Platform", (one_of(PLATFORMS),)),
    Field("address", "FQDN or IP address", (host_or_ip(),)),
    Field("port", "Management port", (int_range(1, 65535),), required=False, type="integer"),
    Field("username", "Administrator username", (max_length(64), valid_characters()),
          required=False),
    Field("password", "Administrator password", (max_length(128),), required=False,
          secret=True, help="Never shown again; leave empty to keep the stored one."),
    Field("description", "Description", (max_length(255), valid_characters()),
          required=False),
    Field("connector", "Flow-through connector", (max_length(32),), required=False,
          help="MiVoice Business: what delivers its users' changes (file: the built-in one; "
          "plugins add others). Empty: keep it, or file."),
)


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
    Field("email", "E-mail", (max_length(255), valid_characters()), required=False),
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


# --- elements --------------------------------------------------------------------------------


def element_dict(e: Element) -> dict:
    return {"id": e.id, "name": e.name, "platform": e.platform, "address": e.address,
            "port": e.port, "username": e.username, "password_set": bool(e.password_sealed),
            "description": e.description, "connector": e.connector,
            "methods": [{"method": m, "label": METHOD_LABELS[m],
                         "recommended": RECOMMENDED.get(e.platform) == m} for m in e.methods],
            "token_set": bool(e.token_digest)}


def save_element(data, e: Element | None = None) -> Element:
    values = ELEMENT.validate(data)
    clash = by_name(Element, values["name"])
    if clash is not None and clash is not e:
        raise Invalid({"name": ("unique", "A network element with this name exists")})
    if e is not None and values["platform"] != e.platform:
        if n := _users_on(e):
            raise Invalid({"platform": ("in_use", f"{n} user(s) live on {e.name}: move them "
                           "before changing its platform")})
        seeds = IDS_SEEDS.get(e.platform)
        if db.session.get(IdsSource, e.id) and IDS_SEEDS.get(values["platform"]) != seeds:
            raise Invalid({"platform": ("in_use", f"IDS of {e.name} seeds {seeds}, which "
                           f"{values['platform']} does not: remove IDS before changing its "
                           "platform")})
    values["connector"] = values.get("connector") or (e.connector if e else "file")
    if values["connector"] not in (names := flow.connectors()):
        raise Invalid({"connector": ("one_of", f"No flow-through connector named "
                       f"{values['connector']}: use {', '.join(sorted(names))}")})
    password = vault.secret_for(
        values.pop("password", "") or "", e.password_sealed if e else "",
        (e.address.lower(), e.port) if e else None, (values["address"].lower(), values["port"]),
        "password", "Administrator password: type it again for this address and port; the "
        "stored one is only sent to the element it was typed for")
    before = element_dict(e) if e else None
    creating = e is None
    if creating:
        e = Element()
        db.session.add(e)
    for k, v in values.items():
        setattr(e, k, v if v is not None or k == "port" else "")
    e.password_sealed = vault.seal(password) if password else ""
    db.session.flush()
    audit.record("create" if creating else "update", "network element", e.id, e.name,
                 before=before, after=element_dict(e), commit=False)
    db.session.commit()
    return e


def _users_on(e: Element) -> int:
    return db.session.scalar(select(func.count()).select_from(User)
                             .where(User.element_id == e.id))


def element_impact(e: Element) -> dict:
    """What deleting `e` also deletes, for the confirmation (users, and changes that have not
    reached it, keep it from going)."""
    src = db.session.get(IdsSource, e.id)
    ent, contacts = seeded(src)
    return {"users": _users_on(e), "ids": src is not None, "ids_contacts": contacts,
            "ids_enterprise": ent.name if ent else None}


def undelivered(e: Element) -> int:
    """How many of the element's flow-through changes are pending or failed."""
    return db.session.scalar(select(func.count()).select_from(Change).where(
        Change.element_id == e.id, Change.state.in_(("pending", "failed"))))


def delete_element(e: Element) -> dict:
    """Delete an element with its IDS set-up and the contacts IDS seeded (and its delivered
    and discarded flow-through history). Refused while users live on it, while changes have
    not reached it (its users' deletes among them), or while IDS seeds. Returns what went."""
    if n := _users_on(e):
        raise Invalid({"element": ("in_use", f"{e.name} cannot be deleted: {n} user(s) live on "
                       "it")})
    if n := undelivered(e):
        raise Invalid({"element": ("undelivered", f"{e.name} cannot be deleted yet: {n} "
                       "flow-through change(s) have not reached it. Delete it once they are "
                       "delivered, or discard the failed ones on the Flow Through page")})
    _not_seeding(e, "delete the element")
    gone = element_impact(e)
    audit.record("delete", "network element", e.id, e.name, before=element_dict(e) | gone,
                 commit=False)
    src = db.session.get(IdsSource, e.id)
    _remove_seeded(src, seeded(src)[0], e)
    return gone


def remove_ids(e: Element) -> int:
    """Remove an element's IDS set-up and the Corporate Directory contacts it seeded (users it
    seeded stay: they are provisioned users now); return how many contacts went."""
    src = db.session.get(IdsSource, e.id)
    if src is None:
        return 0
    _not_seeding(e, "remove IDS")
    ent, n = seeded(src)
    audit.record("delete", "ids", e.id, e.name, before={"contacts": n}, commit=False)
    _remove_seeded(src, ent)
    return n


def ids_running(e: Element) -> bool:
    """Whether IDS is seeding from the element's directory now."""
    return host().jobs.active(f"ids:{e.id}") is not None


def _not_seeding(e: Element, what: str) -> None:
    """Refuse `what` while IDS runs: the run would bring back what the change removes."""
    if ids_running(e):
        raise Invalid({"element": ("busy", f"IDS is seeding from {e.name}'s directory: {what} "
                       "once that ends")})


def seeded(src: IdsSource | None) -> tuple[Enterprise | None, int]:
    """The enterprise whose Corporate Directory an IDS set-up seeds, and how many contacts
    it holds from it."""
    ent = db.session.get(Enterprise, src.enterprise_id) if src and src.enterprise_id else None
    if ent is None:
        return None, 0
    return ent, db.session.scalar(select(func.count()).select_from(Contact).where(
        Contact.enterprise_id == ent.id, Contact.source == src.source))


def _remove_seeded(src: IdsSource | None, ent: Enterprise | None, *more) -> None:
    """Delete `src` (then the `more` rows) and the contacts it seeded into `ent`, and commit
    with whatever else the session holds."""
    source = src.source if src is not None else ""
    for row in (src, *more):
        if row is not None:
            db.session.delete(row)
            db.session.flush()
    if ent is not None:
        remove_source(Contact, ent, source)  # commits, and tells other plugins
    else:
        db.session.commit()


def new_platform_token(e: Element) -> str:
    """The token the element's management platform provisions with; shown once."""
    token = "ane_" + secrets.token_urlsafe(32)
    e.token_digest = hashlib.sha256(token.encode()).hexdigest()
    audit.record("update", "network element", e.id, e.name, after={"token": "replaced"},
                 commit=False)
    db.session.commit()
    return token


def element_for_token(token: str) -> Element | None:
    if not token:
        return None
    digest = hashlib.sha256(token.encode()).hexdigest()
    return db.session.scalar(select(Element).where(Element.token_digest == digest))


# --- locations, departments, templates -------------------------------------------------------


def save_named(model, data, row=None):
    values = NAMED.validate(data)
    clash = by_name(model, values["name"])
    if clash is not None and clash is not row:
        raise Invalid({"name": ("unique", f"A {model.__name__.lower()} with this name exists")})
    creating = row is None
    if creating:
        row = model()
        db.session.add(row)
    row.name, row.description = values["name"], values.get("description") or ""
    db.session.flush()
    audit.record("create" if creating else "update", model.__name__.lower(), row.id, row.name,
                 after=values, commit=False)
    db.session.commit()
    return row


def used_by(row) -> list[str]:
    """Who uses a location or department (users and templates), for the refusal message."""
    col = "location_id" if isinstance(row, Location) else "department_id"
    users = db.session.scalars(select(User.login).where(getattr(User, col) == row.id)
                               .order_by(User.login).limit(6)).all()
    n_users = db.session.scalar(select(func.count()).select_from(User)
                                .where(getattr(User, col) == row.id))
    templates = db.session.scalars(select(Template.name).where(
        getattr(Template, col) == row.id)).all()
    out = []
    if n_users:
        shown = ", ".join(users[:5]) + (f" and {n_users - 5} more" if n_users > 5 else "")
        out.append(f"{n_users} user(s): {shown}")
    if templates:
        out.append(f"template(s)/role(s): {', '.join(templates)}")
    return out


def delete_named(row) -> None:
    if users := used_by(row):
        kind = row.__class__.__name__.lower()
        raise Invalid({"name": ("in_use", f"The {kind} {row.name} is in use by "
                       f"{'; '.join(users)}")})
    audit.record("delete", row.__class__.__name__.lower(), row.id, row.name, commit=False)
    db.session.delete(row)
    db.session.commit()


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
    items = text_or_list if isinstance(text_or_list, list) else \
        [s.strip() for s in (text_or_list or "").split(";")]
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


def save_template(data, row: Template | None = None) -> Template:
    values = TEMPLATE.validate(data)
    errors = {}
    services = []
    try:
        services = services_of(data.get("services") or [])
    except Invalid as exc:
        errors.update(exc.errors)
    loc = _ref(Location, values.get("location"), "location", errors)
    dep = _ref(Department, values.get("department"), "department", errors)
    clash = by_name(Template, values["name"])
    if clash is not None and clash is not row:
        errors["name"] = ("unique", "A template or role with this name exists")
    if row is not None and values["kind"] != row.kind and (n := _users_of(row)):
        # MiVoice 5000 / MX-ONE users must carry a role; a template is not one
        errors["kind"] = ("in_use", f"The {row.kind} {row.name} is in use by {n} user(s): "
                          f"it cannot become a {values['kind']}")
    if errors:
        raise Invalid(errors)
    creating = row is None
    before = None if creating else template_dict(row)
    if creating:
        row = Template()
        db.session.add(row)
    else:  # IDS names the template it seeds users with: it follows a rename
        for src in _ids_using(row):
            src.template = values["name"]
    row.name, row.kind, row.services = values["name"], values["kind"], json.dumps(services)
    row.location, row.department = loc, dep
    db.session.flush()
    audit.record("create" if creating else "update", row.kind, row.id, row.name,
                 before=before, after=template_dict(row), commit=False)
    db.session.commit()
    return row


def template_dict(t: Template) -> dict:
    return {"id": t.id, "name": t.name, "kind": t.kind, "services": t.service_list,
            "location": t.location.name if t.location else None,
            "department": t.department.name if t.department else None}


def _users_of(row: Template) -> int:
    return db.session.scalar(select(func.count()).select_from(User)
                             .where(User.template_id == row.id))


def _ids_using(row: Template) -> list[IdsSource]:
    return [src for src in db.session.scalars(select(IdsSource))
            if src.template.casefold() == row.name.casefold()]


def delete_template(row: Template) -> None:
    if n := _users_of(row):
        raise Invalid({"name": ("in_use", f"The {row.kind} {row.name} is in use by {n} "
                       "user(s)")})
    if srcs := _ids_using(row):
        names = ", ".join(db.session.get(Element, s.element_id).name for s in srcs)
        raise Invalid({"name": ("in_use", f"The {row.kind} {row.name} is in use by IDS of "
                       f"{names}: choose another there first")})
    audit.record("delete", row.kind, row.id, row.name, commit=False)
    db.session.delete(row)
    db.session.commit()


def _ref(model, name: str | None, field: str, errors: dict):
    if not name:
        return None
    row = by_name(model, name)
    if row is None:
        errors[field] = ("unknown", f"Unknown {field} {name}: add it first")
    return row


# --- licences --------------------------------------------------------------------------------


def in_use() -> Counter:
    counts: Counter = Counter()
    for services in db.session.scalars(select(User.services)):
        counts.update(json.loads(services or "[]"))
    return counts


def licences() -> list[dict]:
    held = {lic.type: lic.available for lic in db.session.scalars(select(Licence))}
    used = in_use()
    return [{"type": t, "available": held.get(t, 0), "in_use": used.get(t, 0)}
            for t in SERVICES]


def set_licences(available: Mapping) -> None:
    """Set how many licences of each type named in `available` the site holds: every type at
    once, or (any of them wrong) none. A count may not fall below what users hold."""
    errors, used = {}, in_use()
    for type_, n in available.items():
        if type_ not in SERVICES:
            errors[str(type_)] = ("one_of", f"Unknown licence {type_}: use "
                                  f"{', '.join(SERVICES)}")
        elif type(n) is not int or not 0 <= n <= MAX_INT:  # bool is an int to Python
            errors[type_] = ("range", f"{type_}: available must be a whole number, 0 to "
                             f"{MAX_INT}")
        elif n < used[type_]:
            errors[type_] = ("in_use", f"Licence {type_}: {used[type_]} in use, so at least "
                             f"{used[type_]} must be available (take the service from users "
                             "first)")
    if errors:
        raise Invalid(errors)
    for type_, n in available.items():
        row = db.session.scalar(select(Licence).where(Licence.type == type_))
        if row is None:
            row = Licence(type=type_, available=0)
            db.session.add(row)
            db.session.flush()  # the audit entry names its id
        if row.available != n:
            audit.record("update", "licence", row.id, type_,
                         before={"available": row.available}, after={"available": n},
                         commit=False)
            row.available = n
    db.session.commit()


class Licences:
    """Licence headroom, debited as changes are checked (one user, or a whole import)."""

    def __init__(self):
        # As in_use(), counted per distinct service list: one row per combination, not per user.
        self.used: Counter = Counter()
        for services, n in db.session.execute(
                select(User.services, func.count()).group_by(User.services)):
            for s in json.loads(services or "[]"):
                self.used[s] += n
        self.held = {lic.type: lic.available for lic in db.session.scalars(select(Licence))}

    def check(self, old: list[str], new: list[str]) -> str | None:
        """Take the licences a change needs; a message naming the licence when it cannot."""
        for s in new:
            if s not in old and self.used[s] + 1 > self.held.get(s, 0):
                return (f"Licence {s}: {self.held.get(s, 0)} available and {self.used[s]} in "
                        "use; this user needs one more")
        for s in old:
            if s not in new:
                self.used[s] -= 1
        for s in new:
            if s not in old:
                self.used[s] += 1
        return None


class SiteTables:
    """Elements, locations, departments and templates by name, each table read once.

    `resolve_user` reads them for one user; a bulk import reads them once for a whole file
    and sets `users` to each chunk's existing users (lower-case login -> row), so checking a
    row costs no query. Names match case-insensitively, as `by_name` means them to.
    """

    def __init__(self) -> None:
        self.elements = self._load(Element.id, Element.name, Element.platform)
        self.named = {
            "location": self._load(Location.id, Location.name),
            "department": self._load(Department.id, Department.name),
            "template": self._load(Template.id, Template.name, Template.kind, Template.services,
                                   Template.location_id, Template.department_id),
        }
        self.by_id = {kind: {r.id: r for r in rows.values()}
                      for kind, rows in (("element", self.elements), *self.named.items())}
        self.users: dict | None = None
        self._resolved: dict = {}  # see _shared

    @staticmethod
    def _load(*columns) -> dict:
        rows: dict = {}
        for row in db.session.execute(select(*columns).order_by(columns[0])):
            rows.setdefault(row.name.casefold(), row)
        return rows

    def element(self, name: str, method: str, errors: dict):
        """The element named `name`, or None; why it cannot take `method` goes in `errors`."""
        element = self.elements.get(name.casefold())
        if element is None:
            errors["element"] = ("unknown", f"Unknown network element {name}")
        elif method not in METHODS[element.platform]:
            offers = ", ".join(METHOD_LABELS[m] for m in METHODS[element.platform])
            errors["element"] = ("method", f"{element.platform} does not offer "
                                 f"{METHOD_LABELS[method]} (it offers {offers})")
        return element

    def ref(self, kind: str, name: str | None, errors: dict):
        """The location, department or template named `name` (None when empty), as `_ref`."""
        if not name:
            return None
        row = self.named[kind].get(name.casefold())
        if row is None:
            errors[kind] = ("unknown", f"Unknown {kind} {name}: add it first")
        return row

    #: The USER fields a user has to itself, and those naming what many users share.
    PERSONAL = tuple(USER.fields[n] for n in (
        "login", "first_name", "last_name", "email", "number"))
    SHARED_NAMES = ("element", "location", "department", "template", "services")
    SHARED = tuple(USER.fields[n] for n in SHARED_NAMES)

    def user(self, login: str):
        """The provisioned user with this login, whatever its case, or None."""
        if self.users is not None:
            return self.users.get(login.lower())
        return db.session.scalar(select(User).where(func.lower(User.login) == login.lower()))

    def resolve(self, data, method: str, licences_: Licences | None = None,
                user=None) -> dict:
        """`resolve_user` on these tables; `user` may be a User or a row of its table."""
        if not isinstance(data, Mapping):
            USER.validate(data)  # raises the schema's own error
        values, errors = {}, {}
        for f in self.PERSONAL:
            try:
                values[f.name] = f.clean(data.get(f.name))
            except Invalid as exc:
                errors.update(exc.errors)
        shared, services, bad = self._shared(tuple(map(data.get, self.SHARED_NAMES)), method)
        errors.update(bad)
        if "login" in values:
            login = values["login"].lower()
            clash = user if user is not None and user.login.lower() == login else \
                self.user(login)
            if clash is not None and (user is None or clash.id != user.id):
                errors["login"] = ("unique", f"Login {values['login']} is already provisioned")
        if not errors and licences_ is not None:
            msg = licences_.check(json.loads(user.services or "[]") if user else [], services)
            if msg:
                errors["services"] = ("licence", msg)
        if errors:
            raise Invalid(errors)
        return {"login": values["login"], "first_name": values["first_name"] or "",
                "last_name": values["last_name"], "email": values["email"] or "",
                "number": values["number"] or "", **shared}

    def _shared(self, raw: tuple, method: str) -> tuple[dict, list[str], dict]:
        """The element, location, department, template and services `raw` name, as the ids
        and services JSON to store, the services, and the errors (by field). A file repeats
        the same few of these, so each combination is resolved once."""
        key = (method, raw)
        try:
            hit = self._resolved.get(key)
        except TypeError:  # a list or a dict (an API body): not a key, and rarely repeated
            key, hit = None, None
        if hit is None:
            hit = self._resolve_shared(raw, method)
            if key and len(self._resolved) < 1000:
                self._resolved[key] = hit
        return hit

    def _resolve_shared(self, raw: tuple, method: str) -> tuple[dict, list[str], dict]:
        values, errors = {}, {}
        for f, value in zip(self.SHARED, raw, strict=True):
            try:
                values[f.name] = f.clean(value)
            except Invalid as exc:
                errors.update(exc.errors)
        element = self.element(values["element"], method, errors) \
            if "element" in values else None
        template = self.ref("template", values.get("template"), errors)
        none = {name for name in ("location", "department", "services")
                if (values.get(name) or "").lower() == NONE}
        loc = None if "location" in none else self.ref("location", values.get("location"),
                                                       errors)
        dep = None if "department" in none else self.ref(
            "department", values.get("department"), errors)
        services: list[str] = []
        try:
            services = services_of(values.get("services") or "")
        except Invalid as exc:
            errors.update(exc.errors)
        if template is not None:  # it fills what is empty, not what says none
            if "services" not in none:
                services = services or json.loads(template.services or "[]")
            if "location" not in none:
                loc = loc or self.by_id["location"].get(template.location_id)
            if "department" not in none:
                dep = dep or self.by_id["department"].get(template.department_id)
        ids = {"element_id": element.id if element else None,
               "location_id": loc.id if loc else None,
               "department_id": dep.id if dep else None,
               "template_id": template.id if template else None,
               "services": json.dumps(services)}
        return ids, services, errors


# --- users -----------------------------------------------------------------------------------


def user_dict(u: User) -> dict:
    return {"id": u.id, "login": u.login, "first_name": u.first_name, "last_name": u.last_name,
            "email": u.email, "number": u.number, "element": u.element.name,
            "location": u.location.name if u.location else None,
            "department": u.department.name if u.department else None,
            "template": u.template.name if u.template else None,
            "template_kind": u.template.kind if u.template else None,
            "services": u.service_list, "origin": u.origin}


def user_form(u: User) -> dict:
    """A user's data as forms and PUT bodies send it back: saving it unchanged changes
    nothing (location, department and services as `import_cells` spells them)."""
    d = user_dict(u)
    d["location"], d["department"], d["services"] = import_cells(
        d["location"], d["department"], d["template"], d["services"])
    return d


def resolve_user(data, method: str, licences_: Licences | None = None,
                 user: User | None = None) -> dict:
    """Validate a user's data as `method` would provision it; return the values to store.

    The template or role fills what the data leaves out (services, location, department).
    Raises Invalid naming each broken rule, including an exceeded licence.
    """
    return SiteTables().resolve(data, method, licences_, user)


def save_user(data, method: str = "manual", user: User | None = None,
              who: str | None = None) -> User:
    """Provision (or change) a user; the audit entry names `who` (else the administrator)."""
    values = resolve_user(data, method, Licences(), user)
    creating = user is None
    before = snapshot(user) if user else None
    if creating:
        user = User(origin=method)
        db.session.add(user)
    for k, v in values.items():
        setattr(user, k, v)
    db.session.flush()
    db.session.refresh(user)
    queue(user, before)
    audit.record("create" if creating else "update", "user", user.id, user.login,
                 before=_public(before), after=user_dict(user), username=who, commit=False)
    db.session.commit()
    return user


def delete_user(user: User, who: str | None = None) -> None:
    before = snapshot(user)
    queue(None, before)
    audit.record("delete", "user", user.id, user.login, before=_public(before), username=who,
                 commit=False)
    db.session.delete(user)
    db.session.commit()


def snapshot(u: User) -> dict:
    """`user_dict` with the element's id: what `queue` needs of a user before a change."""
    return {**user_dict(u), "element_id": u.element_id}


def _public(snap: dict | None) -> dict | None:
    return {k: v for k, v in snap.items() if k != "element_id"} if snap else None


def flow_actions(old: int | None, new: int | None, flows) -> list[tuple[str, int]]:
    """The flow-through changes (action, element id) a user going from element `old` to `new`
    needs (None: not there; `flows(id)`: that element takes Flow Through Provisioning). A
    user moved between elements is deleted from one and added to the other."""
    out = []
    if old is not None and old != new and flows(old):
        out.append(("delete", old))
    if new is not None and flows(new):
        out.append(("update" if old == new else "add", new))
    return out


def queue(user: User | None, before: dict | None = None) -> None:
    """Flow Through Provisioning: each MiVoice Business element gets the changes of its users.

    `before` is the user's `snapshot` before the change (None: a new user), `user` the user
    after it (None: deleted). A renamed user's update carries its previous_login.
    """
    old, new = (before or {}).get("element_id"), user.element_id if user else None
    for action, element_id in flow_actions(old, new, _flows):
        if action == "delete":
            login, payload = before["login"], _public(before)
        else:
            login, payload = user.login, user_dict(user)
            if action == "update" and before["login"] != user.login:
                payload["previous_login"] = before["login"]
        db.session.add(Change(element_id=element_id, action=action, login=login,
                              payload=json.dumps(payload)))


def _flows(element_id: int) -> bool:
    e = db.session.get(Element, element_id)
    return e is not None and FLOW in e.methods
