"""The Users and Services pages' blueprint and what its pages share: the context every
page gets and the names its forms offer."""

from flask import Blueprint
from sqlalchemy import select

from appliance.db import db

from . import service
from .models import (
    FORMATS,
    METHOD_LABELS,
    METHODS,
    PLATFORMS,
    RECOMMENDED,
    Department,
    Element,
    Location,
    Template,
)

bp = Blueprint("network_elements", __name__, url_prefix="/network-elements",
               template_folder="templates")


def page_context(**kw) -> dict:
    return {"platforms": PLATFORMS, "methods": METHODS, "labels": METHOD_LABELS,
            "recommended": RECOMMENDED, "formats": FORMATS, "services": service.SERVICES, **kw}


def form_choices() -> dict:
    return {"location_names": db.session.scalars(select(Location.name).order_by(
                Location.name)).all(),
            "department_names": db.session.scalars(select(Department.name).order_by(
                Department.name)).all(),
            "template_names": db.session.scalars(select(Template.name).order_by(
                Template.name)).all(),
            "element_names": db.session.scalars(select(Element.name).order_by(
                Element.name)).all()}
