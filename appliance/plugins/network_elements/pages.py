"""The Users and Services pages' blueprint and what its pages share: the context every
page gets and the names its forms offer."""

from flask import Blueprint
from sqlalchemy import or_, select

from appliance.db import db

from . import service
from .models import (
    FORMATS,
    MANUAL,
    METHOD_LABELS,
    METHODS,
    PLATFORMS,
    RECOMMENDED,
    Department,
    Element,
    Location,
    Template,
    folded,
)

bp = Blueprint("network_elements", __name__, url_prefix="/network-elements",
               template_folder="templates")


def page_context(**kw) -> dict:
    return {"platforms": PLATFORMS, "methods": METHODS, "labels": METHOD_LABELS,
            "recommended": RECOMMENDED, "formats": FORMATS, "services": service.SERVICES, **kw}


def form_choices(keep: str | None = None) -> dict:
    """The names the forms offer, each list sorted case-insensitively. `element_names`: the
    elements users are provisioned on by hand (MiVoice 5000 and MX-ONE take theirs from the
    management platform only), and `keep`, the element of the user being changed."""
    def names(column, *where):
        return db.session.scalars(select(column).where(*where).order_by(*folded(column))).all()
    by_hand = [p for p in PLATFORMS if MANUAL in METHODS[p]]
    return {"location_names": names(Location.name),
            "department_names": names(Department.name),
            "template_names": names(Template.name),
            "element_names": names(Element.name, or_(Element.platform.in_(by_hand),
                                                     Element.name == keep))}
