"""An account's phone numbers (from the PBX, or added by the administrator) and its dynamic
statuses, whose "Make Call from" points at one of them: rule 6 made visible. The account
page and the API both call these."""

import re

from flask import abort
from sqlalchemy import delete, select

from appliance import audit
from appliance.db import db
from appliance.models import Account
from appliance.validation import (
    Conflict,
    Field,
    Invalid,
    Rule,
    Schema,
    length,
    one_of,
    valid_characters,
)

from .models import Number, StatusRef
from .pbx_numbers import NumberState, decide_numbers

_NUMBER = re.compile(r"\+?[0-9]{1,30}")
KINDS = ("mobile", "deskphone", "softphone", "home", "other")


def phone_number() -> Rule:
    """The form of a number the administrator adds: digits, an optional leading +, at most
    30 digits."""
    def check(label, v):
        if not _NUMBER.fullmatch(v):
            return f"{label} must be 1 to 30 digits with an optional leading +"
    return Rule("phone_number", check, {"pattern": r"^\+?[0-9]{1,30}$", "maxLength": 31})


NUMBER = Field("number", "Number", (phone_number(),),
               help="1 to 30 digits (0-9) with an optional leading +, no spaces: 2001, "
                    "+442071234567.")
MANUAL = Schema("SyncManualNumber", NUMBER, Field(
    "kind", "Kind", (one_of(KINDS),), required=False,
    help=f"One of {', '.join(KINDS)} (default other)."))
STATUS_NAME = Field("name", "Status", (length(1, 64), valid_characters()),
                    help="The dynamic status's name, 1 to 64 characters.")
STATUS = Schema("SyncDynamicStatus", Field(
    "make_call_from", "Make Call from", (length(1, 64),),
    help="The number calls are made from in this status: one of the account's numbers."))


def _rows(acc: Account) -> list[Number]:
    return list(db.session.scalars(select(Number).where(Number.account_id == acc.id)
                                   .order_by(Number.number)))


def statuses(acc: Account) -> list[dict]:
    """The account's dynamic statuses: name and the number "Make Call from" points to."""
    refs = db.session.scalars(select(StatusRef).where(StatusRef.account_id == acc.id)
                              .order_by(StatusRef.status, StatusRef.id))
    return [{"name": r.status, "make_call_from": r.number} for r in refs]


def listing(acc: Account) -> list[dict]:
    """The account's numbers: where each came from, whether the PBX still has it, the
    statuses pointing to it and, for one the PBX does not have, why it stays (rule 6)."""
    using: dict[str, list[str]] = {}
    for s in statuses(acc):
        using.setdefault(s["make_call_from"], []).append(s["name"])
    out = []
    for n in _rows(acc):
        names = using.get(n.number, [])
        why = None
        if not n.on_pbx:
            why = decide_numbers([NumberState(n.number, n.origin, bool(names))], set())[0].reason
            if names:
                why += ": " + ", ".join(names)
        out.append({"number": n.number, "kind": n.kind, "origin": n.origin,
                    "on_pbx": n.on_pbx, "statuses": names, "kept_because": why})
    return out


def _number(acc: Account, number: str) -> Number:
    row = db.session.scalar(select(Number).where(Number.account_id == acc.id,
                                                 Number.number == number))
    if row is None:
        abort(404, f"{acc.login} has no number {number}")
    return row


def add(acc: Account, data) -> dict:
    """Add a number by hand: it stays whatever the PBX says (rule 6)."""
    values = MANUAL.validate(data)
    number, kind = values["number"], values.get("kind") or "other"
    if (row := db.session.scalar(select(Number).where(Number.account_id == acc.id,
                                                      Number.number == number))) is not None:
        came = "from the PBX" if row.origin == "pbx" else "added manually"
        raise Conflict.because("number_exists", f"{acc.login} already has the number "
                               f"{number} ({came})")
    db.session.add(Number(account_id=acc.id, number=number, kind=kind, origin="manual",
                          on_pbx=False))
    audit.record("create", "account_number", acc.id, f"{acc.login} {number}",
                 after={"number": number, "kind": kind})
    return next(n for n in listing(acc) if n["number"] == number)


def remove(acc: Account, number: str) -> None:
    """Remove a number the PBX does not have and no dynamic status points to."""
    row = _number(acc, number)
    if row.on_pbx:
        raise Conflict.because("on_pbx", f"{number} is on the PBX: it goes when the PBX "
                               "deletes it")
    if names := [s["name"] for s in statuses(acc) if s["make_call_from"] == number]:
        raise Conflict.because("status_points_to_it", (
            f"{number} stays while dynamic statuses point to it (Make Call from): "
            f"{', '.join(names)}. Point them to another number first"))
    db.session.delete(row)
    audit.record("delete", "account_number", acc.id, f"{acc.login} {number}",
                 before={"number": number, "origin": row.origin})


def set_status(acc: Account, name: str, data) -> dict:
    """Create a dynamic status or point its "Make Call from" at another of the account's
    numbers, as the desktop client does."""
    errors = {}
    try:
        name = STATUS_NAME.clean(name)
    except Invalid as exc:
        errors.update(exc.errors)
    try:
        number = STATUS.validate(data)["make_call_from"]
    except Invalid as exc:
        errors.update(exc.errors)
    if errors:
        raise Invalid(errors)
    have = [n.number for n in _rows(acc)]
    if number not in have:
        raise Invalid({"make_call_from": ("account_number", (
            f"Make Call from must be one of the numbers of {acc.login}: "
            f"{', '.join(have) or 'it has none'}"))})
    refs = list(db.session.scalars(select(StatusRef).where(StatusRef.account_id == acc.id,
                                                           StatusRef.status == name)))
    before = {"make_call_from": refs[0].number} if refs else None
    for extra in refs[1:]:
        db.session.delete(extra)
    if refs:
        refs[0].number = number
    else:
        db.session.add(StatusRef(account_id=acc.id, status=name, number=number))
    audit.record("update" if refs else "create", "dynamic_status", acc.id,
                 f"{acc.login} {name}", before=before, after={"make_call_from": number})
    return {"name": name, "make_call_from": number}


def remove_status(acc: Account, name: str) -> None:
    """Delete a dynamic status (its number may then go, rule 6)."""
    gone = db.session.execute(delete(StatusRef).where(StatusRef.account_id == acc.id,
                                                      StatusRef.status == name)).rowcount
    if not gone:
        db.session.rollback()
        abort(404, f"{acc.login} has no dynamic status {name}")
    audit.record("delete", "dynamic_status", acc.id, f"{acc.login} {name}")
