"""Core: the audit log page, filterable."""

import json
from datetime import datetime, timedelta

from flask import Blueprint, current_app, jsonify, request
from sqlalchemy import select

from appliance.api import INT, NULL_STR, STR, ApiBlueprint, obj, paged
from appliance.db import db
from appliance.listing import Column, paginate, query_params
from appliance.models import AuditEntry
from appliance.plugins import declare
from appliance.ui import Tab, render

COLUMNS = [
    Column("at", "When (UTC)", AuditEntry.at),
    Column("username", "Who", AuditEntry.username),
    Column("action", "Action", AuditEntry.action),
    Column("object_type", "Object", AuditEntry.object_type),
    Column("summary", "Change"),
]

bp = Blueprint("audit", __name__)
api = ApiBlueprint("audit_api", __name__, url_prefix="/audit", tag="audit")


def _date(value: str | None) -> datetime | None:
    try:
        return datetime.strptime(value or "", "%Y-%m-%d")
    except ValueError:
        return None


def page_of(args, per_page: int, adjustable: bool = False):
    """Filter by ?user=, ?action=, ?object_type=, ?since=, ?until= (dates) and ?q= text."""
    stmt = select(AuditEntry)
    for key, col in (("user", AuditEntry.username), ("action", AuditEntry.action),
                     ("object_type", AuditEntry.object_type)):
        if args.get(key):
            stmt = stmt.where(col == args[key])
    if since := _date(args.get("since")):
        stmt = stmt.where(AuditEntry.at >= since)
    if (until := _date(args.get("until"))) and until < datetime.max - timedelta(days=1):
        stmt = stmt.where(AuditEntry.at < until + timedelta(days=1))
    args = {"sort": "at", "dir": "desc", **dict(args.items())}
    return paginate(stmt, COLUMNS, args, "at",
                    search=(AuditEntry.object_label, AuditEntry.summary, AuditEntry.object_id),
                    per_page=per_page, tiebreak=AuditEntry.id, adjustable=adjustable)


def choices():
    def distinct(col):
        return db.session.scalars(select(col).distinct().order_by(col)).all()
    return {"users": distinct(AuditEntry.username), "actions": distinct(AuditEntry.action),
            "types": distinct(AuditEntry.object_type)}


def as_dict(a: AuditEntry) -> dict:
    return {"id": a.id, "at": a.at.isoformat() + "Z", "user": a.username, "action": a.action,
            "object_type": a.object_type, "object_id": a.object_id, "object": a.object_label,
            "change": json.loads(a.summary or "{}")}


@bp.get("/audit")
def index():
    page = page_of(request.args, current_app.config["PAGE_SIZE"])
    return render("audit/index.html", block="table", page=page, filters=request.args,
                  **choices())


ENTRY = obj(["id", "at", "action"], id=INT, at=STR, user=NULL_STR, action=STR,
            object_type=NULL_STR, object_id=NULL_STR, object=NULL_STR, change={})


def _filter(name, description, **schema):
    return {"name": name, "in": "query", "required": False, "description": description,
            "schema": {"type": "string", **schema}}


FILTERS = [_filter("user", "Who"), _filter("action", "Action"),
           _filter("object_type", "Object type"),
           _filter("since", "From this day (YYYY-MM-DD)", format="date"),
           _filter("until", "To this day, included (YYYY-MM-DD)", format="date")]


@api.op("", summary="Audit log (?user=, ?action=, ?object_type=, ?since=, ?until=, ?q=, ?page=, "
        "?per_page=)", response=paged(ENTRY), query=[*FILTERS, *query_params(COLUMNS)])
def api_list():
    return jsonify(page_of(request.args, 100, adjustable=True).json(as_dict))


declare(__name__, title="Audit log", description="Every change an administrator makes.",
        blueprints=[bp], api_blueprints=[api], nav_tabs=[Tab("Audit log", "audit.index",
                                                             order=900)])
