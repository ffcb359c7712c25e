"""Users: resolve against the site's tables, save, delete, queue flow-through."""

import json
from collections.abc import Mapping

from sqlalchemy import func, select

from appliance import audit
from appliance.db import db
from appliance.listing import Column, Page, paginate
from appliance.validation import Invalid, id_of

from . import accounts
from .licences import Licences
from .models import (
    FLOW,
    METHOD_LABELS,
    METHODS,
    Change,
    Department,
    Element,
    Location,
    Template,
    User,
    folded,
)
from .rules import NONE, USER, import_cells, services_of

USER_COLUMNS = [
    Column("login", "Login", User.login),
    Column("last_name", "Last name", (User.last_name, User.first_name)),
    Column("first_name", "First name", User.first_name),
    Column("number", "Number", User.number),
    Column("element", "Network element", folded(Element.name)),
    Column("template", "Template or role"),
    Column("services", "Services"),
    Column("origin", "Provisioned by", User.origin),
]


def users(args, per_page: int, adjustable: bool = False, element_id: int | None = None) -> Page:
    """One page of the users, searched and sorted as `args` ask: all, or those of the element
    `element_id` (else ?element=<id>), with their element joined (the listing sorts by its
    name)."""
    stmt = select(User).join(Element, Element.id == User.element_id)
    if element_id is None:
        element_id = id_of(args.get("element"))
    if element_id is not None:
        stmt = stmt.where(User.element_id == element_id)
    return paginate(stmt, USER_COLUMNS, args, "login",
                    search=(User.login, User.last_name, User.first_name, User.number),
                    per_page=per_page, tiebreak=User.id, adjustable=adjustable)


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
    """Provision (or change) a user; the audit entry names `who` (else the administrator).
    Then its account follows (accounts.py): on its element, and off the one it left."""
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
    # The element it left first: its account there goes before it is made on the new one.
    accounts.sync_elements([(before or {}).get("element_id"), user.element_id])
    return user


def delete_user(user: User, who: str | None = None) -> None:
    """Delete a user (and so its account, which is signed out)."""
    before = snapshot(user)
    queue(None, before)
    audit.record("delete", "user", user.id, user.login, before=_public(before), username=who,
                 commit=False)
    db.session.delete(user)
    db.session.commit()
    accounts.sync_elements([before["element_id"]])


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
