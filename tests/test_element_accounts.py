"""The users provisioned on a network element that belongs to an enterprise are that
enterprise's accounts (appliance/plugins/network_elements/accounts.py): they follow every
write path, report a login another source already has, and sign in to the XMPP service
once their password is set (the end-to-end test at the bottom: a real Prosody, a real
slixmpp client)."""

import io
import json
import re

import pytest

from appliance import hookimpl
from appliance.db import db
from appliance.models import Account
from tests.prosody_server import prosody_available, serving
from tests.security.served import Served
from tests.servers import wait_until
from tests.test_client_xmpp import DOMAIN, _get, _token, client
from tests.test_network_elements import _ldap, _seed, element

USERS = "/api/v1/network-elements/users"
ELEMENTS = "/api/v1/network-elements/elements"


class Listener:
    """A plugin that hears what the host tells others about accounts."""

    def __init__(self):
        self.imported, self.removed = [], []

    @hookimpl
    def appliance_accounts_imported(self, enterprise, source, result):
        self.imported.append((enterprise.eid, source, result.as_dict()))

    @hookimpl
    def appliance_accounts_removed(self, enterprise, source, logins):
        self.removed.append((enterprise.eid, source, sorted(logins)))


@pytest.fixture
def listener():
    return Listener()


@pytest.fixture
def app(make_app, listener):
    return make_app(EXTRA_PLUGINS=[("listener", listener)])


def enterprise(api, eid, im_domain=None):
    resp = api("POST", "/api/v1/enterprises", json={"name": eid.capitalize(), "eid": eid,
                                                    "im_domain": im_domain})
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()["id"]


@pytest.fixture
def site(api):
    """Enterprises acme (with an IM domain) and globex; elements MiVB-1 of acme and
    MiVO-1 of none; two departments; licences."""
    acme, globex = enterprise(api, "acme", "im.acme.test"), enterprise(api, "globex")
    mivb = element(api, "MiVB-1", "MiVoice Business")
    assert _put_element(api, mivb["id"], enterprise_id=acme).status_code == 200
    mivo = element(api, "MiVO-1", "MiVoice Office 250", address="10.0.0.6")
    for d in ("Sales", "Support"):
        api("POST", "/api/v1/network-elements/departments", json={"name": d})
    api("PUT", "/api/v1/network-elements/licences", json={"items": [
        {"type": "MiCollab Client", "available": 100}]})
    return {"acme": acme, "globex": globex, "mivb": mivb["id"], "mivo": mivo["id"]}


def _put_element(api, eid, **changes):
    return api("PUT", f"{ELEMENTS}/{eid}", json=changes)


def add_user(api, login="ann", element_name="MiVB-1", **kw):
    return api("POST", USERS, json={"login": login, "first_name": login.capitalize(),
                                    "last_name": "Lee", "element": element_name, **kw})


def accounts_of(api, ent_id) -> dict:
    """login -> the account, as the enterprise's Accounts API lists them."""
    items = api("GET", f"/api/v1/enterprises/{ent_id}/accounts?per_page=1000") \
        .get_json()["items"]
    return {a["login"]: a for a in items}


def test_api_create_update_delete_keep_the_account_in_step(app, api, site, listener):
    made = add_user(api, email="ann@acme.test", number="2001", department="Sales")
    assert made.status_code == 201, made.get_json()
    user = made.get_json()
    assert user["enterprise"] == "Acme" and user["account_conflict"] is None
    acc = api("GET", f"/api/v1/accounts/{user['account_id']}").get_json()
    assert (acc["login"], acc["first_name"], acc["last_name"], acc["email"], acc["phone"],
            acc["department"]) == ("ann", "Ann", "Lee", "ann@acme.test", "2001", "Sales")
    assert (acc["source"], acc["source_label"], acc["enterprise_id"]) == (
        f"element:{site['mivb']}", "MiVB-1", site["acme"])
    assert acc["xmpp_address"] == "ann@im.acme.test" and acc["sign_in"] == "password"
    # A new login, number and department: the same account (keyed by the user's id), so a
    # password set for it stays.
    assert api("PUT", f"/api/v1/accounts/{acc['id']}/xmpp-password",
               json={"password": "long enough pw"}).status_code == 204
    changed = api("PUT", f"{USERS}/{user['id']}", json={
        "login": "ann.lee", "number": "2002", "department": "Support"})
    assert changed.status_code == 200 and changed.get_json()["account_id"] == acc["id"]
    acc = api("GET", f"/api/v1/accounts/{acc['id']}").get_json()
    assert (acc["login"], acc["phone"], acc["department"], acc["password_set"]) == (
        "ann.lee", "2002", "Support", True)
    # The users list says the same.
    listed = api("GET", USERS).get_json()["items"]
    assert [(u["login"], u["account_id"]) for u in listed] == [("ann.lee", acc["id"])]
    assert api("DELETE", f"{USERS}/{user['id']}").status_code == 204
    assert api("GET", f"/api/v1/accounts/{acc['id']}").status_code == 404
    assert accounts_of(api, site["acme"]) == {}
    assert listener.removed == [("acme", f"element:{site['mivb']}", ["ann.lee"])]


def test_a_user_on_an_element_of_no_enterprise_is_no_account(api, site):
    user = add_user(api, login="bo", element_name="MiVO-1").get_json()
    assert (user["enterprise"], user["account_id"], user["account_conflict"]) == (
        None, None, None)
    assert accounts_of(api, site["acme"]) == {} and accounts_of(api, site["globex"]) == {}


def test_the_page_forms_keep_the_account_in_step(app, admin, api, site):
    # The element form offers the enterprises, and (none).
    page = admin.get(f"/network-elements/elements/{site['mivo']}").get_data(as_text=True)
    assert '<option value="">(none)</option>' in page
    assert re.search(rf'<option value="{site["globex"]}"[^>]*>Globex</option>', page)
    form = {"name": "MiVO-1", "platform": "MiVoice Office 250", "address": "10.0.0.6",
            "enterprise_id": str(site["globex"])}
    assert admin.post(f"/network-elements/elements/{site['mivo']}", data=form) \
        .status_code == 302
    resp = admin.post("/network-elements/users/new", data={
        "login": "cy", "first_name": "Cy", "last_name": "Kim", "element": "MiVO-1",
        "number": "3001", "department": "Sales"})
    assert resp.status_code == 302, resp.get_data(as_text=True)
    acc = accounts_of(api, site["globex"])["cy"]
    assert (acc["phone"], acc["department"], acc["source"]) == (
        "3001", "Sales", f"element:{site['mivo']}")
    uid = int(resp.headers["Location"].rsplit("/", 1)[1])
    page = admin.get(f"/network-elements/users/{uid}").get_data(as_text=True)
    assert f'href="/accounts/{acc["id"]}"' in page and "Account of Globex" in page
    resp = admin.post(f"/network-elements/users/{uid}", data={
        "login": "cy", "first_name": "Cyrus", "last_name": "Kim", "element": "MiVO-1",
        "number": "3002", "department": "none"})
    assert resp.status_code == 302
    acc = accounts_of(api, site["globex"])["cy"]
    assert (acc["first_name"], acc["phone"], acc["department"]) == ("Cyrus", "3002", "")
    page = admin.get(f"/network-elements/elements/{site['mivo']}").get_data(as_text=True)
    assert "accounts of <strong>Globex</strong>: 1 account(s)" in page
    assert admin.post(f"/network-elements/users/{uid}/delete").status_code == 302
    assert accounts_of(api, site["globex"]) == {}


def test_a_user_moved_to_another_element_moves_its_account(api, site):
    _put_element(api, site["mivo"], enterprise_id=site["globex"])
    user = add_user(api, login="di").get_json()
    assert set(accounts_of(api, site["acme"])) == {"di"}
    moved = api("PUT", f"{USERS}/{user['id']}", json={"element": "MiVO-1"}).get_json()
    assert moved["enterprise"] == "Globex" and moved["account_id"] is not None
    assert accounts_of(api, site["acme"]) == {}
    assert accounts_of(api, site["globex"])["di"]["source"] == f"element:{site['mivo']}"


def test_a_user_moved_between_two_elements_of_one_enterprise_keeps_an_account(app, api, site):
    """The account moves from one element's source to the other's, whichever element is
    synced first (a bulk import moving users both ways)."""
    _put_element(api, site["mivo"], enterprise_id=site["acme"])
    up = add_user(api, login="up", element_name="MiVO-1").get_json()
    add_user(api, login="down", element_name="MiVO-1")
    moved = api("PUT", f"{USERS}/{up['id']}", json={"element": "MiVB-1"}).get_json()
    assert moved["account_id"] is not None and moved["account_conflict"] is None
    assert accounts_of(api, site["acme"])["up"]["source"] == f"element:{site['mivb']}"
    csv_text = ("login,first_name,last_name,email,number,element,location,department,"
                "template,services\n"
                "up,Up,Lee,,,MiVO-1,,,,none\n"
                "down,Down,Lee,,,MiVB-1,,,,none\n")
    resp = api("POST", "/api/v1/network-elements/bulk?apply=1", data={
        "file": (io.BytesIO(csv_text.encode()), "users.csv")},
        content_type="multipart/form-data")
    with app.app_context():
        run = app.extensions["appliance"].jobs.wait(resp.get_json()["run_id"])
    assert run.state == "succeeded", run.message
    got = accounts_of(api, site["acme"])
    assert {k: a["source"] for k, a in got.items()} == {
        "up": f"element:{site['mivo']}", "down": f"element:{site['mivb']}"}
    assert {u["login"]: u["account_id"] for u in api("GET", USERS).get_json()["items"]} == {
        "up": got["up"]["id"], "down": got["down"]["id"]}


def test_bulk_import_makes_the_accounts_in_one_go(app, admin, api, site, listener):
    rows = "".join(f"u{i},First{i},Last{i},u{i}@acme.test,{4000 + i},MiVB-1,,Sales,,"
                   "MiCollab Client\n" for i in range(25))
    csv_text = "login,first_name,last_name,email,number,element,location,department," \
               "template,services\n" + rows
    listener.imported.clear()
    resp = api("POST", "/api/v1/network-elements/bulk?apply=1", data={
        "file": (io.BytesIO(csv_text.encode()), "users.csv")},
        content_type="multipart/form-data")
    assert resp.status_code == 202, resp.get_json()
    run_id = resp.get_json()["run_id"]
    with app.app_context():
        assert app.extensions["appliance"].jobs.wait(run_id).state == "succeeded"
    got = accounts_of(api, site["acme"])
    assert len(got) == 25 and got["u7"]["phone"] == "4007" and got["u7"]["department"] == "Sales"
    # One merge for the element, after the import: not one per row.
    source = f"element:{site['mivb']}"
    assert [(s, r["added"]) for _, s, r in listener.imported] == [(source, 25)]
    summary = api("GET", f"/api/v1/network-elements/bulk/{run_id}").get_json()
    assert summary["accounts"]["added"] == 25 and summary["accounts"]["conflicts"] == 0
    page = admin.get(f"/network-elements/bulk/runs/{run_id}").get_data(as_text=True)
    assert "enterprises: 25 added, 0 updated, 0 removed." in page


def test_ids_seeds_accounts_and_reports_a_clash(app, api, site, tmp_path):
    from tests.ldap_server import Slapd

    with app.app_context():  # user3's login is an LDAP synchronizer's account already
        db.session.add(Account(enterprise_id=site["acme"], source="sync:9",
                               source_label="Head office LDAP", external_id="u3",
                               login="user3"))
        db.session.commit()
    mivb = {"id": site["mivb"]}
    with Slapd(tmp_path / "slapd", people=6) as slapd:
        slapd.ca_into(app.config["IMPORT_DIR"])
        assert api("PUT", f"{ELEMENTS}/{site['mivb']}/ids", json=_ldap(slapd)).status_code == 200
        run = _seed(app, api, mivb)
    assert run.state == "succeeded", run.message
    assert "1 user(s) without an account: user3 has no account in Acme" in run.message
    got = accounts_of(api, site["acme"])
    assert set(got) == {f"user{i}" for i in range(6)}
    assert got["user3"]["source"] == "sync:9"
    assert got["user2"]["source"] == f"element:{site['mivb']}"
    assert (got["user2"]["first_name"], got["user2"]["email"]) == ("First2", "user2@example.test")


def test_the_elements_enterprise_moves_or_removes_its_accounts(api, site, listener):
    for login in ("ed", "flo"):
        add_user(api, login=login)
    source = f"element:{site['mivb']}"
    moved = _put_element(api, site["mivb"], enterprise_id=site["globex"])
    assert moved.status_code == 200, moved.get_json()
    assert moved.get_json()["enterprise_id"] == site["globex"]
    assert moved.get_json()["accounts"]["accounts"] == 2
    assert accounts_of(api, site["acme"]) == {}
    assert set(accounts_of(api, site["globex"])) == {"ed", "flo"}
    assert ("acme", source, ["ed", "flo"]) in listener.removed  # signed out of acme
    # A rename relabels them.
    _put_element(api, site["mivb"], name="MiVB-HQ")
    assert {a["source_label"] for a in accounts_of(api, site["globex"]).values()} == {"MiVB-HQ"}
    cleared = _put_element(api, site["mivb"], enterprise_id=None)
    assert cleared.status_code == 200 and cleared.get_json()["accounts"] is None
    assert accounts_of(api, site["globex"]) == {}
    assert ("globex", source, ["ed", "flo"]) in listener.removed
    users = api("GET", USERS).get_json()["items"]
    assert {u["login"] for u in users} == {"ed", "flo"}  # the users stay
    assert {u["account_id"] for u in users} == {None}


def test_deleting_the_element_removes_its_accounts(app, api, site):
    # MiVoice Office 250: no flow-through changes keep it from going.
    _put_element(api, site["mivo"], enterprise_id=site["globex"])
    user = add_user(api, login="gil", element_name="MiVO-1").get_json()
    refused = api("DELETE", f"{ELEMENTS}/{site['mivo']}")
    assert refused.status_code == 409 and set(accounts_of(api, site["globex"])) == {"gil"}
    api("DELETE", f"{USERS}/{user['id']}")
    # An account left behind (written while the plugin was blocked, say) goes too.
    with app.app_context():
        db.session.add(Account(enterprise_id=site["globex"], source=f"element:{site['mivo']}",
                               source_label="MiVO-1", external_id="999", login="left"))
        db.session.commit()
    assert api("DELETE", f"{ELEMENTS}/{site['mivo']}").status_code == 200
    assert accounts_of(api, site["globex"]) == {}


def test_a_department_rename_reaches_the_accounts(api, site):
    add_user(api, login="hal", department="Sales")
    sales = next(d for d in api("GET", "/api/v1/network-elements/departments")
                 .get_json()["items"] if d["name"] == "Sales")
    api("PUT", f"/api/v1/network-elements/departments/{sales['id']}", json={"name": "Sales EU"})
    assert accounts_of(api, site["acme"])["hal"]["department"] == "Sales EU"


def test_the_management_platform_provisions_accounts(client, api, site):
    mv = element(api, "MV5000-1", "MiVoice 5000", address="10.0.0.7")
    _put_element(api, mv["id"], enterprise_id=site["acme"])
    api("POST", "/api/v1/network-elements/templates", json={
        "name": "Agent", "kind": "role", "services": ["MiCollab Client"]})
    tok = api("POST", f"{ELEMENTS}/{mv['id']}/token").get_json()["token"]
    auth = {"Authorization": f"Bearer {tok}"}
    made = client.put("/api/v1/network-elements/platform/users/ivy", headers=auth,
                      json={"last_name": "Ng", "role": "Agent", "number": "5001"})
    assert made.status_code == 201 and made.get_json()["account_id"] is not None
    assert accounts_of(api, site["acme"])["ivy"]["phone"] == "5001"
    assert client.delete("/api/v1/network-elements/platform/users/ivy",
                         headers=auth).status_code == 204
    assert accounts_of(api, site["acme"]) == {}


def test_a_login_another_source_has_is_reported_and_that_account_untouched(
        app, admin, api, site):
    with app.app_context():
        other = Account(enterprise_id=site["acme"], source="sync:9",
                        source_label="Head office LDAP", external_id="cn=Ann",
                        login="Ann", first_name="Ann", last_name="Directory")
        db.session.add(other)
        db.session.commit()
        other_id = other.id
    made = add_user(api, login="ann")  # the same login but for its case: sign-in ignores it
    assert made.status_code == 201  # the save stands
    user = made.get_json()
    assert user["account_id"] is None
    assert "ann has no account in Acme" in user["account_conflict"]
    assert "Head office LDAP" in user["account_conflict"]
    got = accounts_of(api, site["acme"])
    assert set(got) == {"Ann"} and got["Ann"]["id"] == other_id
    assert (got["Ann"]["source"], got["Ann"]["last_name"]) == ("sync:9", "Directory")
    # Other users of the element still get their accounts; the element says who has none.
    add_user(api, login="jo")
    saved = _put_element(api, site["mivb"], description="HQ").get_json()
    assert saved["accounts"]["accounts"] == 1
    assert saved["accounts"]["conflicts"] == [{"login": "ann", "account_of": "Head office LDAP"}]
    # The pages say so too.
    resp = admin.post(f"/network-elements/users/{user['id']}", data={
        "login": "ann", "first_name": "Ann", "last_name": "Lee", "element": "MiVB-1"})
    assert resp.status_code == 302
    page = admin.get(resp.headers["Location"]).get_data(as_text=True)
    assert "ann has no account in Acme: the login belongs to an account of Head office " \
           "LDAP" in page
    page = admin.get(f"/network-elements/elements/{site['mivb']}").get_data(as_text=True)
    assert "<li>ann (Head office LDAP)</li>" in page
    # Renamed out of the clash, the user gets its account.
    renamed = api("PUT", f"{USERS}/{user['id']}", json={"login": "ann.lee"}).get_json()
    assert renamed["account_id"] is not None and renamed["account_conflict"] is None
    assert set(accounts_of(api, site["acme"])) == {"Ann", "ann.lee", "jo"}


@pytest.mark.parametrize("bad,rule", [(99999, "unknown"), ("acme", "integer"), (0, "range")])
def test_a_bad_enterprise_id_is_refused_naming_the_rule(app, admin, api, site, bad, rule):
    before = api("GET", ELEMENTS).get_json()["items"]
    resp = _put_element(api, site["mivb"], enterprise_id=bad)
    assert resp.status_code == 422
    body = resp.get_json()
    assert [(f["field"], f["rule"]) for f in body["fields"]] == [("enterprise_id", rule)]
    if rule == "unknown":
        assert "No enterprise with id 99999" in body["message"]
    made = api("POST", ELEMENTS, json={"name": "New", "platform": "MiVoice Business",
                                        "address": "10.0.0.9", "enterprise_id": bad})
    assert made.status_code == 422
    assert api("GET", ELEMENTS).get_json()["items"] == before  # nothing changed
    # The page shows the form again with the rule's message.
    page = admin.post(f"/network-elements/elements/{site['mivo']}", htmx=True, data={
        "name": "MiVO-1", "platform": "MiVoice Office 250", "address": "10.0.0.6",
        "enterprise_id": str(bad)})
    assert page.status_code == 422 and 'id="e-enterprise_id"' in page.get_data(as_text=True)
    assert api("GET", ELEMENTS).get_json()["items"] == before


def test_deleting_the_enterprise_leaves_the_element_and_its_users(api, site):
    add_user(api, login="kai")
    assert api("DELETE", f"/api/v1/enterprises/{site['acme']}").status_code in (200, 204)
    mivb = next(e for e in api("GET", ELEMENTS).get_json()["items"] if e["id"] == site["mivb"])
    assert mivb["enterprise_id"] is None
    assert [(u["login"], u["account_id"]) for u in api("GET", USERS).get_json()["items"]] == [
        ("kai", None)]


# --- end to end: a provisioned user signs in -----------------------------------------------


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """The appliance (waitress) with enterprise acme (IM domain DOMAIN), its element MiVB-1
    and the appliance's Prosody."""
    assert prosody_available(), "Prosody is not installed: run `make test`, which does"
    tmp = tmp_path_factory.mktemp("element-signin")
    served = Served(tmp / "app")
    app = served.app
    app.config["XMPP_LINK_URL"] = f"http://127.0.0.1:{served.port}"
    world = {"app": app, "api": served.agent(), "token": _token(app)}
    ent = _call(world, "POST", "/api/v1/enterprises", 201,
                {"name": "Acme", "eid": "acme", "im_domain": DOMAIN})
    _call(world, "POST", ELEMENTS, 201, {"name": "MiVB-1", "platform": "MiVoice Business",
                                         "address": "10.0.0.5", "enterprise_id": ent["id"]})
    server, _ca = serving(app, tmp / "prosody", DOMAIN)
    with server:
        world["prosody"] = server
        yield world
    served.close()


def _call(world, method, path, status, body=None):
    got, _, text = world["api"].request(method, path, headers=world["token"], json_body=body)
    assert got == status, text
    return json.loads(text) if text else None


def refused(world, login: str, password: str) -> str:
    """Try to sign in; return the SASL condition it was refused with."""
    c = client(world, login, password)
    try:
        with pytest.raises(RuntimeError, match="authentication failed"):
            c.connect()
        return c.failures[0] if c.failures else ""
    finally:
        c.disconnect()


def test_a_provisioned_user_signs_in_once_its_password_is_set(world):
    user = _call(world, "POST", USERS, 201, {"login": "lena", "first_name": "Lena",
                                             "last_name": "Berg", "element": "MiVB-1"})
    account = user["account_id"]
    assert _get(world, f"/api/v1/accounts/{account}")["xmpp_address"] == f"lena@{DOMAIN}"
    # No password yet: nothing lets it in.
    assert refused(world, "lena", "correct horse battery") == "not-authorized"
    _call(world, "PUT", f"/api/v1/accounts/{account}/xmpp-password", 204,
          {"password": "correct horse battery"})
    lena = client(world, "lena", "correct horse battery").connect()
    try:
        assert wait_until(lambda: _get(world, f"/api/v1/accounts/{account}")["online"] is True)
        assert refused(world, "lena", "not her password") == "not-authorized"
        # Deleted on the element: the account goes, her session ends, and so does her
        # sign-in.
        _call(world, "DELETE", f"{USERS}/{user['id']}", 204)
        assert _call_status(world, "GET", f"/api/v1/accounts/{account}") == 404
        assert wait_until(lambda: not lena.connected, timeout=5)
    finally:
        lena.disconnect()
    assert refused(world, "lena", "correct horse battery") == "not-authorized"


def _call_status(world, method, path) -> int:
    return world["api"].request(method, path, headers=world["token"])[0]
