"""An account's numbers and dynamic statuses (rule 6) through the API and the account page,
the PBX sync's report (notes, numbers added, moved and removed) and the attribute-level rule
for invalid characters (appliance/plugins/sync/rows.py)."""

import pytest

from appliance.plugins.sync import rows
from appliance.plugins.sync.report import Report
from tests.test_sync import add_node, detail, sync

HEADER = "number,device_type,mac,first_name,last_name,department\n"


def node(api, ent, tmp_path, text, platform):
    path = tmp_path / "import" / "node.csv"  # the import directory
    path.write_bytes(text.encode("utf-8", "surrogateescape"))
    return add_node(api, ent, path, platform=platform), path


def synced(app, api, syn_id):
    run = sync(app, api, syn_id)
    assert run.state == "succeeded", run.message
    return detail(api, syn_id)


def account(api, ent, login):
    found = api("GET", f"/api/v1/enterprises/{ent}/accounts?q={login}").get_json()["items"]
    return next(a for a in found if a["login"] == login)


def numbers(api, acc_id):
    resp = api("GET", f"/api/v1/accounts/{acc_id}/numbers")
    assert resp.status_code == 200, resp.get_json()
    return {n["number"]: n for n in resp.get_json()["items"]}


# --- rule 6 on both platforms, through the API and the account page -------------------------


@pytest.mark.parametrize("platform", ["MiVoice Business", "MiVoice Office 250"])
def test_rule_6_through_the_api_and_the_account_page(app, api, admin, ent, tmp_path, platform):
    first = (HEADER + "2001,5340 IP,,Ann,Lee,Sales\n3001,App Server Port,,Ann,Lee,Sales\n"
             "2002,5340 IP,,Bo,Kim,Ops\n")
    syn, path = node(api, ent, tmp_path, first, platform)
    synced(app, api, syn["id"])
    ann = account(api, ent, "2001")["id"]
    got = numbers(api, ann)
    assert {n: (v["origin"], v["on_pbx"]) for n, v in got.items()} == {
        "2001": ("pbx", True), "3001": ("pbx", True)}

    # The administrator adds a number; the desktop client points a status at 3001.
    url = f"/api/v1/accounts/{ann}"
    added = api("POST", f"{url}/numbers", json={"number": "+4420555", "kind": "mobile"})
    assert added.status_code == 201 and added.get_json()["origin"] == "manual"
    assert api("POST", f"{url}/numbers", json={"number": "+4420555"}).status_code == 409
    bad = api("POST", f"{url}/numbers", json={"number": "20 01", "kind": "fax"}).get_json()
    assert {(f["field"], f["rule"]) for f in bad["fields"]} == {
        ("number", "phone_number"), ("kind", "one_of")}
    status = api("PUT", f"{url}/statuses/In%20a%20meeting", json={"make_call_from": "3001"})
    assert status.get_json() == {"name": "In a meeting", "make_call_from": "3001"}
    elsewhere = api("PUT", f"{url}/statuses/Away", json={"make_call_from": "2002"})
    assert elsewhere.status_code == 422 and "of 2001: +4420555, 2001, 3001" in elsewhere.get_json()[
        "message"]
    assert api("DELETE", f"{url}/numbers/3001").status_code == 409  # the PBX has it

    # The PBX deletes 3001: it stays, and the account page says why.
    path.write_text(HEADER + "2001,5340 IP,,Ann,Lee,Sales\n2002,5340 IP,,Bo,Kim,Ops\n")
    report = synced(app, api, syn["id"])
    got = numbers(api, ann)
    assert set(got) == {"2001", "3001", "+4420555"} and not got["3001"]["on_pbx"]
    assert got["3001"]["kept_because"] == (
        "a dynamic status still points to it (Make Call from): In a meeting")
    assert got["+4420555"]["kept_because"] == "the administrator added it manually"
    assert report["last_sync"]["numbers"]["removed"] == []
    assert any(i["kind"] == "note" and "3001 is no longer on the PBX but is kept" in i["reason"]
               for i in report["issues"])
    page = admin.get(f"/accounts/{ann}").get_data(as_text=True)
    panel = f'hx-get="/sync/accounts/{ann}/numbers"'
    assert "Numbers and dynamic statuses" in page and panel in page
    html = admin.get(f"/sync/accounts/{ann}/numbers", htmx=True).get_data(as_text=True)
    assert "<strong>deleted on the PBX</strong>; stays because a dynamic status still points " \
           "to it (Make Call from): In a meeting" in html
    conflict = api("DELETE", f"{url}/numbers/3001")
    assert conflict.status_code == 409 and "In a meeting" in conflict.get_json()["message"]

    # The status is removed: the next sync removes 3001; the manual number stays.
    assert api("DELETE", f"{url}/statuses/In%20a%20meeting").status_code == 204
    assert api("GET", f"{url}/statuses").get_json() == {"items": []}
    report = synced(app, api, syn["id"])
    assert set(numbers(api, ann)) == {"2001", "+4420555"}
    assert report["last_sync"]["numbers"]["removed"] == [{"number": "3001", "account": "2001"}]
    assert api("DELETE", f"{url}/numbers/+4420555").status_code == 204
    assert set(numbers(api, ann)) == {"2001"}


def test_the_account_page_adds_and_removes_manual_numbers(app, api, admin, ent, tmp_path):
    syn, _ = node(api, ent, tmp_path, HEADER + "2001,5340 IP,,Ann,Lee,Sales\n",
                  "MiVoice Business")
    synced(app, api, syn["id"])
    acc_id = account(api, ent, "2001")["id"]
    bad = admin.post(f"/sync/accounts/{acc_id}/numbers", {"number": "12ab", "kind": "mobile"},
                     htmx=True, headers={"HX-Target": "account-numbers"})
    assert bad.status_code == 422 and "1 to 30 digits" in bad.get_data(as_text=True)
    ok = admin.post(f"/sync/accounts/{acc_id}/numbers", {"number": "5550100", "kind": "home"},
                    htmx=True, headers={"HX-Target": "account-numbers"})
    assert ok.status_code == 200 and "<td>5550100</td>" in ok.get_data(as_text=True)
    gone = admin.post(f"/sync/accounts/{acc_id}/numbers/5550100/delete", htmx=True,
                      headers={"HX-Target": "account-numbers"})
    assert gone.status_code == 200 and set(numbers(api, acc_id)) == {"2001"}
    refused = admin.post(f"/sync/accounts/{acc_id}/numbers/2001/delete", htmx=True,
                         headers={"HX-Target": "account-numbers"})
    assert "2001 is on the PBX: it goes when the PBX deletes it" in refused.get_data(
        as_text=True)  # flashed above the panel, shown again
    assert set(numbers(api, acc_id)) == {"2001"}


def test_hook_appliance_account_panels(make_app):
    """Each account's page loads the plugins' account panels; a blocked plugin's go."""
    app = make_app()
    assert [p.endpoint for p in app.extensions["appliance"].account_panels] == [
        "sync.account_numbers"]
    blocked = make_app(DISABLE_PLUGINS="sync")
    assert blocked.extensions["appliance"].account_panels == []


# --- the PBX sync's report --------------------------------------------------------------------


def test_pbx_report_notes_numbers_and_invalid_characters(app, api, ent, tmp_path):
    text = (HEADER
            + "2001,5340 IP,,Ann,Lee,Sales\n"
            + "2002,5340 IP,,ann,Lee,Sales\n"          # rule 3: differs only in case
            + "2003,5340 IP,,Bo,Kim,Ops\udcff\n"       # bad department: emptied, noted
            + "2004,App Server\x01 Port,,Cy,Tan,Ops\n"  # bad device type: ignored
            + "2005,5340 IP,,D\x02an,Wu,Ops\n"          # bad name: the user is dropped
            + "2006,5340 IP,,Eve,Park,Ops\n3006,App Server Port,,Eve,Park,Ops\n")
    syn, path = node(api, ent, tmp_path, text, "MiVoice Business")
    report = synced(app, api, syn["id"])
    issues = {(i["kind"], i["entry"]): i for i in report["issues"]}
    rule_3 = issues[("note", "line 3: 2002, ann Lee (Sales)")]
    assert rule_3["attribute"] == "rule-3-exact-names" and "differ only in case" in \
        rule_3["reason"]
    dept = issues[("note", "line 4: 2003, Bo Kim")]
    assert dept["attribute"] == "department" and "byte 0xFF" in dept["reason"]
    assert issues[("skipped", "line 6: 2005")]["attribute"] == "first_name"
    assert account(api, ent, "2003")["department"] == ""
    cy = account(api, ent, "2004")
    assert numbers(api, cy["id"])["2004"]["kind"] == "minet softphone"
    last = report["last_sync"]
    assert (last["numbers_added"], last["numbers_moved"], last["numbers_removed"]) == (6, 0, 0)
    assert {"number": "2006", "account": "2006"} in last["numbers"]["added"]

    # Eve's softphone moves to Ann; Bo leaves the node with his number; Fay comes.
    path.write_text(HEADER + "2001,5340 IP,,Ann,Lee,Sales\n3006,App Server Port,,Ann,Lee,Sales\n"
                    "2002,5340 IP,,ann,Lee,Sales\n2004,App Server Port,,Cy,Tan,Ops\n"
                    "2006,5340 IP,,Eve,Park,Ops\n2007,5340 IP,,Fay,Orr,Ops\n")
    last = synced(app, api, syn["id"])["last_sync"]
    assert last["numbers"] == {
        "added": [{"number": "2007", "account": "2007"}],
        "moved": [{"number": "3006", "from": "2006", "to": "2001"}],
        "removed": [{"number": "2003", "account": "2003"}]}
    assert (last["numbers_added"], last["numbers_moved"], last["numbers_removed"]) == (1, 1, 1)


# --- the attribute-level rule ------------------------------------------------------------------

MAPPING = {"login": "uid", "first_name": "givenName", "last_name": "sn", "email": "mail",
           "department": "departmentNumber", "title": "title", "external_id": "entryUUID"}


def test_rows_a_bad_value_drops_the_entry_only_in_the_login_names_or_key():
    entry = {"dn": "uid=a,dc=x", "login": "a", "first_name": "A", "last_name": "B",
             "external_id": "1", "email": "a@x", "department": "D", "title": "T"}
    for field in ("login", "first_name", "last_name", "external_id"):
        report = Report()
        assert rows.clean({**entry, field: "x\x00"}, report, "uid=a,dc=x", MAPPING) is None
        assert report.skipped == 1
        assert report.issues[0]["attribute"] == MAPPING[field]
        assert "invalid character U+0000" in report.issues[0]["reason"]


def test_rows_a_bad_optional_value_is_emptied_with_a_note_and_unstored_ones_are_ignored():
    report = Report()
    entry = {"dn": "uid=a,dc=x", "login": "a", "first_name": "A", "last_name": "B",
             "external_id": "1", "email": "a\x01@x", "department": "D\ufffe", "title": "\x07",
             "mobile": "\x08"}
    got = rows.clean(entry, report, "uid=a,dc=x", MAPPING)
    assert got == {**entry, "email": "", "department": "", "title": "", "mobile": ""}
    assert report.skipped == 0
    assert [(i["kind"], i["attribute"]) for i in report.issues] == [
        ("note", "mail"), ("note", "departmentNumber")]
    assert "the department is left empty, the entry is kept" in report.issues[1]["reason"]
