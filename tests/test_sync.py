"""AD/LDAP and PBX node synchronizers against a real slapd and the PBX CSV connector."""

import re
import shutil
import socket
import time
from pathlib import Path

import pytest
import trustme
from sqlalchemy import func, select

from appliance.db import db
from appliance.models import Account, Contact, Enterprise
from appliance.plugins.sync.models import Number, StatusRef
from tests.ldap_server import (
    IMPORT_CA,
    PEOPLE_DN,
    READER_DN,
    READER_PASSWORD,
    ROOT_DN,
    ROOT_PASSWORD,
    USERS_DN,
    Slapd,
    person,
)
from tests.servers import free_port

DATA = Path(__file__).parent / "data" / "pbx"


@pytest.fixture(scope="module")
def slapd(tmp_path_factory):
    with Slapd(tmp_path_factory.mktemp("slapd"), people=30) as server:
        yield server




def ldap(slapd, **kw):
    """A synchronizer for `slapd`; its CA certificate is in the import directory (ca_into)."""
    return {"name": "Head office", "servers": "localhost", "port": slapd and slapd.ldap_port,
            "security": "starttls", "ca_file": IMPORT_CA, "bind_dn": READER_DN,
            "password": READER_PASSWORD, "base_dn": PEOPLE_DN,
            "filter": "(objectClass=inetOrgPerson)", "scope": "sub", "page_size": 7,
            "preset": "OpenLDAP", "max_drop": 20, "days": 1, "hour": 1, "minute": 0,
            "ampm": "AM", **kw}


def add_ldap(api, ent, body):
    resp = api("POST", f"/api/v1/sync/enterprises/{ent}/ldap", json=body)
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()


def sync(app, api, syn_id, confirm=False):
    run = api("POST", f"/api/v1/sync/synchronizers/{syn_id}/sync"
              + ("?confirm=1" if confirm else "")).get_json()
    with app.app_context():
        return app.extensions["appliance"].jobs.wait(run["run_id"], timeout=60)


def accounts(app, source):
    with app.app_context():
        return {a.external_id: (a.id, a.login, a.last_name) for a in db.session.scalars(
            select(Account).where(Account.source == source))}


def detail(api, syn_id):
    return api("GET", f"/api/v1/sync/synchronizers/{syn_id}").get_json()


# --- Test connection: each failure has its own message -------------------------------------


def test_connection_plain_starttls_ldaps_and_each_failure(api, slapd, ca, tmp_path):
    def test(**kw):
        return api("POST", "/api/v1/sync/test-ldap", json=ldap(slapd, **kw))

    for security, port in (("none", slapd.ldap_port), ("starttls", slapd.ldap_port),
                           ("ldaps", slapd.ldaps_port)):
        resp = test(security=security, port=port)
        assert resp.status_code == 200, resp.get_json()
        first = resp.get_json()["entries"][0]
        assert first["login"].startswith("user") and len(first["external_id"]) == 36
    other_ca = tmp_path / "import" / "other-ca.pem"  # the import directory
    trustme.CA().cert_pem.write_to_path(str(other_ca))
    failures = {
        "credentials": test(password="wrong-password"),
        "tls": test(ca_file=str(other_ca)),
        "connect": test(port=free_port()),
        "base_dn": test(base_dn="ou=nowhere,dc=example,dc=test"),
    }
    messages = set()
    for kind, resp in failures.items():
        body = resp.get_json()
        assert resp.status_code == 502 and body["error"] == kind, (kind, body)
        messages.add(body["message"])
        assert "wrong-password" not in body["message"]
    assert len(messages) == 4


# --- sync semantics --------------------------------------------------------------------------


def test_add_modify_rename_delete_between_syncs(app, api, ent, slapd, ca):
    syn = add_ldap(api, ent, ldap(slapd, filter="(&(objectClass=inetOrgPerson)(uid=user1*))"))
    run = sync(app, api, syn["id"])
    assert run.state == "succeeded", run.message
    before = accounts(app, syn["source"])
    assert len(before) == 11  # user1, user10..user19
    slapd.modify(f"uid=user10,{PEOPLE_DN}", {"sn": "Renamed-Surname"})
    new_dn = slapd.rename(f"uid=user11,{PEOPLE_DN}", "uid=user1x")
    slapd.delete(f"uid=user12,{PEOPLE_DN}")
    slapd.add(f"uid=user1new,{PEOPLE_DN}", {"objectClass": ["inetOrgPerson"], "uid": "user1new",
                                             "cn": "New Person", "sn": "Person"})
    try:
        run = sync(app, api, syn["id"])
        assert run.state == "succeeded", run.message
        counts = detail(api, syn["id"])["last_sync"]
        assert (counts["added"], counts["updated"], counts["removed"]) == (1, 2, 1)
        after = accounts(app, syn["source"])
        renamed = next(k for k, v in before.items() if v[1] == "user11")
        assert after[renamed][0] == before[renamed][0]  # the same account...
        assert after[renamed][1] == "user1x"  # ...with its new login
        assert any(v[2] == "Renamed-Surname" for v in after.values())
        assert not any(v[1] == "user12" for v in after.values())
        with app.app_context():  # the Corporate Directory follows the accounts
            assert db.session.scalar(select(func.count()).select_from(Contact).where(
                Contact.source == syn["source"])) == len(after) == 11
    finally:
        slapd.rename(new_dn, "uid=user11")
        slapd.add(*person(12))
        slapd.delete(f"uid=user1new,{PEOPLE_DN}")


def test_active_directory_tree_with_the_ad_preset(app, api, ent, tmp_path):
    """AD-like users (sAMAccountName, objectGUID): a renamed user keeps their account."""
    with Slapd(tmp_path / "ad", ad_users=6) as ad:
        ad.ca_into(app.config["IMPORT_DIR"])
        for preset, login in (("Active Directory", "aduser1"),
                              ("Active Directory (UPN login)", "aduser1@example.test")):
            syn = add_ldap(api, ent, ldap(ad, name=preset.replace("(", "").replace(")", ""),
                                          base_dn=USERS_DN, filter="(objectClass=user)",
                                          preset=preset))
            assert sync(app, api, syn["id"]).state == "succeeded"
            got = accounts(app, syn["source"])
            assert len(got) == 6 and login in {v[1] for v in got.values()}
            api("DELETE", f"/api/v1/sync/synchronizers/{syn['id']}")
        syn = add_ldap(api, ent, ldap(ad, base_dn=USERS_DN, filter="(objectClass=user)",
                                      preset="Active Directory"))
        sync(app, api, syn["id"])
        before = accounts(app, syn["source"])
        ad.rename(f"cn=AD User2,{USERS_DN}", "cn=AD User Two")
        ad.modify(f"cn=AD User Two,{USERS_DN}", {"sAMAccountName": "aduser2b"})
        assert sync(app, api, syn["id"]).state == "succeeded"
        after = accounts(app, syn["source"])
        assert set(after) == set(before)  # keyed by objectGUID: nobody added or removed
        moved = next(k for k, v in before.items() if v[1] == "aduser2")
        assert after[moved][0] == before[moved][0] and after[moved][1] == "aduser2b"


def test_a_drop_beyond_the_threshold_waits_for_confirmation(app, api, ent, slapd, ca):
    syn = add_ldap(api, ent, ldap(slapd))
    assert sync(app, api, syn["id"]).state == "succeeded"
    api("PUT", f"/api/v1/sync/synchronizers/{syn['id']}",
        json={"filter": "(&(objectClass=inetOrgPerson)(uid=user2*))"})  # 11 of 30
    run = sync(app, api, syn["id"])
    assert run.state == "failed" and "safety threshold" in run.message
    got = detail(api, syn["id"])
    assert got["needs_attention"] and got["last_sync"]["state"] == "needs attention"
    assert len(accounts(app, syn["source"])) == 30
    run = sync(app, api, syn["id"], confirm=True)
    assert run.state == "succeeded", run.message
    assert len(accounts(app, syn["source"])) == 11
    assert not detail(api, syn["id"])["needs_attention"]


def test_a_truncated_search_removes_nothing(app, api, ent, tmp_path):
    with Slapd(tmp_path / "small", sizelimit=10, people=30) as small:
        small.ca_into(app.config["IMPORT_DIR"])
        # The directory manager has no size limit: the first sync sees everyone.
        syn = add_ldap(api, ent, ldap(small, bind_dn=ROOT_DN, password=ROOT_PASSWORD))
        assert sync(app, api, syn["id"]).state == "succeeded"
        assert len(accounts(app, syn["source"])) == 30
        api("PUT", f"/api/v1/sync/synchronizers/{syn['id']}",
            json={"bind_dn": READER_DN, "password": READER_PASSWORD, "page_size": 100})
        run = sync(app, api, syn["id"])
        assert run.state == "failed" and "did not complete" in run.message
        assert "none was removed" in run.message
        assert len(accounts(app, syn["source"])) == 30
        got = detail(api, syn["id"])
        assert got["needs_attention"] and "sizeLimitExceeded" in got["attention"]


def test_invalid_characters_are_reported_not_stored(app, api, ent, slapd, ca):
    """A bad name drops the entry; a bad department (stored, optional) is left empty with a
    note; a bad title (mapped, not stored) is ignored."""
    dns = {uid: f"uid={uid},{PEOPLE_DN}" for uid in ("baduser", "baddept", "badtitle")}
    extra = {"baduser": {"sn": "Bad\x01Name"}, "baddept": {"departmentNumber": "D\x03"},
             "badtitle": {"title": "T\x02"}}
    for uid, dn in dns.items():
        slapd.add(dn, {"objectClass": ["inetOrgPerson"], "uid": uid, "cn": uid, "sn": "Ok",
                       "givenName": "Ok", **extra[uid]})
    try:
        syn = add_ldap(api, ent, ldap(
            slapd, filter="(|(uid=baduser)(uid=baddept)(uid=badtitle))"))
        run = sync(app, api, syn["id"])
        assert run.state == "succeeded"
        got = detail(api, syn["id"])
        assert got["last_sync"]["skipped"] == 1 and got["accounts"] == 2
        issues = {(i["entry"], i["kind"]): i for i in got["issues"]}
        assert set(issues) == {(dns["baduser"], "skipped"), (dns["baddept"], "note")}
        skipped = issues[dns["baduser"], "skipped"]
        assert skipped["attribute"] == "sn" and "U+0001" in skipped["reason"]
        assert issues[dns["baddept"], "note"]["attribute"] == "departmentNumber"
        with app.app_context():
            stored = dict(db.session.execute(select(Account.login, Account.department)).all())
        assert stored == {"baddept": "", "badtitle": ""}
    finally:
        for dn in dns.values():
            slapd.delete(dn)


def test_a_sync_interrupted_by_stopping_slapd_changes_nothing(app, api, ent, tmp_path):
    big = Slapd(tmp_path / "big", people=3000).start()
    try:
        big.ca_into(app.config["IMPORT_DIR"])
        syn = add_ldap(api, ent, ldap(big, page_size=20))
        assert sync(app, api, syn["id"]).state == "succeeded"
        big.modify(f"uid=user5,{PEOPLE_DN}", {"sn": "Changed"})
        before = accounts(app, syn["source"])
        run = api("POST", f"/api/v1/sync/synchronizers/{syn['id']}/sync").get_json()
        with app.app_context():
            jobs = app.extensions["appliance"].jobs
            deadline = time.monotonic() + 30
            while jobs.wait(run["run_id"], timeout=0.01).progress < 5:
                assert time.monotonic() < deadline
            big.stop()
            done = jobs.wait(run["run_id"], timeout=60)
        assert done.state == "failed" and "Nothing was changed" in done.message
        assert accounts(app, syn["source"]) == before
    finally:
        big.stop()


def test_deleting_a_synchronizer_deletes_exactly_its_accounts(app, api, admin, ent, slapd, ca):
    one = add_ldap(api, ent, ldap(slapd, name="One", filter="(uid=user2*)"))
    two = add_ldap(api, ent, ldap(slapd, name="Two", filter="(uid=user1*)"))
    assert sync(app, api, one["id"]).state == sync(app, api, two["id"]).state == "succeeded"
    with app.app_context():
        db.session.add(Account(enterprise_id=ent, source="manual", external_id="m1",
                               login="manual.user"))
        db.session.commit()
    page = admin.get(f"/sync/{one['id']}").get_data(as_text=True)
    assert "also deletes the 11 account(s) it created" in page
    resp = api("DELETE", f"/api/v1/sync/synchronizers/{one['id']}")
    assert resp.get_json() == {"accounts_deleted": 11}
    with app.app_context():
        left = {a.source for a in db.session.scalars(select(Account))}
        assert left == {two["source"], "manual"}
        assert db.session.scalar(select(func.count()).select_from(Account)) == 12


def test_a_synchronizer_is_not_deleted_while_it_syncs(app, api, admin, ent):
    """A Conflict: 409 "busy" in the API; the page goes back with the message flashed."""
    with socket.socket() as hole:  # accepts connections, never answers: the sync waits
        hole.bind(("127.0.0.1", 0))
        hole.listen(8)
        syn = add_ldap(api, ent, {**ldap(None, port=hole.getsockname()[1]), "ca_file": "",
                                  "servers": "127.0.0.1", "security": "none"})
        run = api("POST", f"/api/v1/sync/synchronizers/{syn['id']}/sync").get_json()
        message = "A sync of Head office is running: delete it once the sync ends"
        resp = api("DELETE", f"/api/v1/sync/synchronizers/{syn['id']}")
        assert (resp.status_code, resp.get_json()) == (409, {"error": "busy", "message": message})
        page = admin.post(f"/sync/{syn['id']}/delete", follow_redirects=True)
        assert page.status_code == 200 and message in page.get_data(as_text=True)
    with app.app_context():  # the hole closed: the sync fails, and nothing was deleted
        assert app.extensions["appliance"].jobs.wait(run["run_id"]).state == "failed"
    assert detail(api, syn["id"])["name"] == "Head office"


def test_two_runs_of_one_synchronizer_never_overlap(app, api, ent, slapd, ca):
    syn = add_ldap(api, ent, ldap(slapd))
    first = api("POST", f"/api/v1/sync/synchronizers/{syn['id']}/sync").get_json()
    second = api("POST", f"/api/v1/sync/synchronizers/{syn['id']}/sync")
    assert first["created"] is True
    assert second.status_code == 409 and second.get_json()["error"] == "already_running"
    assert f"(job run #{first['run_id']}, " in second.get_json()["message"]
    with app.app_context():
        assert app.extensions["appliance"].jobs.wait(first["run_id"]).state == "succeeded"


def test_the_password_is_never_shown_back(api, admin, ent, slapd, ca):
    syn = add_ldap(api, ent, ldap(slapd))
    assert READER_PASSWORD not in api("GET", f"/api/v1/sync/synchronizers/{syn['id']}") \
        .get_data(as_text=True)
    assert READER_PASSWORD not in admin.get(f"/sync/{syn['id']}").get_data(as_text=True)
    assert READER_PASSWORD not in admin.get("/audit").get_data(as_text=True)


def test_the_stored_password_goes_only_where_it_was_typed_for(app, api, admin, ent, slapd, ca):
    """Pointed at other servers (or without StartTLS), a synchronizer needs its bind password
    typed again: the stored one is never sent there."""
    syn = add_ldap(api, ent, ldap(slapd))
    url = f"/api/v1/sync/synchronizers/{syn['id']}"
    assert api("PUT", url, json={"page_size": 50}).status_code == 200  # same servers: kept
    for change in ({"servers": "127.0.0.1"}, {"security": "none"}):
        moved = api("PUT", url, json=change)
        assert moved.status_code == 422, change
        assert moved.get_json()["fields"] == [{
            "field": "password", "rule": "retype", "message": "Bind password: type it again "
            "for these servers; the stored one is only sent to the directory it was typed "
            "for"}]
        test = admin.post(f"/sync/test-ldap?syn_id={syn['id']}", htmx=True,
                          data={**ldap(slapd, password=""), **change})
        assert test.status_code == 422 and "type it again" in test.get_data(as_text=True)
    assert detail(api, syn["id"])["ldap"]["servers"] == "localhost"  # nothing was saved
    assert sync(app, api, syn["id"]).state == "succeeded"  # and the stored password works
    typed = api("PUT", url, json={"servers": "127.0.0.1", "ca_file": "",
                                  "password": READER_PASSWORD, "security": "none"})
    assert typed.status_code == 200, typed.get_json()


# --- PBX nodes ------------------------------------------------------------------------------


def add_node(api, ent, path, **kw):
    api("PUT", f"/api/v1/sync/enterprises/{ent}", json={
        "mode": "pbx", "feature_profile": kw.pop("profile", "Standard user"),
        "dynamic_only": kw.pop("dynamic_only", False)})
    resp = api("POST", f"/api/v1/sync/enterprises/{ent}/pbx-nodes", json={
        "name": "MiVB node 1", "platform": "MiVoice Business", "address": "10.0.0.5",
        "path": str(path), "max_drop": 50, "days": 1, "hour": 2, "minute": 0, "ampm": "AM",
        **kw})
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()


def numbers(app, login):
    with app.app_context():
        acc = db.session.scalar(select(Account).where(Account.login == login))
        return {n.number: n.origin for n in db.session.scalars(
            select(Number).where(Number.account_id == acc.id))}, acc


def test_pbx_node_sync_applies_the_rules_and_the_feature_profile(app, api, ent, tmp_path):
    path = tmp_path / "import" / "node.csv"  # the import directory
    shutil.copy(DATA / "mixed_mivb.csv", path)
    node = add_node(api, ent, path)
    run = sync(app, api, node["id"])
    assert run.state == "succeeded", run.message
    got = detail(api, node["id"])
    assert got["accounts"] > 5 and got["last_sync"]["skipped"] >= 3
    reasons = " ".join(i["reason"] for i in got["issues"])
    assert "PRG or MDUG" in reasons  # rule 5 is explained
    nums, acc = numbers(app, "2001")  # Ann Lee, Sales: deskphone with a Minet softphone
    assert set(nums) == {"2001", "3001"} and acc.feature_profile == "Standard user"
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Contact).where(
            Contact.source == node["source"])) == got["accounts"]


def test_pbx_rule_6_numbers_stay_while_manual_or_referenced(app, api, ent, tmp_path):
    path = tmp_path / "import" / "node.csv"  # the import directory
    header = "number,device_type,mac,first_name,last_name,department\n"
    path.write_text(header + "2001,5340 IP,,Ann,Lee,Sales\n3001,App Server Port,,Ann,Lee,Sales\n"
                    "2002,5340 IP,,Bo,Kim,Ops\n")
    node = add_node(api, ent, path)
    assert sync(app, api, node["id"]).state == "succeeded"
    nums, acc = numbers(app, "2001")
    assert nums == {"2001": "pbx", "3001": "pbx"}
    with app.app_context():  # a manual number, and a dynamic status pointing at 3001
        db.session.add(Number(account_id=acc.id, number="9999", kind="mobile", origin="manual"))
        db.session.add(StatusRef(account_id=acc.id, status="In a meeting", number="3001"))
        db.session.commit()
    path.write_text(header + "2001,5340 IP,,Ann,Lee,Sales\n2002,5340 IP,,Bo,Kim,Ops\n")
    assert sync(app, api, node["id"]).state == "succeeded"
    nums, _ = numbers(app, "2001")
    assert set(nums) == {"2001", "3001", "9999"}  # 3001 is gone from the PBX but referenced
    assert any("3001" in i["reason"] for i in detail(api, node["id"])["issues"])
    with app.app_context():
        db.session.execute(StatusRef.__table__.delete())
        db.session.commit()
    assert sync(app, api, node["id"]).state == "succeeded"
    nums, _ = numbers(app, "2001")
    assert set(nums) == {"2001", "9999"}  # the reference is gone: so is the number


def test_unreadable_export_changes_nothing(app, api, ent, tmp_path):
    path = tmp_path / "import" / "node.csv"  # the import directory
    shutil.copy(DATA / "mixed_mivb.csv", path)
    node = add_node(api, ent, path)
    assert sync(app, api, node["id"]).state == "succeeded"
    before = accounts(app, node["source"])
    path.write_text("not,the,right,columns\n1,2,3,4\n")
    run = sync(app, api, node["id"])
    assert run.state == "failed" and "Nothing was changed" in run.message
    assert accounts(app, node["source"]) == before


def test_dynamic_extensions_only(app, api, ent, tmp_path):
    path = tmp_path / "import" / "node.csv"  # the import directory
    shutil.copy(DATA / "mixed_mivb.csv", path)
    node = add_node(api, ent, path, dynamic_only=True)
    assert sync(app, api, node["id"]).state == "succeeded"
    got = accounts(app, node["source"])
    assert len(got) == 1 and next(iter(got)).startswith("group:")  # only PRG 500's pilot


def test_integrated_mode_locks_what_micollab_owns(make_app, tmp_path):
    app = make_app(PROFILE="micollab-integrated")
    from tests.conftest import Browser
    with app.app_context():
        from appliance.auth import create_admin
        create_admin("admin", "correct-horse-battery")
        db.session.add(Enterprise(eid="acme", name="Acme"))
        db.session.commit()
    b = Browser(app.test_client())
    b.login()
    page = b.get("/sync/").get_data(as_text=True)
    assert "MiCollab-integrated mode" in page
    assert re.search(r'<select id="f-mode" name="mode"[^>]* disabled="disabled"', page)
    resp = b.post("/sync/settings", data={"mode": "ldap", "feature_profile": "Default"},
                  htmx=True)
    assert resp.status_code == 422
    assert "managed by MiCollab in integrated mode" in resp.get_data(as_text=True)


# --- the API document -----------------------------------------------------------------------


def test_each_operation_documents_its_own_body(api):
    """A PBX node's PUT documents the PBX node's fields, not the LDAP ones; a partial update
    requires no field; and each body is what the operation validates."""
    from appliance.ldapform import FIELDS
    from appliance.plugins.sync.service import MAPPING, NODE

    spec = api("GET", "/api/v1/openapi.json").get_json()
    schemas = spec["components"]["schemas"]

    def body(path, method):
        ref = spec["paths"][f"/api/v1/sync{path}"][method]["requestBody"]["content"][
            "application/json"]["schema"]
        return ref, schemas[ref["$ref"].rsplit("/", 1)[1]] if "$ref" in ref else None

    ldap_only = {f.name for f in FIELDS} | set(MAPPING.fields)
    _, node_put = body("/pbx-nodes/{syn_id}", "put")
    _, node_post = body("/enterprises/{ent_id}/pbx-nodes", "post")
    for node in (node_put, node_post):
        assert set(NODE.fields) | {"name", "max_drop", "days"} <= set(node["properties"])
        assert not ldap_only & set(node["properties"])
    _, ldap_put = body("/ldap/{syn_id}", "put")
    assert ldap_only <= set(ldap_put["properties"]) and "platform" not in ldap_put["properties"]
    assert node_post["required"] and node_put["required"] == ldap_put["required"] == []
    either, _ = body("/synchronizers/{syn_id}", "put")
    assert {s["$ref"] for s in either["anyOf"]} == {
        "#/components/schemas/PbxNodeSynchronizerUpdate",
        "#/components/schemas/LdapSynchronizerUpdate"}
    _, test = body("/test-ldap", "post")
    assert "name" not in test["properties"] and "name" not in test["required"]
    # Every partial update of the whole API lists no required field.
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            ref = op.get("requestBody", {}).get("content", {}).get("application/json", {}) \
                .get("schema", {}).get("$ref", "")
            if ref.endswith("Update"):
                assert schemas[ref.rsplit("/", 1)[1]]["required"] == [], (method, path)


def test_a_pbx_node_is_changed_by_its_own_put(app, api, ent, tmp_path):
    path = tmp_path / "import" / "node.csv"
    shutil.copy(DATA / "mixed_mivb.csv", path)
    node = add_node(api, ent, path)
    resp = api("PUT", f"/api/v1/sync/pbx-nodes/{node['id']}", json={"address": "10.0.0.6"})
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["address"] == "10.0.0.6" and resp.get_json()["name"] == "MiVB node 1"
    bad = api("PUT", f"/api/v1/sync/pbx-nodes/{node['id']}", json={"platform": "Nope"})
    assert bad.status_code == 422 and bad.get_json()["fields"][0]["field"] == "platform"
    assert api("PUT", f"/api/v1/sync/ldap/{node['id']}", json={}).status_code == 404
    listed = api("GET", f"/api/v1/sync/enterprises/{ent}/synchronizers?kind=pbx").get_json()
    assert listed["total"] == 1 and listed["per_page"] == 100
    assert listed["items"][0]["address"] == "10.0.0.6"
    assert api("GET", f"/api/v1/sync/enterprises/{ent}/synchronizers?kind=ldap") \
        .get_json()["items"] == []
