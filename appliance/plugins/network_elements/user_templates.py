"""User templates and roles: save, delete."""

import json

from sqlalchemy import func, select

from appliance import audit
from appliance.db import db
from appliance.listing import Column, Page, paginate
from appliance.validation import Conflict, Invalid

from .models import Department, Element, IdsSource, Location, Template, User, folded
from .rules import TEMPLATE, _ref, by_name, services_of

TEMPLATE_COLUMNS = [
    Column("name", "Name", folded(Template.name)),
    Column("kind", "Kind", (Template.kind, *folded(Template.name))),
    Column("services", "Services"),
    Column("location", "Location"),
    Column("department", "Department"),
]


def templates(args, per_page: int, adjustable: bool = False) -> Page:
    """One page of the templates and roles, searched and sorted as `args` ask."""
    return paginate(select(Template), TEMPLATE_COLUMNS, args, "name", search=(Template.name,),
                    per_page=per_page, tiebreak=Template.id, adjustable=adjustable)


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
        raise Conflict.because("in_use", f"The {row.kind} {row.name} is in use by {n} user(s)")
    if srcs := _ids_using(row):
        names = ", ".join(db.session.get(Element, s.element_id).name for s in srcs)
        raise Conflict.because("in_use", f"The {row.kind} {row.name} is in use by IDS of "
                               f"{names}: choose another there first")
    audit.record("delete", row.kind, row.id, row.name, commit=False)
    db.session.delete(row)
    db.session.commit()
