"""Peering's card on the home page: each peer's status at a glance, and the job targets that
belong to an enterprise (the Jobs filter)."""

from flask import url_for
from sqlalchemy import func, select

from appliance import hookimpl
from appliance.db import db
from appliance.models import Enterprise
from appliance.peers import STATUSES
from appliance.summary import Figure, Summary

from .models import MCS, Peer

SHOWN = 20  # peers listed on the card; the Peering tab has the rest


def tone(kind: str, status: str) -> str:
    if kind != MCS:
        return ""
    return "ok" if status == "connected" else "warn" if status == "unknown" else "bad"


@hookimpl
def appliance_home_summary():
    """Peers by status (one grouped count), and the first SHOWN peers with theirs."""
    counts = {"ok": 0, "warn": 0, "bad": 0, "": 0}
    for kind, status, n in db.session.execute(select(Peer.kind, Peer.status, func.count())
                                              .group_by(Peer.kind, Peer.status)):
        counts[tone(kind, status)] += n
    if not sum(counts.values()):
        return []
    peers = db.session.execute(
        select(Peer.description, Peer.kind, Peer.status, Enterprise.name)
        .join(Enterprise, Enterprise.id == Peer.enterprise_id)
        .order_by(Enterprise.name, Peer.description).limit(SHOWN)).all()
    rows = [[p.name, p.description,
             Figure("Status", STATUSES.get(p.status, p.status) if p.kind == MCS else "External",
                    tone(p.kind, p.status))] for p in peers]
    figures = [Figure("Connected", counts["ok"], "ok" if counts["ok"] else ""),
               Figure("Not connected", counts["bad"], "bad" if counts["bad"] else "ok")]
    figures += [Figure("Not checked yet", counts["warn"], "warn")] if counts["warn"] else []
    figures += [Figure("External servers", counts[""])] if counts[""] else []
    return [Summary("Peers", order=20, figures=figures,
        columns=["Enterprise", "Peer", "Status"], rows=rows,
        link=("Peering", url_for("peering.index")))]


@hookimpl
def appliance_job_targets(enterprise):
    """The enterprise's peers' contact syncs and its status checks."""
    ids = db.session.scalars(select(Peer.id).where(Peer.enterprise_id == enterprise.id))
    return [f"peering:{i}" for i in ids] + [f"peering-status:{enterprise.id}"]
