"""The XMPP service's link to the appliance (/xmpp/v1): who may call it, how a sign-in is
answered, and what the directory and the signals hold. The Prosody side of the same
conversation is tested against a real Prosody in test_client_xmpp.py."""

import pytest

from appliance.core.client import service
from appliance.db import db
from appliance.directory import replace_source
from appliance.hookspecs import hookimpl
from appliance.models import Account, Contact, Enterprise
from appliance.xmpp import service as xmpp_service


class Directory:
    """A plugin that owns the accounts of source "dir:1" and checks their passwords."""

    answer = "ok"

    @hookimpl
    def appliance_account_password(self, account, password):
        if account.source != "dir:1":
            return None
        if password is None:
            return "directory"
        return self.answer if password == "directory-pw" or self.answer != "ok" else "wrong"


@pytest.fixture
def plugin():
    return Directory()


@pytest.fixture
def app(make_app, plugin):
    return make_app(EXTRA_PLUGINS=[("dirplugin", plugin)])


@pytest.fixture
def ent(app):
    with app.app_context():
        ent = Enterprise(eid="acme", name="Acme", im_domain="acme.test")
        db.session.add(ent)
        db.session.commit()
        replace_source(Account, ent, "manual", "Manual", [
            {"external_id": "1", "login": "Alice", "first_name": "Alice", "last_name": "A"},
            {"external_id": "2", "login": "carol@corp.example", "first_name": "Carol"}])
        replace_source(Account, ent, "dir:1", "Directory", [
            {"external_id": "9", "login": "bob", "first_name": "Bob", "last_name": "B",
             "department": "Sales"}])
        replace_source(Contact, ent, "peering:1", "Peer one", [
            {"external_id": "x", "first_name": "Xavier", "im_address": "xavier@other.test"}])
        alice = db.session.scalar(db.select(Account).filter_by(login="Alice"))
        service.set_password(alice, "alice-pw")
        db.session.commit()
        return ent.id


@pytest.fixture
def xmpp(app, client):
    """Call /xmpp/v1 as the local XMPP service does."""
    with app.app_context():
        token = xmpp_service.secret()

    def call(method, path, **kw):
        return client.open(f"/xmpp/v1{path}", method=method,
                           headers={"Authorization": f"Bearer {token}"}, **kw)
    return call


def sign_in(xmpp, user, password, host="acme.test"):
    resp = xmpp("POST", "/auth", json={"user": user, "host": host, "password": password})
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()["result"]


def test_only_the_local_xmpp_service_may_call(app, client, ent, xmpp):
    body = {"user": "alice", "host": "acme.test", "password": "alice-pw"}
    assert client.post("/xmpp/v1/auth", json=body).status_code == 403  # no secret
    wrong = client.post("/xmpp/v1/auth", json=body, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 403 and wrong.get_json()["error"] == "forbidden"
    with app.app_context():
        token = xmpp_service.secret()
    remote = client.post("/xmpp/v1/auth", json=body, headers={"Authorization": f"Bearer {token}"},
                         environ_base={"REMOTE_ADDR": "192.0.2.7"})
    assert remote.status_code == 403  # the right secret, but not from this machine
    assert sign_in(xmpp, "alice", "alice-pw") == "ok"
    assert client.get("/xmpp/v1/events").status_code == 403


def test_the_secret_is_made_once_and_kept_private(app):
    with app.app_context():
        first = xmpp_service.secret()
        assert xmpp_service.secret() == first and len(first) >= 32
        path = app.config["DATA_DIR"] + "/xmpp/secret"
    import os
    assert os.stat(path).st_mode & 0o077 == 0


def test_a_local_account_signs_in_with_the_password_set_for_it(ent, xmpp):
    assert sign_in(xmpp, "alice", "alice-pw") == "ok"  # the login Alice, as XMPP writes it
    assert sign_in(xmpp, "alice", "alice-PW") == "wrong"
    assert sign_in(xmpp, "alice", "") == "wrong"
    assert sign_in(xmpp, "carol\\40corp.example", "anything") == "wrong"  # no password set
    assert sign_in(xmpp, "nobody", "alice-pw") == "wrong"
    assert sign_in(xmpp, "alice", "alice-pw", host="other.test") == "wrong"


def test_a_directory_account_is_checked_by_the_plugin_that_owns_it(ent, xmpp, plugin):
    assert sign_in(xmpp, "bob", "directory-pw") == "ok"
    assert sign_in(xmpp, "bob", "other") == "wrong"
    plugin.answer = "unavailable"  # the directory server cannot be reached
    assert sign_in(xmpp, "bob", "directory-pw") == "unavailable"


def test_a_disabled_account_cannot_sign_in(app, ent, xmpp):
    with app.app_context():
        db.session.execute(db.update(Account).where(Account.login == "Alice")
                           .values(enabled=False))
        db.session.commit()
    assert sign_in(xmpp, "alice", "alice-pw") == "disabled"
    assert sign_in(xmpp, "alice", "wrong") == "disabled"


def test_bad_sign_in_bodies_are_refused_with_a_reason(ent, xmpp):
    for body in ([], "x", {"user": "alice"}, {"user": 1, "host": "acme.test", "password": "p"},
                 {"user": "alice", "host": "acme.test", "password": "p" * 1025}):
        resp = xmpp("POST", "/auth", json=body)
        assert resp.status_code == 400, body
        assert "at most 1024" in resp.get_json()["message"]


def test_the_directory_is_every_account_and_the_imported_im_contacts(ent, xmpp):
    resp = xmpp("GET", "/hosts/acme.test/directory")
    assert resp.status_code == 200
    data = resp.get_json()
    assert sorted(data["users"]) == ["alice", "bob", "carol\\40corp.example"]
    by_jid = {c["jid"]: c for c in data["contacts"]}
    assert by_jid["alice@acme.test"] == {"jid": "alice@acme.test", "name": "Alice A",
                                         "groups": ["Acme"]}
    assert by_jid["bob@acme.test"]["groups"] == ["Sales"]  # by department where known
    assert by_jid["carol\\40corp.example@acme.test"]["name"] == "Carol"
    assert by_jid["xavier@other.test"]["groups"] == ["Peer one"]
    assert len(by_jid) == 4
    assert xmpp("GET", "/hosts/nowhere.test/directory").status_code == 404


def test_signals_tell_the_xmpp_service_what_changed(app, ent, xmpp):
    first = xmpp("GET", "/events?after=0").get_json()
    before = first["directories"]["acme.test"]
    with app.app_context():
        ent_row = db.session.get(Enterprise, ent)
        replace_source(Account, ent_row, "dir:1", "Directory", [], allow_drop=True)
    later = xmpp("GET", f"/events?after={first['cursor']}").get_json()
    assert later["signouts"] == ["bob@acme.test"]  # removed by its source: signed out
    assert later["directories"]["acme.test"] != before
    assert later["cursor"] > first["cursor"]
    again = xmpp("GET", f"/events?after={later['cursor']}").get_json()
    assert again["signouts"] == [] and again["cursor"] == later["cursor"]
    bad = xmpp("GET", "/events?after=-1")
    assert bad.status_code == 422 and bad.get_json()["fields"][0]["field"] == "after"


def test_hook_appliance_account_password(ent, xmpp, plugin):
    """The host asks the hook first; None (not the plugin's account) falls back to the
    password set on the appliance."""
    plugin.answer = "wrong"
    assert sign_in(xmpp, "bob", "directory-pw") == "wrong"
    assert sign_in(xmpp, "alice", "alice-pw") == "ok"  # not dir:1: the stored keys decide


def test_hook_appliance_accounts_imported(app, ent, xmpp):
    """Every merge of a source's accounts moves the enterprise's directory version, so the
    XMPP service pushes the new roster."""
    before = xmpp("GET", "/events").get_json()["directories"]["acme.test"]
    with app.app_context():
        replace_source(Account, db.session.get(Enterprise, ent), "dir:1", "Directory", [
            {"external_id": "9", "login": "bob"},
            {"external_id": "10", "login": "dave", "first_name": "Dave"}])
    after = xmpp("GET", "/events").get_json()["directories"]["acme.test"]
    assert int(after) > int(before)
    users = xmpp("GET", "/hosts/acme.test/directory").get_json()["users"]
    assert "dave" in users


def test_an_enterprise_has_one_im_domain_of_its_own(api):
    made = api("POST", "/api/v1/enterprises",
               json={"name": "Acme", "eid": "acme", "im_domain": "IM.Acme.Example"})
    assert made.status_code == 201 and made.get_json()["im_domain"] == "im.acme.example"
    other = api("POST", "/api/v1/enterprises", json={"name": "Other", "eid": "other"})
    assert other.get_json()["im_domain"] is None  # may be set later
    oid = other.get_json()["id"]
    for bad, rule in (("im.acme.example", "unique"), ("IM.ACME.EXAMPLE", "unique"),
                      ("192.0.2.1", "dns_name"), ("not a domain", "dns_name"),
                      ("a..b", "dns_name"), ("-x.example", "dns_name"), ("x" * 254, "dns_name")):
        resp = api("PUT", f"/api/v1/enterprises/{oid}", json={"im_domain": bad})
        assert resp.status_code == 422, bad
        assert resp.get_json()["fields"][0] == {
            "field": "im_domain", "rule": rule, "message": resp.get_json()["fields"][0]["message"]}
    assert api("GET", f"/api/v1/enterprises/{oid}").get_json()["im_domain"] is None  # kept
    ok = api("PUT", f"/api/v1/enterprises/{oid}", json={"im_domain": "other.example"})
    assert ok.status_code == 200 and ok.get_json()["im_domain"] == "other.example"
    cleared = api("PUT", f"/api/v1/enterprises/{oid}", json={"im_domain": ""})
    assert cleared.get_json()["im_domain"] is None


def test_the_im_domain_on_the_enterprise_page(admin, api):
    eid = api("POST", "/api/v1/enterprises", json={"name": "Acme", "eid": "acme"}).get_json()["id"]
    page = admin.get(f"/enterprises/{eid}").get_data(as_text=True)
    assert 'name="im_domain"' in page and "IM domain" in page
    bad = admin.post(f"/enterprises/{eid}", data={"name": "Acme", "eid": "acme",
                                                  "im_domain": "no way"})
    assert bad.status_code == 422 and "IM domain must be a DNS name" in bad.get_data(as_text=True)
    good = admin.post(f"/enterprises/{eid}", data={"name": "Acme", "eid": "acme",
                                                   "im_domain": "acme.example"})
    assert good.status_code in (302, 204)
    assert api("GET", f"/api/v1/enterprises/{eid}").get_json()["im_domain"] == "acme.example"


def account_id(app, login):
    with app.app_context():
        return db.session.scalar(db.select(Account.id).filter_by(login=login))


def test_the_account_api_says_how_it_signs_in(app, ent, api, xmpp):
    alice, bob = account_id(app, "Alice"), account_id(app, "bob")
    one = api("GET", f"/api/v1/accounts/{alice}").get_json()
    assert (one["xmpp_address"], one["sign_in"], one["password_set"], one["enabled"]) == (
        "alice@acme.test", "password", True, True)
    assert api("GET", f"/api/v1/accounts/{bob}").get_json()["sign_in"] == "directory"
    listed = api("GET", f"/api/v1/enterprises/{ent}/accounts").get_json()["items"]
    assert {a["login"]: a["xmpp_address"] for a in listed}["carol@corp.example"] == \
        "carol\\40corp.example@acme.test"
    assert api("GET", "/api/v1/accounts/999999").status_code == 404


def test_the_admin_sets_a_password_never_kept_in_clear(app, ent, api, xmpp):
    carol = account_id(app, "carol@corp.example")
    short = api("PUT", f"/api/v1/accounts/{carol}/xmpp-password", json={"password": "short"})
    assert short.status_code == 422 and short.get_json()["fields"][0]["rule"] == "length"
    assert sign_in(xmpp, "carol\\40corp.example", "long enough pw") == "wrong"
    ok = api("PUT", f"/api/v1/accounts/{carol}/xmpp-password", json={"password": "long enough pw"})
    assert ok.status_code == 204
    assert sign_in(xmpp, "carol\\40corp.example", "long enough pw") == "ok"
    with app.app_context():
        from appliance.models import AuditEntry, XmppCredential
        keys = db.session.get(XmppCredential, carol).keys
        assert "long enough" not in keys
        assert all("long enough" not in (e.summary or "") for e in db.session.scalars(
            db.select(AuditEntry)))
    bob = account_id(app, "bob")
    refused = api("PUT", f"/api/v1/accounts/{bob}/xmpp-password", json={"password": "12345678"})
    assert refused.status_code == 409 and refused.get_json()["error"] == "directory"
    assert api("POST", f"/api/v1/accounts/{bob}/password-link").status_code == 409


def test_disabling_an_account_signs_it_out(app, ent, api, xmpp):
    alice = account_id(app, "Alice")
    cursor = xmpp("GET", "/events").get_json()["cursor"]
    off = api("PUT", f"/api/v1/accounts/{alice}", json={"enabled": False})
    assert off.status_code == 200 and off.get_json()["enabled"] is False
    assert sign_in(xmpp, "alice", "alice-pw") == "disabled"
    events = xmpp("GET", f"/events?after={cursor}").get_json()
    assert events["signouts"] == ["alice@acme.test"]
    users = xmpp("GET", "/hosts/acme.test/directory").get_json()["users"]
    assert "alice" not in users  # nor in anyone's roster
    on = api("PUT", f"/api/v1/accounts/{alice}", json={"enabled": True})
    assert on.get_json()["enabled"] is True and sign_in(xmpp, "alice", "alice-pw") == "ok"


def test_a_one_time_link_lets_the_user_set_the_password_once(app, ent, api, xmpp, client):
    import re
    carol = account_id(app, "carol@corp.example")
    link = api("POST", f"/api/v1/accounts/{carol}/password-link")
    assert link.status_code == 201
    path = "/xmpp-password/" + link.get_json()["url"].rsplit("/xmpp-password/", 1)[1]
    page = client.get(path)  # no login: the link is the credential
    assert page.status_code == 200 and "carol\\40corp.example@acme.test" in page.get_data(True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(True)).group(1)
    short = client.post(path, data={"password": "x", "csrf_token": token})
    assert short.status_code == 422 and "8 to 1024" in short.get_data(True)
    done = client.post(path, data={"password": "chosen by carol", "csrf_token": token})
    assert done.status_code == 200 and "Your password is set" in done.get_data(True)
    assert sign_in(xmpp, "carol\\40corp.example", "chosen by carol") == "ok"
    assert client.get(path).status_code == 404  # spent
    assert client.get("/xmpp-password/forged").status_code == 404


def test_the_account_page(app, ent, admin):
    alice = account_id(app, "Alice")
    listing = admin.get("/accounts").get_data(True)
    assert f'href="/accounts/{alice}"' in listing
    page = admin.get(f"/accounts/{alice}").get_data(True)
    assert "alice@acme.test" in page and "Set password" in page
    bad = admin.post(f"/accounts/{alice}/password", data={"password": "short"})
    assert bad.status_code == 422 and "8 to 1024 characters" in bad.get_data(True)
    link = admin.post(f"/accounts/{alice}/password-link").get_data(True)
    assert "/xmpp-password/" in link
    off = admin.post(f"/accounts/{alice}/enabled", data={})
    assert off.status_code in (302, 204)
    assert "may no longer sign in" in admin.get(f"/accounts/{alice}").get_data(True)
    bob = account_id(app, "bob")
    assert "password of the directory" in admin.get(f"/accounts/{bob}").get_data(True)


class Policy:
    @hookimpl
    def appliance_xmpp_policy(self):
        return {"enabled": True, "domains": ["partner.example"],
                "routes": {"hub.example": ("192.0.2.7", 5270)}}


def test_hook_appliance_xmpp_policy(make_app):
    """The XMPP service federates only as a plugin's policy says: with federation left out
    (the GCP profile's case) and no other policy, it talks to no other server."""
    from appliance.xmpp import service as xmpp
    from appliance.xmpp.config import render
    alone = make_app(DISABLE_PLUGINS="federation,peering")
    with alone.test_request_context():
        db.session.add(Enterprise(eid="acme", name="Acme", im_domain="acme.test"))
        db.session.commit()
        cfg = xmpp.config()
        assert (cfg.federation_enabled, cfg.domains, cfg.routes) == (False, [], {})
        assert cfg.hosts == ["acme.test"]  # its users are served all the same
    policed = make_app(DISABLE_PLUGINS="federation,peering",
                       EXTRA_PLUGINS=[("policy", Policy())],
                       XMPP_LINK_URL="http://127.0.0.1:8080")
    with policed.test_request_context():
        cfg = xmpp.config()
        assert cfg.federation_enabled and cfg.domains == ["partner.example"]
        text = render(cfg)
    assert '["hub.example"] = { host = "192.0.2.7", port = 5270 }' in text
    assert 'VirtualHost "acme.test"\n    authentication = "appliance"' in text
    assert 'appliance_url = "http://127.0.0.1:8080"' in text and "appliance_client" in text


def test_the_xmpp_service_reports_who_is_signed_in(app, ent, api, xmpp, admin):
    alice, bob = account_id(app, "Alice"), account_id(app, "bob")
    assert api("GET", f"/api/v1/accounts/{alice}").get_json()["online"] is None  # not known
    report = {"hosts": {"acme.test": [{"user": "alice", "resource": "laptop", "since": 1},
                                      {"user": "alice", "resource": "phone"}],
                        "unknown.test": [{"user": "x", "resource": "y"}]}}
    assert xmpp("POST", "/sessions", json=report).status_code == 204
    assert api("GET", f"/api/v1/accounts/{alice}").get_json()["online"] is True
    assert api("GET", f"/api/v1/accounts/{bob}").get_json()["online"] is False
    summary = api("GET", "/api/v1/accounts/online").get_json()
    assert summary["fresh"] and summary["users_online"] == {str(ent): 1}  # users, not devices
    panel = admin.get("/client-service/panel").get_data(True)
    assert "acme.test" in panel and "<td>1</td>" in panel
    for bad in ({}, {"hosts": []}, {"hosts": {"acme.test": [{"user": 5}]}},
                {"hosts": {"acme.test": [{"user": "a", "since": "yesterday"}]}}):
        resp = xmpp("POST", "/sessions", json=bad)
        assert resp.status_code == 422, bad
    assert api("GET", f"/api/v1/accounts/{alice}").get_json()["online"] is True  # kept
    assert xmpp("POST", "/sessions", json={"hosts": {"acme.test": []}}).status_code == 204
    assert api("GET", f"/api/v1/accounts/{alice}").get_json()["online"] is False
    with app.app_context():
        from datetime import timedelta

        from appliance.db import utcnow
        from appliance.xmpp import service as xmpp_service
        xmpp_service.settings().sessions_reported_at = utcnow() - timedelta(minutes=5)
        db.session.commit()
    assert api("GET", f"/api/v1/accounts/{alice}").get_json()["online"] is None  # stale


def test_the_im_domain_changes_when_the_service_is_not_running(api):
    made = api("POST", "/api/v1/enterprises", json={"name": "Acme", "eid": "acme",
                                                   "im_domain": "old.example"}).get_json()
    moved = api("PUT", f"/api/v1/enterprises/{made['id']}", json={"im_domain": "new.example"})
    assert moved.status_code == 200 and moved.get_json()["im_domain"] == "new.example"


def test_the_peer_link_gives_accounts_their_xmpp_address(app, ent, api, client):
    """A peered appliance imports this enterprise's people with the addresses they sign in
    with, so its users reach them over federation."""
    with app.app_context():
        replace_source(Contact, db.session.get(Enterprise, ent), "manual", "Manual", [
            {"external_id": "1", "first_name": "Alice", "email": "alice@mail.example",
             "im_address": "alice@mail.example"},
            {"external_id": "77", "first_name": "Nobody", "im_address": "nobody@else.example"}])
    key = api("POST", f"/api/v1/enterprises/{ent}/trusted-servers",
              json={"address": "127.0.0.1"}).get_json()["peer_key"]
    resp = client.get("/peer/v1/enterprises/acme/contacts?after=0",
                      headers={"Authorization": f"Peer {key}"})
    assert resp.status_code == 200, resp.get_json()
    got = {i["first_name"]: i["im_address"] for i in resp.get_json()["items"]}
    assert got == {"Alice": "alice@acme.test", "Nobody": "nobody@else.example"}


def test_sign_ins_follow_the_login_lock_out(app, ent, xmpp):
    """Too many attempts for an account (or from one address) answer "locked", which the
    XMPP service tells the client as a temporary failure; a right password forgets them."""
    limit = app.config["LOGIN_MAX_FAILURES"]
    assert sign_in(xmpp, "alice", "alice-pw") == "ok"
    for _ in range(limit):
        assert sign_in(xmpp, "alice", "guess") == "wrong"
    assert sign_in(xmpp, "alice", "alice-pw") == "locked"  # even the right one, for now
    assert sign_in(xmpp, "bob", "directory-pw") == "ok"  # other accounts are not locked out
    resp = xmpp("POST", "/auth", json={"user": "bob", "host": "acme.test",
                                       "password": "x", "ip": "192.0.2.9"})
    assert resp.get_json()["result"] == "wrong"
    for _ in range(limit * 4):
        xmpp("POST", "/auth", json={"user": "carol\\40corp.example", "host": "acme.test",
                                    "password": "x", "ip": "192.0.2.9"})
    locked = xmpp("POST", "/auth", json={"user": "bob", "host": "acme.test",
                                         "password": "directory-pw", "ip": "192.0.2.9"})
    assert locked.get_json()["result"] == "locked"  # that address tried too often
