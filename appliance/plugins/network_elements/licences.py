"""Licences: held, in use, and the running count a save or import checks."""

import json
from collections import Counter
from collections.abc import Mapping

from sqlalchemy import func, select

from appliance import audit
from appliance.db import db
from appliance.validation import MAX_INT, Invalid, whole

from .models import Licence, User
from .rules import SERVICES


def in_use() -> Counter:
    counts: Counter = Counter()
    for services in db.session.scalars(select(User.services)):
        counts.update(json.loads(services or "[]"))
    return counts


def licences() -> list[dict]:
    held = {lic.type: lic.available for lic in db.session.scalars(select(Licence))}
    used = in_use()
    return [{"type": t, "available": held.get(t, 0), "in_use": used.get(t, 0)}
            for t in SERVICES]


def set_licences(available: Mapping) -> None:
    """Set how many licences of each type named in `available` the site holds (a count: an
    int, or its digits as a form sends them): every type at once, or (any of them wrong)
    none. A count may not fall below what users hold."""
    errors, used = {}, in_use()
    available = {t: whole(n) if isinstance(n, str) else n for t, n in available.items()}
    for type_, n in available.items():
        if type_ not in SERVICES:
            errors[str(type_)] = ("one_of", f"Unknown licence {type_}: use "
                                  f"{', '.join(SERVICES)}")
        elif type(n) is not int or not 0 <= n <= MAX_INT:  # bool is an int to Python
            errors[type_] = ("range", f"{type_}: available must be a whole number, 0 to "
                             f"{MAX_INT}")
        elif n < used[type_]:
            errors[type_] = ("in_use", f"Licence {type_}: {used[type_]} in use, so at least "
                             f"{used[type_]} must be available (take the service from users "
                             "first)")
    if errors:
        raise Invalid(errors)
    for type_, n in available.items():
        row = db.session.scalar(select(Licence).where(Licence.type == type_))
        if row is None:
            row = Licence(type=type_, available=0)
            db.session.add(row)
            db.session.flush()  # the audit entry names its id
        if row.available != n:
            audit.record("update", "licence", row.id, type_,
                         before={"available": row.available}, after={"available": n},
                         commit=False)
            row.available = n
    db.session.commit()


class Licences:
    """Licence headroom, debited as changes are checked (one user, or a whole import)."""

    def __init__(self):
        # As in_use(), counted per distinct service list: one row per combination, not per user.
        self.used: Counter = Counter()
        for services, n in db.session.execute(
                select(User.services, func.count()).group_by(User.services)):
            for s in json.loads(services or "[]"):
                self.used[s] += n
        self.held = {lic.type: lic.available for lic in db.session.scalars(select(Licence))}

    def check(self, old: list[str], new: list[str]) -> str | None:
        """Take the licences a change needs; a message naming the licence when it cannot."""
        for s in new:
            if s not in old and self.used[s] + 1 > self.held.get(s, 0):
                return (f"Licence {s}: {self.held.get(s, 0)} available and {self.used[s]} in "
                        "use; this user needs one more")
        for s in old:
            if s not in new:
                self.used[s] -= 1
        for s in new:
            if s not in old:
                self.used[s] += 1
        return None
