"""Accounts an LDAP synchronizer brought in sign in with their directory password, checked
by a bind against the real slapd, with the synchronizer's TLS settings."""

import pytest

from appliance.core.client import service as client
from appliance.db import db
from appliance.models import Account, Enterprise
from tests.ldap_server import PEOPLE_DN, Slapd
from tests.test_sync import add_ldap, ldap, sync


@pytest.fixture(scope="module")
def slapd(tmp_path_factory):
    with Slapd(tmp_path_factory.mktemp("slapd"), people=5) as server:
        for i in range(3):
            server.modify(f"uid=user{i},{PEOPLE_DN}", {"userPassword": f"secret-{i}"})
        yield server


@pytest.fixture
def app(make_app):
    return make_app(XMPP_SIGNIN_TIMEOUT=1.5)  # the directory-down test waits this long


@pytest.fixture
def synced(app, api, slapd):
    ent = api("POST", "/api/v1/enterprises", json={"name": "Acme", "eid": "acme"}).get_json()["id"]
    with app.app_context():
        db.session.get(Enterprise, ent).im_domain = "acme.test"
        db.session.commit()
    slapd.ca_into(app.config["IMPORT_DIR"])
    syn = add_ldap(api, ent, ldap(slapd))
    run = sync(app, api, syn["id"])
    assert run.state == "succeeded", run.message
    return ent


def sign_in(app, user, password):
    with app.test_request_context():
        return client.check("acme.test", user, password)


def test_a_synced_account_signs_in_with_its_directory_password(app, synced):
    assert sign_in(app, "user0", "secret-0") == "ok"
    assert sign_in(app, "user0", "secret-0") == "ok"  # the cached DN
    assert sign_in(app, "user1", "secret-1") == "ok"
    assert sign_in(app, "user0", "secret-1") == "wrong"
    assert sign_in(app, "user0", "") == "wrong"  # never an unauthenticated bind
    assert sign_in(app, "user4", "anything") == "wrong"  # the entry has no password


def test_the_directory_password_is_not_stored(app, synced):
    assert sign_in(app, "user2", "secret-2") == "ok"
    with app.app_context():
        acc = db.session.scalar(db.select(Account).filter_by(login="user2"))
        from appliance.models import XmppCredential
        assert db.session.get(XmppCredential, acc.id) is None


def test_an_unreachable_directory_is_a_temporary_failure(app, synced, slapd):
    assert sign_in(app, "user1", "secret-1") == "ok"
    slapd.pause()  # SIGSTOP: it accepts nothing and answers nothing
    try:
        assert sign_in(app, "user1", "wrong") == "unavailable"  # never "wrong" when unknown
    finally:
        slapd.resume()
    assert sign_in(app, "user1", "secret-1") == "ok"
    with app.app_context():
        acc = db.session.scalar(db.select(Account).filter_by(login="user1"))
        assert acc.enabled  # nothing about the account changed


def test_a_moved_or_deleted_entry_is_found_again_or_refused(app, synced, slapd):
    assert sign_in(app, "user2", "secret-2") == "ok"
    slapd.add(f"ou=moved,{PEOPLE_DN}", {"objectClass": ["organizationalUnit"], "ou": "moved"})
    moved = slapd.rename(f"uid=user2,{PEOPLE_DN}", "uid=user2", f"ou=moved,{PEOPLE_DN}")
    assert sign_in(app, "user2", "secret-2") == "ok"  # the cached DN is stale: found again
    slapd.modify(moved, {"userPassword": "changed-2"})
    assert sign_in(app, "user2", "secret-2") == "wrong"
    assert sign_in(app, "user2", "changed-2") == "ok"  # the directory decides, at once
    slapd.delete(f"uid=user3,{PEOPLE_DN}")
    assert sign_in(app, "user3", "anything") == "wrong"
