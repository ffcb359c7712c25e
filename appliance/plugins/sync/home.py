"""Synchronization's card on the home page: per enterprise, its last and next sync and what
the last runs added, updated and removed (a small chart over the numbers); and the job
targets that belong to an enterprise (its synchronizers, for the Jobs filter).

Four queries whatever the number of enterprises: the synchronizers of the first SHOWN
enterprises, their last RUNS runs each, their next scheduled times, and the totals."""

import json

from flask import url_for
from sqlalchemy import distinct, func, select

from appliance import hookimpl
from appliance.db import db
from appliance.host import host
from appliance.models import Enterprise
from appliance.summary import Chart, Figure, Summary, when

from .models import Synchronizer
from .service import KIND

SHOWN = 12  # enterprises on the card; the Synchronization tab has every one
RUNS = 8  # runs a chart shows
WHAT = ("added", "updated", "removed")


def _enterprises() -> dict[int, dict]:
    """The first SHOWN enterprises with synchronizers: name and synchronizer rows."""
    out: dict[int, dict] = {}
    for s in db.session.execute(
            select(Synchronizer.id, Synchronizer.attention, Enterprise.id.label("ent_id"),
                   Enterprise.name).join(Enterprise, Enterprise.id == Synchronizer.enterprise_id)
            .order_by(Enterprise.name, Enterprise.id, Synchronizer.id)):
        if s.ent_id not in out and len(out) == SHOWN:
            break
        out.setdefault(s.ent_id, {"name": s.name, "syns": []})["syns"].append(s)
    return out


def _row(ent: dict, runs: list, nexts: list) -> tuple[list, Chart | None]:
    last = runs[-1] if runs else None
    counts = json.loads(last.counts or "{}") if last else {}
    attention = sum(1 for s in ent["syns"] if s.attention)
    state = (Figure("State", "needs attention", "bad") if attention else
             Figure("State", last.state, "ok" if last.state == "succeeded" else "bad")
             if last else Figure("State", "never run"))
    row = [ent["name"], len(ent["syns"]), when(last.finished_at if last else None),
           when(min(nexts) if nexts else None, "not scheduled"), state,
           ", ".join(f"{counts.get(w, 0):,} {w}" for w in WHAT) if last else ""]
    chart = Chart(f"{ent['name']}: added, updated and removed, last {len(runs)} syncs",
                  "lines", [f"{r.finished_at or r.created_at:%m-%d %H:%M}" for r in runs],
                  {w.capitalize(): [json.loads(r.counts or "{}").get(w, 0) for r in runs]
                   for w in WHAT}) if runs else None
    return row, chart


@hookimpl
def appliance_home_summary():
    ents = _enterprises()
    if not ents:
        return []
    jobs = host().jobs
    targets = [f"sync:{s.id}" for e in ents.values() for s in e["syns"]]
    recent, nexts = jobs.recent(KIND, targets, RUNS), jobs.next_runs(KIND, targets)
    rows, charts = [], []
    for e in ents.values():
        mine = [f"sync:{s.id}" for s in e["syns"]]
        runs = sorted((r for t in mine for r in recent[t]), key=lambda r: r.id)[-RUNS:]
        row, chart = _row(e, runs, [nexts[t] for t in mine if nexts[t]])
        rows.append(row)
        charts += [chart] if chart else []
    n_ents, n_syns, attention = db.session.execute(select(
        func.count(distinct(Synchronizer.enterprise_id)), func.count(),
        func.count().filter(Synchronizer.attention != ""))).one()
    return [Summary("Synchronization", order=10, figures=[
        Figure("Enterprises synchronized", n_ents),
        Figure("Synchronizers", n_syns),
        Figure("Needing attention", attention, "bad" if attention else "ok")],
        columns=["Enterprise", "Synchronizers", "Last sync", "Next sync", "State",
                 "Last run"], rows=rows, charts=charts, wide=True,
        link=("Synchronization", url_for("sync.index")))]


@hookimpl
def appliance_job_targets(enterprise):
    """The syncs of the enterprise's synchronizers (and PBX nodes)."""
    ids = db.session.scalars(select(Synchronizer.id).where(
        Synchronizer.enterprise_id == enterprise.id))
    return [f"sync:{i}" for i in ids]
