"""Network elements' card on the home page: licence use per type, drawn as bars; and the job
targets that belong to an enterprise (its elements' IDS seeding, for the Jobs filter)."""

from flask import url_for
from sqlalchemy import select

from appliance import hookimpl
from appliance.db import db
from appliance.summary import Chart, Figure, Summary

from .licences import licences
from .models import ElementEnterprise


def share(used: int, held: int) -> int:
    """Percent of the held licences in use (a type none is held of: 0, or 100 if used)."""
    return min(100, round(100 * used / held)) if held else (100 if used else 0)


@hookimpl
def appliance_home_summary():
    rows = licences()
    if not any(r["available"] or r["in_use"] for r in rows):
        return []
    full = [r["type"] for r in rows if r["in_use"] >= r["available"] > 0]
    pct = [share(r["in_use"], r["available"]) for r in rows]
    return [Summary(
        "Licences", order=40,
        figures=[Figure("In use", sum(r["in_use"] for r in rows)),
                 Figure("Held", sum(r["available"] for r in rows)),
                 Figure("Types all used", len(full), "warn" if full else "ok")],
        columns=["Licence", "In use", "Held", "Use"],
        rows=[[r["type"], r["in_use"], r["available"],
               Figure("Use", f"{p}%", "bad" if p >= 100 else "warn" if p >= 90 else "")]
              for r, p in zip(rows, pct, strict=True)],
        charts=[Chart("Licence use per type (percent of those held)", "bars",
                      [r["type"] for r in rows], {"In use": pct}, unit="%")],
        link=("Licences", url_for("network_elements.licences")))]


@hookimpl
def appliance_job_targets(enterprise):
    """The IDS seeding runs of the enterprise's elements."""
    ids = db.session.scalars(select(ElementEnterprise.element_id).where(
        ElementEnterprise.enterprise_id == enterprise.id))
    return [f"ids:{i}" for i in ids]
