"""Bulk User Provisioning (seed 004): CSV and LDIF import, preview, apply, report, export."""

import csv
import json
import time
import tracemalloc
from pathlib import Path

import pytest
from sqlalchemy import func, select

from appliance.db import ANALYZE_ROWS, db
from appliance.models import AuditEntry
from appliance.plugins.network_elements import bulk, bulk_export, bulk_read, bulk_store, service
from appliance.plugins.network_elements.models import (
    MIVB,
    MIVO250,
    MV5000,
    Change,
    Department,
    Element,
    Licence,
    Location,
    Template,
    User,
)
from appliance.validation import Invalid
from tests.postgres_server import planner_rows

DATA = Path(__file__).parent / "data" / "bulk"
TABLES = [m.__table__ for m in (Element, Location, Department, Licence, Template, User, Change)]
MV5000_MESSAGE = ("MiVoice 5000 does not offer Bulk Import from File (it offers Provision from "
                  "management platform, Provisioning with IDS)")


@pytest.fixture
def site(app):
    """A site with elements, locations, departments, templates and licences, in app context."""
    with app.app_context():
        # The plugin's migration creates these; until then (and harmlessly after) create them.
        db.metadata.create_all(db.engine, tables=TABLES, checkfirst=True)
        db.session.add_all([
            Element(name="MiVB-1", platform=MIVB, address="mivb1.example.com"),
            Element(name="MiVO-250", platform=MIVO250, address="10.0.0.2"),
            Element(name="MV5000", platform=MV5000, address="10.0.0.3"),
            Location(name="Ottawa"), Location(name="Kanata"),
            Department(name="Sales"), Department(name="Support"),
        ])
        db.session.flush()
        ottawa = db.session.scalar(select(Location.id).where(Location.name == "Ottawa"))
        sales = db.session.scalar(select(Department.id).where(Department.name == "Sales"))
        db.session.add_all([
            Template(name="Standard", kind="template", location_id=ottawa, department_id=sales,
                     services=json.dumps(["MiCollab Client", "NuPoint Voice Mail"])),
            Template(name="Agent", kind="role", services=json.dumps(["MiCollab Client"])),
            *(Licence(type=t, available=1000) for t in service.SERVICES),
        ])
        db.session.commit()
        yield app


def run(path, apply, tmp_path, defaults=None, fmt=None):
    report = tmp_path / f"report-{'apply' if apply else 'preview'}-{time.monotonic_ns()}.csv"
    fmt = fmt or Path(path).suffix.lstrip(".")
    summary = bulk.run(path, fmt, defaults, apply=apply, report_path=report)
    with open(report, newline="", encoding="utf-8") as f:
        summary.report = list(csv.DictReader(f))
    return summary


def actions(summary) -> dict[int, str]:
    return {int(r["line"]): r["action"] for r in summary.report}


def reasons(summary) -> dict[int, str]:
    return {int(r["line"]): r["reasons"] for r in summary.report}


def logins() -> set[str]:
    return set(db.session.scalars(select(User.login)))


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def write_csv(path: Path, rows: list[list[str]], header=bulk_read.COLUMNS) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def test_preview_stores_nothing_and_matches_apply(site, tmp_path):
    preview = run(DATA / "users.csv", False, tmp_path)
    assert (count(User), count(Change), count(AuditEntry)) == (0, 0, 0)
    assert preview.counts == {"add": 7, "update": 0, "unchanged": 0, "rejected": 2}
    assert preview.error is None and preview.total == 9 and preview.rows_per_second > 0
    assert [r.line for r in preview.rows] == list(range(2, 11))

    applied = run(DATA / "users.csv", True, tmp_path)
    assert actions(applied) == actions(preview)
    assert reasons(applied) == reasons(preview)
    assert applied.counts == preview.counts
    assert logins() == {r["login"] for r in preview.report if r["action"] == "add"}

    alice = db.session.scalar(select(User).where(User.login == "alice"))
    assert service.user_dict(alice) | {"id": None} == {
        "id": None, "login": "alice", "first_name": "Alice", "last_name": "Archer",
        "email": "alice@example.com", "number": "2001", "element": "MiVB-1",
        "location": "Ottawa", "department": "Sales", "template": "Standard",
        "template_kind": "template", "services": ["MiCollab Client", "NuPoint Voice Mail"],
        "origin": "bulk"}
    bob = service.user_dict(db.session.scalar(select(User).where(User.login == "bob")))
    # The template fills what the row leaves out.
    assert (bob["location"], bob["department"], bob["services"]) == (
        "Ottawa", "Sales", ["MiCollab Client", "NuPoint Voice Mail"])
    grace = db.session.scalar(select(User).where(User.login == "grace"))
    assert grace.last_name == "Gómez, Jr."

    entries = db.session.scalars(select(AuditEntry)).all()
    assert len(entries) == 1
    entry = entries[0]
    assert (entry.action, entry.object_type, entry.object_label) == ("import", "users",
                                                                     "users.csv")
    after = json.loads(entry.summary)["after"]
    assert after | {"queued": None} == {"file": "users.csv", "format": "csv", "add": 7,
                                        "update": 0, "unchanged": 0, "rejected": 2,
                                        "queued": None}


def test_every_bad_row_kind_is_reported_with_its_line(site, tmp_path):
    preview = run(DATA / "bad_rows.csv", False, tmp_path)
    summary = run(DATA / "bad_rows.csv", True, tmp_path)
    assert actions(summary) == actions(preview)
    assert reasons(summary) == reasons(preview)
    got = reasons(summary)
    assert actions(summary) == {
        2: "add", 3: "rejected", 4: "rejected", 5: "rejected", 6: "rejected", 7: "rejected",
        8: "add", 9: "rejected", 10: "rejected", 11: "rejected", 12: "rejected", 13: "add",
        15: "rejected", 16: "rejected", 17: "add"}
    assert got[3] == "Last name is required"
    assert got[4] == "Unknown network element Nowhere"
    assert got[5] == "Unknown department Legal: add it first"
    assert got[6] == "Unknown location Mars: add it first"
    assert got[7] == "Unknown template Ghost: add it first"
    assert got[9] == "Login OK1 also appears on line 2 (only the first is imported)"
    assert got[10] == "First name contains the invalid character U+0001"
    assert got[11] == "Directory number must contain only digits, *, # and +"
    assert got[12] == ("Unknown service Fax: use MiCollab Client, NuPoint Voice Mail, "
                       "Audio Web Video, Teleworker")
    assert got[15].split("; ") == [
        "Last name is required", "Unknown location Mars: add it first",
        "Unknown service Fax: use MiCollab Client, NuPoint Voice Mail, Audio Web Video, "
        "Teleworker"]
    assert got[16] == ("The line has 6 values and the header 11 columns: a value with a comma "
                       "must be in double quotes")
    # Nothing of a rejected row is stored; the good rows around them are.
    assert logins() == {"ok1", "ok2", "ok3", "ok4"}
    assert db.session.scalar(select(User.last_name).where(User.login == "ok1")) == "One"
    assert summary.counts == {"add": 4, "update": 0, "unchanged": 0, "rejected": 11}
    assert [r.line for r in summary.rejected_rows] == [3, 4, 5, 6, 7, 9, 10, 11, 12, 15, 16]


def test_missing_required_column_is_a_file_error(site, tmp_path):
    path = write_csv(tmp_path / "no_element.csv", [["x", "X", "Y"]],
                     header=("login", "first_name", "last_name"))
    summary = run(path, True, tmp_path)
    assert summary.error == ("Missing required column element: the header (line 1) must name "
                             "login, last_name, element; it names login, first_name, last_name")
    assert summary.total == 0 and count(User) == 0
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    assert run(empty, False, tmp_path).error.startswith("The file is empty")


def test_a_file_error_midway_keeps_the_rows_before_it(site, tmp_path):
    path = tmp_path / "huge.csv"
    path.write_text("login,last_name,element\nok1,One,MiVB-1\nok2,Two,MiVB-1\n"
                    f"big,{'x' * 140_000},MiVB-1\nok3,Three,MiVB-1\n")
    summary = run(path, True, tmp_path)
    limit = csv.field_size_limit()
    assert summary.error == f"Line 4: not CSV (field larger than field limit ({limit}))"
    assert actions(summary) == {2: "add", 3: "add"} and logins() == {"ok1", "ok2"}
    after = json.loads(db.session.scalar(select(AuditEntry.summary)))["after"]
    assert (after["add"], after["error"]) == (2, summary.error)


def test_header_case_bom_unknown_columns_and_defaults(site, tmp_path):
    path = tmp_path / "excel.csv"
    path.write_bytes("\ufeffLOGIN,Last_Name,Extra,Element,Template\r\n"
                     "ann,Ames,whatever,,\r\n"
                     "ben,Bell,,MiVO-250,Agent\r\n".encode())
    summary = run(path, True, tmp_path, defaults={"element": "MiVB-1", "template": "Standard",
                                                  "department": "Support"})
    assert summary.error is None and actions(summary) == {2: "add", 3: "add"}
    ann = service.user_dict(db.session.scalar(select(User).where(User.login == "ann")))
    ben = service.user_dict(db.session.scalar(select(User).where(User.login == "ben")))
    assert (ann["element"], ann["template"], ann["department"], ann["location"]) == (
        "MiVB-1", "Standard", "Support", "Ottawa")
    assert (ben["element"], ben["template"], ben["department"], ben["services"]) == (
        "MiVO-250", "Agent", "Support", ["MiCollab Client"])
    bad = run(path, False, tmp_path, defaults={"template": "Nope"})
    assert bad.error == "Import options: Unknown template Nope: add it first"


def test_reimport_changes_nothing_and_updates_are_found(site, tmp_path):
    run(DATA / "users.csv", True, tmp_path)
    changes, stamps = count(Change), dict(db.session.execute(select(User.login,
                                                                    User.updated_at)).all())
    again = run(DATA / "users.csv", True, tmp_path)
    assert again.counts == {"add": 0, "update": 0, "unchanged": 7, "rejected": 2}
    assert count(Change) == changes
    db.session.expire_all()
    assert dict(db.session.execute(select(User.login, User.updated_at)).all()) == stamps

    text = (DATA / "users.csv").read_text(encoding="utf-8")
    edited = tmp_path / "edited.csv"
    edited.write_text(text.replace("alice,Alice,Archer", "Alice,Alicia,Archer")
                      .replace("carol@example.com", "carol@example.org"), encoding="utf-8")
    preview = run(edited, False, tmp_path)
    summary = run(edited, True, tmp_path)
    assert actions(summary) == actions(preview)
    assert summary.counts == {"add": 0, "update": 2, "unchanged": 5, "rejected": 2}
    assert actions(summary)[2] == actions(summary)[4] == "update"
    alice = db.session.scalar(select(User).where(User.login == "Alice"))  # case updated too
    assert (alice.first_name, alice.origin) == ("Alicia", "bulk")
    assert count(User) == 7


def test_export_reimports_unchanged(site, tmp_path):
    run(DATA / "users.csv", True, tmp_path)
    run(DATA / "directory.ldif", True, tmp_path,
        defaults={"element": "MiVB-1", "template": "Agent"})
    before = sorted((service.user_dict(u) for u in db.session.scalars(select(User))),
                    key=lambda d: d["login"])
    # A management platform's user is not exported: Bulk Import could not take it back.
    service.save_user({"login": "mgmt", "last_name": "Platform", "element": "MV5000",
                       "template": "Agent"}, "platform")
    exported = tmp_path / "export.csv"
    with open(exported, "w", newline="", encoding="utf-8") as f:
        assert bulk_export.export_csv(f) == len(before) == 10
    lines = exported.read_text(encoding="utf-8").splitlines()
    assert lines[0] == ",".join(bulk_read.COLUMNS)
    assert lines[1] == ("alice,Alice,Archer,alice@example.com,2001,MiVB-1,Ottawa,Sales,Standard,"
                        "MiCollab Client;NuPoint Voice Mail")
    assert [line.split(",")[0] for line in lines[1:]] == sorted(d["login"] for d in before)

    changes = count(Change)
    summary = run(exported, True, tmp_path)
    assert summary.counts == {"add": 0, "update": 0, "unchanged": 10, "rejected": 0}
    assert count(Change) == changes

    # Into an empty site, the export brings back the same users.
    db.session.execute(Change.__table__.delete())
    db.session.execute(User.__table__.delete())
    db.session.commit()
    summary = run(exported, True, tmp_path)
    assert summary.counts["add"] == 10
    after = sorted((service.user_dict(u) for u in db.session.scalars(select(User))),
                   key=lambda d: d["login"])
    strip = ("id", "origin")
    assert [{k: v for k, v in d.items() if k not in strip} for d in after] == \
        [{k: v for k, v in d.items() if k not in strip} for d in before]


def test_none_means_no_services_and_round_trips_past_the_templates(site, tmp_path):
    src = write_csv(tmp_path / "none.csv", [
        ["ann", "Ann", "Lee", "", "", "MiVB-1", "", "", "Standard", "none"],
        ["ben", "Ben", "Ode", "", "", "MiVB-1", "", "", "Standard", ""],
        ["cy", "Cy", "Ng", "", "", "MiVB-1", "", "", "", "None;Teleworker"]])
    summary = run(src, True, tmp_path)
    assert actions(summary) == {2: "add", 3: "add", 4: "rejected"}
    assert reasons(summary)[4] == ("Services: none means no services, and cannot be listed "
                                   "with service names")
    users = {u.login: u.service_list for u in db.session.scalars(select(User))}
    assert users == {"ann": [], "ben": ["MiCollab Client", "NuPoint Voice Mail"]}
    exported = tmp_path / "export.csv"
    with open(exported, "w", newline="", encoding="utf-8") as f:
        bulk_export.export_csv(f)
    assert exported.read_text(encoding="utf-8").splitlines()[1].endswith(",Standard,none")
    assert run(exported, True, tmp_path).counts["unchanged"] == 2


def test_ldif_import_uses_the_chosen_element_and_template(site, tmp_path):
    defaults = {"element": "MiVB-1", "template": "Standard"}
    preview = run(DATA / "directory.ldif", False, tmp_path, defaults)
    summary = run(DATA / "directory.ldif", True, tmp_path, defaults)
    assert actions(summary) == actions(preview)
    # Each entry's line is its dn: line, counting comments and folded lines.
    assert actions(summary) == {4: "rejected", 8: "add", 19: "add", 27: "add",
                                33: "rejected"}
    got = reasons(summary)
    assert got[4].split("; ") == [
        "No login: the entry has no uid or sAMAccountName (dn: ou=People,dc=example,dc=com)",
        "Last name is required", "Unknown department People: add it first"]
    assert got[33] == ("No login: the entry has no uid or sAMAccountName "
                       "(dn: cn=No Login,ou=People,dc=example,dc=com)")
    users = {u.login: service.user_dict(u) for u in db.session.scalars(select(User))}
    assert set(users) == {"jdoe", "mmuller", "auser"}
    for u in users.values():
        assert (u["element"], u["template"], u["origin"]) == ("MiVB-1", "Standard", "bulk")
        assert u["services"] == ["MiCollab Client", "NuPoint Voice Mail"]
    jdoe, mmuller = users["jdoe"], users["mmuller"]
    assert (jdoe["email"], jdoe["number"], jdoe["location"], jdoe["department"]) == (
        "john.doe@example.com", "+16135550101", "Kanata", "Sales")  # folded mail
    assert (mmuller["last_name"], mmuller["department"], mmuller["location"]) == (
        "Müller", "Support", "Ottawa")  # base64 sn
    assert run(DATA / "directory.ldif", True, tmp_path, defaults).counts == {
        "add": 0, "update": 0, "unchanged": 3, "rejected": 2}


def test_ldif_broken_entries_are_rejected_alone(site, tmp_path):
    path = tmp_path / "broken.ldif"
    path.write_bytes(b"dn: uid=a,dc=x\nuid: a\nsn: A\n\n"
                     b"dn: uid=b,dc=x\nthis line has no colon\n\n"
                     b"dn: uid=c,dc=x\nchangetype: delete\n\n"
                     b"dn: uid=d,dc=x\nuid: d\nsn: D\ngivenName: \xe9t\xe9\n\n"
                     b"dn: uid=e,dc=x\r\nuid: e\r\nsn: E\r\n")
    summary = run(path, True, tmp_path, defaults={"element": "MiVO-250"}, fmt="ldif")
    assert actions(summary) == {1: "add", 5: "rejected", 8: "rejected", 11: "rejected",
                                16: "add"}
    got = reasons(summary)
    assert got[5].startswith("Not an LDIF entry")
    assert got[8] == "LDIF change records are not imported (changetype: delete) (dn: uid=c,dc=x)"
    assert got[11] == "First name is not UTF-8 text"
    assert logins() == {"a", "e"}


def test_bad_utf8_in_csv_rejects_the_row_and_shows_the_bytes(site, tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes(b"login,last_name,element\nj\xe9r\xf4me,Dupont,MiVB-1\nok,Fine,MiVB-1\n")
    summary = run(path, True, tmp_path)
    assert actions(summary) == {2: "rejected", 3: "add"}
    assert summary.rows[0].login == "j\\xe9r\\xf4me"
    assert reasons(summary)[2] == "Login is not UTF-8 text"
    assert logins() == {"ok"}


def test_over_licence_rejects_exactly_the_rows_beyond_it(site, tmp_path):
    service.set_licences({"Teleworker": 4})
    service.save_user({"login": "existing", "last_name": "E", "element": "MiVO-250",
                       "services": "Teleworker"})
    rows = [[f"t{i}", "", f"T{i}", "", "", "MiVO-250", "", "", "", "Teleworker"]
            for i in range(1, 6)]
    rows.insert(3, ["plain", "", "Plain", "", "", "MiVO-250", "", "", "", ""])
    path = write_csv(tmp_path / "licences.csv", rows)
    preview = run(path, False, tmp_path)
    summary = run(path, True, tmp_path)
    assert actions(summary) == actions(preview) == {
        2: "add", 3: "add", 4: "add", 5: "add", 6: "rejected", 7: "rejected"}
    message = "Licence Teleworker: 4 available and 4 in use; this user needs one more"
    assert reasons(summary)[6] == reasons(summary)[7] == message
    assert logins() == {"existing", "t1", "t2", "t3", "plain"}
    # Dropping a service frees its licence for a later row of the same file.
    rows = [["t1", "", "T1", "", "", "MiVO-250", "", "", "", ""],
            ["t4", "", "T4", "", "", "MiVO-250", "", "", "", "Teleworker"]]
    summary = run(write_csv(tmp_path / "swap.csv", rows), True, tmp_path)
    assert actions(summary) == {2: "update", 3: "add"}


def test_mivoice_5000_is_refused_for_bulk_import(site, tmp_path):
    path = write_csv(tmp_path / "m5k.csv", [["m1", "", "M", "", "", "MV5000", "", "", "", ""]])
    summary = run(path, True, tmp_path)
    assert reasons(summary) == {2: MV5000_MESSAGE}
    summary = run(DATA / "directory.ldif", True, tmp_path, defaults={"element": "MV5000"})
    assert summary.error == f"Import options: {MV5000_MESSAGE}"
    assert summary.total == 0 and count(User) == 0


def test_flow_through_changes_for_mivoice_business_users_only(site, tmp_path):
    run(DATA / "users.csv", True, tmp_path)
    changes = db.session.scalars(select(Change).order_by(Change.id)).all()
    mivb = {u.login for u in db.session.scalars(select(User)) if u.element.platform == MIVB}
    assert mivb == {"alice", "bob", "erin", "grace"}
    assert [c.login for c in changes] == ["alice", "bob", "erin", "grace"]
    for c in changes:
        user = db.session.scalar(select(User).where(User.login == c.login))
        assert (c.action, c.state, c.element_id) == ("add", "pending", user.element_id)
        assert c.payload == json.dumps(service.user_dict(user))  # as service.queue has it

    edited = tmp_path / "edited.csv"
    edited.write_text((DATA / "users.csv").read_text(encoding="utf-8")
                      .replace(",2002,", ",2102,").replace(",2003,", ",2103,"),
                      encoding="utf-8")
    run(edited, True, tmp_path)
    new = db.session.scalars(select(Change).where(Change.id > changes[-1].id)).all()
    assert [(c.action, c.login) for c in new] == [("update", "bob")]  # carol is on MiVO 250
    bob = db.session.scalar(select(User).where(User.login == "bob"))
    assert new[0].payload == json.dumps(service.user_dict(bob))
    assert json.loads(new[0].payload)["number"] == "2102"


def test_resolve_user_reports_every_reason_with_its_messages(site):
    with pytest.raises(Invalid) as exc:
        service.resolve_user({"login": "bad login", "last_name": "", "element": "MV5000",
                              "location": "Mars", "services": "Fax"}, "bulk")
    assert exc.value.messages() == {
        "login": "Login must contain only letters, digits and . _ @ + -",
        "last_name": "Last name is required",
        "element": MV5000_MESSAGE,
        "location": "Unknown location Mars: add it first",
        "services": "Unknown service Fax: use MiCollab Client, NuPoint Voice Mail, Audio Web "
                    "Video, Teleworker"}
    # Names match whatever their case, non-ASCII letters included.
    service.save_named(Location, {"name": "Équipe"})
    values = service.resolve_user({"login": "x", "last_name": "X", "element": "mivb-1",
                                   "location": "ÉQUIPE"}, "manual", service.Licences())
    assert values["location_id"] == db.session.scalar(
        select(Location.id).where(Location.name == "Équipe"))
    user = service.save_user({"login": "x", "last_name": "X", "element": "MiVB-1"})
    with pytest.raises(Invalid, match="Login X is already provisioned"):
        service.resolve_user({"login": "X", "last_name": "X", "element": "MiVB-1"}, "manual")
    assert service.resolve_user({"login": "X", "last_name": "Y", "element": "MiVB-1"},
                                "manual", service.Licences(), user)["last_name"] == "Y"


def generate_csv(path: Path, n: int, element: str = "MiVB-1") -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(bulk_read.COLUMNS)
        for i in range(n):
            w.writerow((f"user{i:06d}", f"First{i}", f"Last{i}", f"user{i}@example.com",
                        str(100000 + i), element, "Kanata" if i % 2 else "Ottawa",
                        "Support" if i % 3 else "Sales", "Agent" if i % 5 else "Standard",
                        "MiCollab Client;Teleworker" if i % 7 else ""))
    return path


def test_large_file_is_streamed(site, tmp_path):
    for t in service.SERVICES:
        service.set_licences({t: 1_000_000})
    # Sizes far enough apart to see memory per row (tracemalloc makes each row slow).
    small, large = (generate_csv(tmp_path / f"gen{n}.csv", n) for n in (1_000, 6_000))
    peaks = {}
    for path in (small, large):
        db.session.execute(Change.__table__.delete())
        db.session.execute(User.__table__.delete())
        db.session.commit()
        tracemalloc.start()
        try:
            summary = bulk.run(path, "csv", apply=True, report_path=tmp_path / "r.csv")
            peaks[path] = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert summary.counts["add"] == summary.total and summary.error is None
        assert len(summary.rows) == bulk.SHOWN
    assert count(User) == 6_000 and count(Change) == 6_000
    # Holding the rows would cost well over 1 KB each (a dict of ten strings); the import
    # keeps only each login and its line (for duplicates), so memory grows far less per row.
    per_row = (peaks[large] - peaks[small]) / 5_000
    print(f"memory per row: {per_row:.0f} B; peak {peaks[large] / 2**20:.1f} MiB")
    assert per_row < 400, (per_row, peaks)
    assert peaks[large] < 15 * 2**20, peaks
    # And the report names every row, in file order.
    with open(tmp_path / "r.csv", newline="") as f:
        lines = [int(r["line"]) for r in csv.DictReader(f)]
    assert lines == list(range(2, 6_002))


def test_a_large_import_leaves_the_planner_statistics(site, tmp_path):
    service.set_licences(dict.fromkeys(service.SERVICES, 1_000_000))
    small = bulk.run(generate_csv(tmp_path / "small.csv", 10), "csv", apply=True)
    assert small.counts["add"] == 10 and planner_rows(User.__tablename__) != 10
    large = bulk.run(generate_csv(tmp_path / "large.csv", ANALYZE_ROWS + 11), "csv", apply=True)
    assert large.counts["add"] == ANALYZE_ROWS + 1  # and the 10 unchanged
    assert planner_rows(User.__tablename__) == count(User) == ANALYZE_ROWS + 11
    assert planner_rows(Change.__tablename__) == count(Change)


def test_sample_files_are_what_the_tests_expect():
    # bad_rows.csv holds a raw U+0001 and a quoted two-line value: keep them byte-exact.
    raw = (DATA / "bad_rows.csv").read_bytes()
    assert b"Bad\x01Char" in raw and b'"a note\nover two lines"' in raw


def test_the_report_does_not_hand_spreadsheets_formulas(site, tmp_path):
    src = write_csv(tmp_path / "formula.csv", [
        ["=HYPERLINK(\"x\")", "A", "B", "", "", "MiVB-1", "", "", "", ""],
        ["@SUM(1)", "A", "B", "", "", "MiVB-1", "", "", "", ""]])
    summary = run(src, False, tmp_path)
    assert [r["login"] for r in summary.report] == ["'=HYPERLINK(\"x\")", "'@SUM(1)"]
    assert {r["action"] for r in summary.report} == {"rejected"}


def test_a_crash_midway_leaves_what_was_committed_audited_and_reported(site, tmp_path,
                                                                      monkeypatch):
    src = generate_csv(tmp_path / "gen.csv", 3 * bulk.CHUNK + 10, element="MiVO-250")
    for t in service.SERVICES:
        service.set_licences({t: 100_000})
    store, calls = bulk_store.Importer.store, []

    def third_fails(self, adds, updates):
        calls.append(len(adds))
        store(self, adds, updates)
        if len(calls) == 3:
            raise OSError("disk full")
    monkeypatch.setattr(bulk_store.Importer, "store", third_fails)
    checkpoints = []
    with pytest.raises(OSError):
        bulk.run(src, "csv", apply=True, report_path=tmp_path / "r.csv",
                 checkpoint=lambda s: checkpoints.append(s.total))
    assert checkpoints == [1000, 2000] and count(User) == 2000
    (entry,) = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "import")).all()
    assert json.loads(entry.summary)["after"] == {
        "file": "gen.csv", "format": "csv", "add": 2000, "update": 0, "unchanged": 0,
        "rejected": 0, "queued": 0,
        "error": "the import failed; the rows up to line 2001 were committed"}
    with open(tmp_path / "r.csv", newline="") as f:
        assert [int(r["line"]) for r in csv.DictReader(f)] == list(range(2, 2002))

    monkeypatch.setattr(bulk_store.Importer, "store", store)
    again = bulk.run(src, "csv", apply=True)
    assert again.counts == {"add": 1010, "update": 0, "unchanged": 2000, "rejected": 0}
    assert count(User) == 3010
