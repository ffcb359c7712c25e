"""What the Corporate Directory and Accounts tabs share: one enterprise's people, paged."""

from collections.abc import Callable

from flask import current_app, jsonify, request
from sqlalchemy import select

from appliance.api import error
from appliance.db import db
from appliance.listing import Column, paginate
from appliance.models import Enterprise
from appliance.ui import current_enterprise, render


def page_of(model, columns: list[Column], search: tuple, ent: Enterprise, args, per_page: int,
            adjustable: bool = False):
    """One page of `model`'s rows of `ent`, sorted by last name unless `args` say otherwise."""
    stmt = select(model).where(model.enterprise_id == ent.id)
    return paginate(stmt, columns, args, "last_name", search=search, per_page=per_page,
                    tiebreak=model.id, adjustable=adjustable)


def people_page(pages: Callable, **context):
    """The tab's table for the selected enterprise (`pages` is the module's page_of)."""
    ent = current_enterprise()
    page = pages(ent, request.args, current_app.config["PAGE_SIZE"]) if ent else None
    return render("_people.html", block="table", page=page, **context)


def people_api(ent_id: int, pages: Callable, as_dict: Callable):
    """The JSON answer of a paged people list of enterprise `ent_id`."""
    ent = db.session.get(Enterprise, ent_id)
    if ent is None:
        return error(404, "not_found", "No such enterprise")
    page = pages(ent, request.args, 100, adjustable=True)
    return jsonify(items=[as_dict(c) for c in page.rows], total=page.total, page=page.page,
                   pages=page.pages)
