"""Corporate Directory and Accounts: the import rule, and the tables."""

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from appliance.db import db
from appliance.directory import SourceImport, SuspiciousImport, remove_source, replace_source
from appliance.models import Account, Contact, Enterprise


@pytest.fixture
def ent(app):
    with app.app_context():
        e = Enterprise(eid="acme", name="Acme")
        db.session.add(e)
        db.session.commit()
        return e.id


def _rows(n, prefix="u"):
    return [{"external_id": f"{prefix}{i}", "first_name": f"F{i}", "last_name": f"L{i:05d}",
             "email": f"{prefix}{i}@acme.test", "login": f"{prefix}{i}"} for i in range(n)]


def _count(model, ent_id):
    return db.session.scalar(select(func.count()).select_from(model)
                             .where(model.enterprise_id == ent_id))


def test_replace_adds_updates_and_removes_in_one_go(app, ent):
    with app.app_context():
        e = db.session.get(Enterprise, ent)
        first = replace_source(Contact, e, "sync:1", "LDAP", _rows(10))
        assert first.as_dict() == {"added": 10, "updated": 0, "removed": 0, "unchanged": 0}
        rows = _rows(9)
        rows[0]["email"] = "new@acme.test"
        second = replace_source(Contact, e, "sync:1", "LDAP", rows)
        assert second.as_dict() == {"added": 0, "updated": 1, "removed": 1, "unchanged": 8}
        assert _count(Contact, ent) == 9


def test_other_sources_are_not_touched(app, ent):
    with app.app_context():
        e = db.session.get(Enterprise, ent)
        replace_source(Contact, e, "sync:1", "LDAP", _rows(5))
        replace_source(Contact, e, "peering:2", "Peer", _rows(3, "p"))
        replace_source(Contact, e, "sync:1", "LDAP", _rows(4))
        assert _count(Contact, ent) == 7


def test_incomplete_or_shrunken_results_remove_nothing(app, ent):
    with app.app_context():
        e = db.session.get(Enterprise, ent)
        replace_source(Account, e, "sync:1", "LDAP", _rows(100))
        with pytest.raises(SuspiciousImport, match="incomplete"):
            replace_source(Account, e, "sync:1", "LDAP", _rows(10), complete=False)
        with pytest.raises(SuspiciousImport, match="90 of 100 entries would be removed"):
            replace_source(Account, e, "sync:1", "LDAP", _rows(10))
        with pytest.raises(SuspiciousImport):
            replace_source(Account, e, "sync:1", "LDAP", [])
        assert _count(Account, ent) == 100
        done = replace_source(Account, e, "sync:1", "LDAP", _rows(10), allow_drop=True)
        assert done.removed == 90 and _count(Account, ent) == 10


def test_a_failed_write_leaves_the_old_set(app, ent):
    with app.app_context():
        e = db.session.get(Enterprise, ent)
        replace_source(Account, e, "sync:1", "LDAP", _rows(5))
        rows = _rows(6)
        rows[5]["login"] = "u0"  # breaks the unique (enterprise, login) constraint
        with pytest.raises(IntegrityError, match="UNIQUE|duplicate key"):  # SQLite | PostgreSQL
            replace_source(Account, e, "sync:1", "LDAP", rows)
        assert sorted(db.session.scalars(select(Account.login))) == [f"u{i}" for i in range(5)]


def test_a_delta_changes_only_what_it_names(app, ent):
    with app.app_context():
        e = db.session.get(Enterprise, ent)
        replace_source(Account, e, "sync:1", "LDAP", _rows(100))
        changed = _rows(3)
        changed[1]["last_name"] = "Renamed"
        changed[2]["login"] = "u50"  # an unchanged row of the same source keeps that login
        with SourceImport(e, "sync:1", "LDAP", (Account,), delta=True) as imp:
            imp.add(changed + [{"external_id": "new", "login": "new", "last_name": "N"}])
            imp.remove(["u7", "u8", "nobody"])
            assert [c[:2] for c in imp.login_conflicts()] == [("u2", "u50")]
            imp.drop(["u2"])
            result = imp.commit(max_drop=0.5)[Account]
        assert result.as_dict() == {"added": 1, "updated": 1, "removed": 2, "unchanged": 1}
        logins = set(db.session.scalars(select(Account.login)))
        assert len(logins) == 99 and {"new", "u2", "u50"} <= logins
        assert not {"u7", "u8"} & logins
        with SourceImport(e, "sync:1", "LDAP", (Account,), delta=True) as imp:
            imp.remove([f"u{i}" for i in range(10, 80)])
            with pytest.raises(SuspiciousImport, match="70 of 99 entries would be removed"):
                imp.commit(max_drop=0.5)
        assert _count(Account, ent) == 99


def test_remove_source(app, ent):
    with app.app_context():
        e = db.session.get(Enterprise, ent)
        replace_source(Account, e, "sync:1", "LDAP", _rows(5))
        assert remove_source(Account, e, "sync:1") == 5
        assert _count(Account, ent) == 0


def test_directory_page_searches_sorts_and_pages(app, admin, ent):
    with app.app_context():
        replace_source(Contact, db.session.get(Enterprise, ent), "sync:1", "LDAP", _rows(120))
    page = admin.get("/directory").get_data(as_text=True)
    assert "120 results" in page and "page 1 of 3" in page and "L00000" in page
    desc = admin.get("/directory?sort=last_name&dir=desc", htmx=True,
                     headers={"HX-Target": "people-table"}).get_data(as_text=True)
    assert desc.index("L00119") < desc.index("L00118") and "<header" not in desc
    found = admin.get("/directory?q=u7@").get_data(as_text=True)
    assert "1 result " in found and "u7@acme.test" in found
    assert "LDAP" in found  # the source that brought the contact in


def test_accounts_page_and_api(app, admin, api, ent):
    with app.app_context():
        replace_source(Account, db.session.get(Enterprise, ent), "sync:1", "LDAP", _rows(3))
    assert "u2@acme.test" in admin.get("/accounts").get_data(as_text=True)
    got = api("GET", f"/api/v1/enterprises/{ent}/accounts?q=u1").get_json()
    assert got["total"] == 1 and got["items"][0]["login"] == "u1"
    contacts = api("GET", f"/api/v1/enterprises/{ent}/contacts").get_json()
    assert contacts["total"] == 0
