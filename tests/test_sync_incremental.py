"""Incremental LDAP resync against a real slapd whose syncprov overlay keeps contextCSN."""

import json
from datetime import timedelta

import pytest
from sqlalchemy import update

from appliance.db import db, utcnow
from appliance.plugins.sync.models import Synchronizer
from tests.ldap_server import PEOPLE_DN, USERS_DN, Slapd, ad_user, person
from tests.test_sync import accounts, add_ldap, detail, ldap, sync


@pytest.fixture(scope="module")
def slapd(tmp_path_factory):
    with Slapd(tmp_path_factory.mktemp("slapd"), people=30, syncprov=True) as server:
        yield server




def run(app, api, syn_id, confirm=False):
    """Sync; return (the run, the synchronizer's last report)."""
    done = sync(app, api, syn_id, confirm)
    return done, detail(api, syn_id)["last_sync"]


def counts(report):
    return report["added"], report["updated"], report["removed"]


def test_an_incremental_run_reads_only_adds_changes_renames_and_deletes(app, api, ent,
                                                                         slapd, ca):
    # Without TLS: python-ldap lists the identifiers, as on a LAN.
    syn = add_ldap(api, ent, ldap(slapd, security="none",
                                  filter="(&(objectClass=inetOrgPerson)(uid=user1*))"))
    done, first = run(app, api, syn["id"])
    assert done.state == "succeeded", done.message
    assert first["mode"] == "full" and "no full run" in first["why"]
    before = accounts(app, syn["source"])
    assert len(before) == 11
    done, same = run(app, api, syn["id"])
    assert same["mode"] == "incremental" and same["read"] == 0, same
    assert done.message == "No change in the directory"
    assert counts(same) == (0, 0, 0)
    slapd.modify(f"uid=user10,{PEOPLE_DN}", {"sn": "Changed"})
    new_dn = slapd.rename(f"uid=user11,{PEOPLE_DN}", "uid=user1x")
    slapd.delete(f"uid=user12,{PEOPLE_DN}")
    slapd.add(f"uid=user1new,{PEOPLE_DN}", {"objectClass": ["inetOrgPerson"],
                                             "uid": "user1new", "cn": "New", "sn": "New"})
    try:
        done, delta = run(app, api, syn["id"])
        assert done.state == "succeeded", done.message
        assert delta["mode"] == "incremental" and "contextCSN" in delta["why"]
        assert delta["read"] == 3  # the changed, renamed and added entries, nothing else
        assert counts(delta) == (1, 2, 1)
        after = accounts(app, syn["source"])
        renamed = next(k for k, v in before.items() if v[1] == "user11")
        assert after[renamed][:2] == (before[renamed][0], "user1x")  # same account, new login
        assert "Changed" in {v[2] for v in after.values()}
        assert "user12" not in {v[1] for v in after.values()}
        assert "user1new" in {v[1] for v in after.values()} and len(after) == 11
    finally:
        slapd.rename(new_dn, "uid=user11")
        slapd.add(*person(12))
        slapd.delete(f"uid=user1new,{PEOPLE_DN}")
        slapd.modify(f"uid=user10,{PEOPLE_DN}", {"sn": "Last10"})


def test_a_full_run_when_settings_change_or_the_interval_is_due(app, api, ent, slapd, ca):
    syn = add_ldap(api, ent, ldap(slapd, filter="(uid=user2*)", full_days=3, max_drop=100))
    assert detail(api, syn["id"])["full_days"] == 3
    run(app, api, syn["id"])
    assert run(app, api, syn["id"])[1]["mode"] == "incremental"
    api("PUT", f"/api/v1/sync/synchronizers/{syn['id']}", json={"filter": "(uid=user3*)"})
    _, changed = run(app, api, syn["id"])
    assert changed["mode"] == "full" and "settings" in changed["why"]
    assert counts(changed) == (1, 0, 11)  # user3 only; user2, user20..29 gone
    assert run(app, api, syn["id"])[1]["mode"] == "incremental"
    with app.app_context():
        row = db.session.get(Synchronizer, syn["id"])
        cursor = json.loads(row.cursor)
        cursor["full_at"] = (utcnow() - timedelta(days=3, minutes=1)).isoformat()
        db.session.execute(update(Synchronizer).where(Synchronizer.id == row.id).values(
            cursor=json.dumps(cursor)))
        db.session.commit()
    _, due = run(app, api, syn["id"])
    assert due["mode"] == "full" and "every 3 days" in due["why"]


def test_the_interval_is_validated_naming_the_rule(api, ent, slapd):
    resp = api("POST", f"/api/v1/sync/enterprises/{ent}/ldap",
               json=ldap(slapd, full_days=0))
    assert resp.status_code == 422
    [field] = [f for f in resp.get_json()["fields"] if f["field"] == "full_days"]
    assert field["field"] == "full_days" and field["rule"] == "range"
    assert field["message"] == "Full reconciliation every (days) must be 1 to 365"


def test_a_restored_server_makes_the_next_run_a_full_one(app, api, ent, tmp_path):
    with Slapd(tmp_path / "restored", people=5, syncprov=True) as server:
        server.ca_into(app.config["IMPORT_DIR"])
        syn = add_ldap(api, ent, ldap(server, max_drop=100))
        run(app, api, syn["id"])
        backup = server.backup()
        server.modify(f"uid=user1,{PEOPLE_DN}", {"sn": "After-Backup"})
        server.add(*person(7))
        _, delta = run(app, api, syn["id"])
        assert delta["mode"] == "incremental" and counts(delta) == (1, 1, 0)
        server.restore(backup)
        done, full = run(app, api, syn["id"])
        assert done.state == "succeeded", done.message
        assert full["mode"] == "full" and "went backwards" in full["why"], full
        assert "went backwards" in full["message"]
        got = {v[1]: v[2] for v in accounts(app, syn["source"]).values()}
        assert got == {f"user{i}": f"Last{i}" for i in range(5)}  # as the backup has it


def test_incremental_runs_keep_the_size_limit_rule(app, api, ent, tmp_path):
    with Slapd(tmp_path / "limited", people=8, sizelimit=10, syncprov=True) as server:
        server.ca_into(app.config["IMPORT_DIR"])
        syn = add_ldap(api, ent, ldap(server, page_size=100))
        assert run(app, api, syn["id"])[0].state == "succeeded"
        server.add_people(4, start=20)  # 12 entries: listing them all passes the limit
        server.delete(f"uid=user3,{PEOPLE_DN}")
        done, delta = run(app, api, syn["id"])
        assert done.state == "failed" and "none was removed" in done.message
        assert delta["mode"] == "incremental" and counts(delta) == (4, 0, 0)
        assert "user3" in {v[1] for v in accounts(app, syn["source"]).values()}
        assert detail(api, syn["id"])["needs_attention"]


def test_incremental_runs_keep_the_drop_threshold(app, api, ent, slapd, ca):
    syn = add_ldap(api, ent, ldap(slapd, filter="(uid=user*)"))  # 30, 20% at most
    run(app, api, syn["id"])
    gone = [f"uid=user{i},{PEOPLE_DN}" for i in range(20, 27)]
    for dn in gone:
        slapd.delete(dn)
    try:
        done, delta = run(app, api, syn["id"])
        assert done.state == "failed" and "safety threshold" in done.message
        assert delta["mode"] == "incremental" and delta["state"] == "needs attention"
        assert len(accounts(app, syn["source"])) == 30
        done, confirmed = run(app, api, syn["id"], confirm=True)
        assert done.state == "succeeded" and confirmed["mode"] == "incremental"
        assert counts(confirmed) == (0, 0, 7) and len(accounts(app, syn["source"])) == 23
    finally:
        for i in range(20, 27):
            slapd.add(*person(i))


def test_incremental_runs_report_invalid_characters_and_missing_identifiers(app, api, ent,
                                                                          slapd, ca):
    syn = add_ldap(api, ent, ldap(slapd, filter="(|(uid=user4)(uid=user5)(uid=user4bad))",
                                  map_external_id="employeeNumber", max_drop=100))
    for i in (4, 5):
        slapd.modify(f"uid=user{i},{PEOPLE_DN}", {"employeeNumber": f"E{i}"})
    slapd.add(f"uid=user4bad,{PEOPLE_DN}", {"objectClass": ["inetOrgPerson"], "uid": "user4bad",
                                             "cn": "Bad", "sn": "Bad\x01", "employeeNumber": "EB"})
    try:
        _, first = run(app, api, syn["id"])
        assert (first["mode"], first["skipped"], counts(first)) == ("full", 1, (2, 0, 0))
        slapd.modify(f"uid=user4,{PEOPLE_DN}", {"sn": "Bad\x02"})
        slapd.modify(f"uid=user5,{PEOPLE_DN}", {"employeeNumber": []})
        _, delta = run(app, api, syn["id"])
        assert delta["mode"] == "incremental" and delta["read"] == 2
        reasons = {i["entry"].split(",")[0]: i["reason"] for i in detail(api, syn["id"])["issues"]}
        assert "U+0002" in reasons["uid=user4"] and "U+0001" in reasons["uid=user4bad"]
        assert "no stable identifier" in reasons["uid=user5"]
        # Like a full run: an entry that cannot be a row has no account any more.
        assert counts(delta) == (0, 0, 2) and not accounts(app, syn["source"])
        _, same = run(app, api, syn["id"])  # reads nothing, but the issues still stand
        assert same["read"] == 0 and same["skipped"] == 3
        assert len(detail(api, syn["id"])["issues"]) == 3
    finally:
        slapd.delete(f"uid=user4bad,{PEOPLE_DN}")
        slapd.modify(f"uid=user4,{PEOPLE_DN}", {"sn": "Last4", "employeeNumber": []})


def test_active_directory_changes_by_usn_of_the_server_that_answered(app, api, ent, tmp_path):
    """A domain controller look-alike: rootDSE highestCommittedUSN and dsServiceName, and
    uSNChanged on the entries, set here as a DC sets them."""
    dc1 = "CN=NTDS Settings,CN=DC1,CN=Servers,DC=example,DC=test"
    with Slapd(tmp_path / "ad", ad_users=4, rootdse={"highestCommittedUSN": 10,
                                                      "dsServiceName": dc1}) as ad:
        ad.ca_into(app.config["IMPORT_DIR"])
        syn = add_ldap(api, ent, ldap(ad, base_dn=USERS_DN, filter="(objectClass=user)",
                                      preset="Active Directory", max_drop=100))
        _, first = run(app, api, syn["id"])
        assert first["mode"] == "full" and counts(first) == (4, 0, 0)
        ad.modify(f"cn=AD User1,{USERS_DN}", {"sn": "Changed", "uSNChanged": "11"})
        ad.add(*ad_user(9))
        ad.modify(f"cn=AD User9,{USERS_DN}", {"uSNChanged": "12"})
        ad.delete(f"cn=AD User2,{USERS_DN}")
        ad.modify(f"cn=AD User3,{USERS_DN}", {"sn": "Old", "uSNChanged": "10"})  # seen before
        ad.set_rootdse(highestCommittedUSN=12)
        _, delta = run(app, api, syn["id"])
        assert delta["mode"] == "incremental" and "highestCommittedUSN 10" in delta["why"]
        assert delta["read"] == 2 and counts(delta) == (1, 1, 1)
        ad.set_rootdse(dsServiceName=dc1.replace("DC1", "DC2"))
        _, other = run(app, api, syn["id"])
        assert other["mode"] == "full" and "another server" in other["why"], other
        assert counts(other) == (0, 1, 0)  # AD User3's change, which the delta did not see
        ad.set_rootdse(highestCommittedUSN=5)
        _, back = run(app, api, syn["id"])
        assert back["mode"] == "full" and "went backwards" in back["why"], back


def test_without_a_change_marker_every_run_is_full_and_says_why(app, api, ent, tmp_path):
    with Slapd(tmp_path / "plain", people=3) as plain:  # no syncprov: no contextCSN
        plain.ca_into(app.config["IMPORT_DIR"])
        syn = add_ldap(api, ent, ldap(plain))
        run(app, api, syn["id"])
        done, again = run(app, api, syn["id"])
        assert done.state == "succeeded" and again["mode"] == "full"
        assert "no change marker" in again["why"] and "syncprov" in again["why"]
        assert again["read"] == 3 and counts(again) == (0, 0, 0)
