"""Locations and departments: save, what uses them, delete."""

from sqlalchemy import func, select

from appliance import audit
from appliance.db import db
from appliance.listing import Column, Page, paginate
from appliance.validation import Conflict, Invalid

from . import accounts
from .models import Department, Location, Template, User, folded
from .rules import NAMED, by_name


def named_columns(model) -> list[Column]:
    return [Column("name", "Name", folded(model.name)),
            Column("description", "Description", folded(model.description))]


def named(model, args, per_page: int, adjustable: bool = False) -> Page:
    """One page of the locations or departments (`model`), searched and sorted as `args` ask."""
    return paginate(select(model), named_columns(model), args, "name",
                    search=(model.name, model.description), per_page=per_page,
                    tiebreak=model.id, adjustable=adjustable)


def named_dict(row) -> dict:
    return {"id": row.id, "name": row.name, "description": row.description}


def save_named(model, data, row=None):
    values = NAMED.validate(data)
    clash = by_name(model, values["name"])
    if clash is not None and clash is not row:
        raise Invalid({"name": ("unique", f"A {model.__name__.lower()} with this name exists")})
    creating = row is None
    if creating:
        row = model()
        db.session.add(row)
    renamed = not creating and row.name != values["name"]
    row.name, row.description = values["name"], values.get("description") or ""
    db.session.flush()
    audit.record("create" if creating else "update", model.__name__.lower(), row.id, row.name,
                 after=values, commit=False)
    db.session.commit()
    if renamed and model is Department:  # the users' accounts carry its name
        accounts.sync_department(row.id)
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
        raise Conflict.because("in_use", f"The {kind} {row.name} is in use by "
                               f"{'; '.join(users)}")
    audit.record("delete", row.__class__.__name__.lower(), row.id, row.name, commit=False)
    db.session.delete(row)
    db.session.commit()
