"""What the Corporate Directory and Accounts tabs share: one enterprise's people (contacts or
accounts), paged, as the tab's table and as the API's list. Each tab module declares only
its columns, search, JSON and words."""

from collections.abc import Callable
from dataclasses import dataclass

from flask import Blueprint, current_app, jsonify, request
from sqlalchemy import select

from appliance.api import ApiBlueprint, paged
from appliance.db import found
from appliance.listing import Column, Page, paginate, query_params
from appliance.models import Enterprise
from appliance.plugins import declare
from appliance.ui import Tab, current_enterprise, render


@dataclass(frozen=True)
class People:
    """One kind of an enterprise's people: a model with enterprise_id and last_name."""

    model: type
    columns: list[Column]
    search: tuple
    as_dict: Callable

    def page_of(self, ent: Enterprise, args, per_page: int, adjustable: bool = False) -> Page:
        """One page of `ent`'s rows, sorted by last name unless `args` say otherwise."""
        stmt = select(self.model).where(self.model.enterprise_id == ent.id)
        return paginate(stmt, self.columns, args, "last_name", search=self.search,
                        per_page=per_page, tiebreak=self.model.id, adjustable=adjustable,
                        scope=ent.id)


def columns(model) -> list[Column]:
    """What every person has: the first columns of both tables."""
    return [Column("last_name", "Last name", (model.last_name, model.first_name)),
            Column("first_name", "First name", (model.first_name, model.last_name)),
            Column("email", "E-mail", model.email), Column("phone", "Phone", model.phone)]


def tab(module: str, name: str, people: People, response: dict, *, title: str, order: int,
        description: str, api_path: str, summary: str, **words) -> None:
    """Declare the core plugin `module` (its __name__): the tab `title` with its page
    /<name>, the selected enterprise's table (`words`: search_hint, empty_text), and its
    API list /api/v1/enterprises/<id>/<api_path>, documented with `response` for one row."""
    bp = Blueprint(name, __name__)
    api = ApiBlueprint(f"{name}_api", __name__, url_prefix="/enterprises", tag=name)

    @bp.get(f"/{name}")
    def index():
        ent = current_enterprise()
        page = people.page_of(ent, request.args, current_app.config["PAGE_SIZE"]) if ent else None
        return render("_people.html", block="table", page=page, endpoint=f"{name}.index",
                      heading=title, **words)

    def listing(ent_id):
        ent = found(Enterprise, ent_id, "enterprise")
        return jsonify(people.page_of(ent, request.args, 100, adjustable=True)
                       .json(people.as_dict))
    listing.__name__ = f"api_{api_path}"  # the operation's id: <name>_api.api_<path>_get
    api.op(f"/<int:ent_id>/{api_path}", summary=f"{summary} (?q=, ?sort=, ?dir=, ?page=, "
           "?per_page=)", response=paged(response), query=query_params(people.columns))(listing)
    declare(module, title=title, description=description, blueprints=[bp], api_blueprints=[api],
            nav_tabs=[Tab(title, f"{name}.index", order=order, per_enterprise=True)])
