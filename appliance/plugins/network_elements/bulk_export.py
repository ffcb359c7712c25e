"""Bulk User Provisioning: the users as a CSV file in the import's format (cells made inert
for spreadsheets by `csvsafe`, which the import undoes), so an export re-imports as all
unchanged."""

import json
from typing import IO

from sqlalchemy import select

from appliance import csvsafe
from appliance.db import db

from .bulk_read import COLUMNS
from .models import BULK, METHODS, Department, Element, Location, Template, User
from .rules import import_cells

CHUNK = 1000  # rows fetched at a time


def export_csv(out: IO[str]) -> int:
    """Write the users of every element that offers Bulk Import, ordered by login, in the
    import's CSV format; return how many. (MiVoice 5000 / MX-ONE users come from their
    management platform, and an import could not take them back.)

    `out` is a text file opened with newline="" (the csv module writes CRLF line ends).
    """
    u, e = User.__table__, Element.__table__
    loc, dep, tpl = Location.__table__, Department.__table__, Template.__table__
    stmt = (select(u.c.login, u.c.first_name, u.c.last_name, u.c.email, u.c.number, e.c.name,
                   loc.c.name, dep.c.name, tpl.c.name, u.c.services)
            .select_from(u.join(e, e.c.id == u.c.element_id)
                         .outerjoin(loc, loc.c.id == u.c.location_id)
                         .outerjoin(dep, dep.c.id == u.c.department_id)
                         .outerjoin(tpl, tpl.c.id == u.c.template_id))
            .where(e.c.platform.in_([p for p, methods in METHODS.items() if BULK in methods]))
            .order_by(u.c.login))
    writer = csvsafe.writer(out)
    writer.writerow(COLUMNS)
    n = 0
    for row in db.session.execute(stmt, execution_options={"yield_per": CHUNK}):
        *person, element, location, department, template, services = row
        location, department, services = import_cells(location, department, template,
                                                      json.loads(services or "[]"))
        writer.writerow([*(c or "" for c in person), element, location, department,
                         template or "", services])
        n += 1
    return n
