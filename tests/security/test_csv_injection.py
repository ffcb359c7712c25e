"""CSV files the appliance writes hand spreadsheets no formulas, and its own exports import
back exactly (hardening item 12)."""

import csv
import io
import json

import pytest
from sqlalchemy import select

from appliance import csvsafe
from appliance.db import db
from appliance.plugins.network_elements import bulk, flow, service
from appliance.plugins.network_elements.models import (
    MIVB,
    Change,
    Department,
    Element,
    Licence,
    Location,
    Template,
    User,
)

TABLES = [m.__table__ for m in (Element, Location, Department, Licence, Template, User, Change)]
TRIGGERS = ("=", "+", "-", "@", "\t", "\r")

#: Users whose fields start with what a spreadsheet would run, or look escaped already.
PEOPLE = [
    {"login": "-dash", "first_name": "=SUM(A1:A9)", "last_name": "+Plus",
     "email": "+mention@example.com", "number": "+15551234"},
    {"login": "+plus", "first_name": "@Home", "last_name": "-Minus", "email": "=x@example.com",
     "number": "+4930123"},
    {"login": "@at", "first_name": "'=kept", "last_name": "''@twice",
     "email": "'plain@example.com", "number": "2001"},
    {"login": "plain", "first_name": "'Apostrophe", "last_name": "O'Neil", "email": "",
     "number": "*72"},
]


def test_inert_and_restored_are_each_others_inverse():
    for t in TRIGGERS:
        assert csvsafe.inert(f"{t}1+1") == f"'{t}1+1"
        assert csvsafe.inert(f"'{t}x") == f"''{t}x"
    for value in ("", "'", "''", "abc", "'abc", "a=b", "1-2", "'=x", "''-9", "-9", "\t",
                  "\r=", "=", "'\t", "O'Neil"):
        written = csvsafe.inert(value)
        assert written[:1] not in TRIGGERS, value
        assert csvsafe.restored(written) == value, value
    # A hand-written file's cells that the rule leaves alone are read as they are.
    assert [csvsafe.restored(c) for c in ("-9", "'abc", "+1555")] == ["-9", "'abc", "+1555"]


@pytest.fixture
def site(app):
    with app.app_context():
        db.metadata.create_all(db.engine, tables=TABLES, checkfirst=True)
        db.session.add_all([Element(name="MiVB-1", platform=MIVB, address="mivb1.example.com"),
                            Location(name="=Ottawa"), Department(name="-Sales"),
                            *(Licence(type=t, available=100) for t in service.SERVICES)])
        db.session.commit()
        for p in PEOPLE:
            service.save_user({**p, "element": "MiVB-1", "location": "=Ottawa",
                               "department": "-Sales", "services": "MiCollab Client"},
                              who="tests")
        yield app


def stored() -> dict:
    return {u.login: service.user_dict(u) | {"id": None}
            for u in db.session.scalars(select(User))}


def test_export_is_inert_and_reimports_exactly(site, admin, tmp_path):
    before = stored()
    assert {p["login"]: p["first_name"] for p in PEOPLE} == {
        k: v["first_name"] for k, v in before.items()}
    resp = admin.get("/network-elements/users/export.csv")
    assert resp.status_code == 200
    text = resp.get_data(as_text=True)
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == list(bulk.COLUMNS)
    for cells in rows[1:]:
        for cell in cells:
            assert cell[:1] not in TRIGGERS, cells
    by_login = {r[0]: dict(zip(bulk.COLUMNS, r, strict=True)) for r in rows[1:]}
    assert set(by_login) == {"'-dash", "'+plus", "'@at", "plain"}
    dash = by_login["'-dash"]
    assert (dash["first_name"], dash["last_name"], dash["email"], dash["number"],
            dash["location"], dash["department"]) == (
        "'=SUM(A1:A9)", "'+Plus", "'+mention@example.com", "'+15551234", "'=Ottawa", "'-Sales")
    at = by_login["'@at"]
    assert (at["first_name"], at["last_name"], at["email"]) == (
        "''=kept", "'''@twice", "'plain@example.com")
    assert by_login["plain"]["first_name"] == "'Apostrophe"

    export = tmp_path / "users.csv"
    export.write_text(text, encoding="utf-8", newline="")
    summary = bulk.run(export, "csv", apply=True, report_path=tmp_path / "report.csv")
    assert summary.counts == {"add": 0, "update": 0, "unchanged": 4, "rejected": 0}, \
        summary.as_dict()["rejected_rows"]
    db.session.expire_all()
    assert stored() == before


def test_bulk_report_and_flow_through_files_are_inert(site, tmp_path):
    src = tmp_path / "more.csv"
    with open(src, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(bulk.COLUMNS)
        w.writerow(["-new", "=cmd|' /C calc'!A0", "@Last", "", "+3312", "MiVB-1", "", "", "",
                    ""])
    bulk.run(src, "csv", apply=True, report_path=tmp_path / "report.csv")
    with open(tmp_path / "report.csv", newline="", encoding="utf-8") as f:
        report = list(csv.DictReader(f))
    assert [(r["login"], r["action"]) for r in report] == [("'-new", "add")]
    assert db.session.scalar(select(User.first_name).where(User.login == "-new")) == \
        "=cmd|' /C calc'!A0"

    out = flow.deliver()
    assert out == {"delivered": 5, "failed": 0}
    files = sorted((tmp_path / "flow-through").rglob("*.csv"))
    rows = [r for path in files for r in csv.DictReader(path.open(newline="", encoding="utf-8"))]
    assert len(rows) == 5
    for r in rows:
        for cell in r.values():
            assert cell[:1] not in TRIGGERS, r
    new = next(r for r in rows if r["login"] == "'-new")
    assert (new["first_name"], new["last_name"], new["number"]) == (
        "'=cmd|' /C calc'!A0", "'@Last", "'+3312")
    # Read back with the same rule, the file gives the user's own values.
    sent = {csvsafe.restored(r["login"]): {k: csvsafe.restored(v) for k, v in r.items()}
            for r in rows}
    for login, user in stored().items():
        got = sent[login]
        assert (got["first_name"], got["last_name"], got["email"], got["number"],
                got["department"], got["location"]) == (
            user["first_name"], user["last_name"], user["email"], user["number"],
            user["department"] or "", user["location"] or ""), login
    assert json.loads(db.session.scalar(select(Change.payload).where(
        Change.login == "-new")))["first_name"] == "=cmd|' /C calc'!A0"
