"""The Peering tab's rules (seeds 000 and 001), in process. The peer link itself is tested
with two real appliances in test_peer_link.py."""

import json
import re
from datetime import datetime

import pytest
from sqlalchemy import select

from appliance.db import db
from appliance.directory import replace_source
from appliance.jobs import days_spec, every_n_days
from appliance.models import Account, Contact, Enterprise, JobSchedule, TrustedServer
from appliance.plugins.peering.models import Peer


@pytest.fixture
def app(make_app):
    # peer.test answers nowhere: saving checks its certificate, finds it unreachable, and
    # saves with a note (a peer may be down for a while).
    return make_app(PEER_HOSTS="peer.test=127.0.0.9,old.test=127.0.0.9,new.test=127.0.0.9",
                    PEER_TIMEOUT=2, TIMEZONE="America/Toronto")


@pytest.fixture
def ent(app, admin):
    admin.post("/enterprises", data={"name": "Acme", "eid": "acme"})
    with app.app_context():
        return db.session.scalar(select(Enterprise.id).where(Enterprise.eid == "acme"))


def mcs(**kw):
    return {"kind": "mcs", "description": "Peer one", "hostname": "peer.test", "port": 443,
            "peer_eid": "bravo", "key": "apk_x", "dialing_prefix": "", "days": 1, "hour": 2,
            "minute": 30, "ampm": "AM", **kw}


def external(**kw):
    return {"kind": "external", "description": "OCS", "servers": "ldap.ocs.test",
            "security": "none", "base_dn": "dc=ocs,dc=test", "filter": "(objectClass=person)",
            "scope": "sub", "page_size": 500, "preset": "OpenLDAP", "password": "s3cret-bind",
            "days": 0, "hour": 12, "minute": 0, "ampm": "PM", **kw}


def add(api, ent, body):
    return api("POST", f"/api/v1/peering/enterprises/{ent}/peers", json=body)


def rule_of(resp, field):
    assert resp.status_code == 422, resp.get_json()
    return {f["field"]: (f["rule"], f["message"]) for f in resp.get_json()["fields"]}[field]


@pytest.mark.parametrize("value,ok", [("a" * 64, True), ("a" * 65, False), ("Main site-2", True),
                                      ("", False), ("under_score", False), ("dot.name", False),
                                      ("café", False), ("semi;colon", False)])
def test_description_rule(api, ent, value, ok):
    resp = add(api, ent, mcs(description=value))
    if ok:
        assert resp.status_code == 201, resp.get_json()
    else:
        rule, msg = rule_of(resp, "description")
        assert msg.startswith("Description ")
        assert rule in ("length", "required", "alphanumeric_dashes_spaces")


@pytest.mark.parametrize("value,rule", [
    ("abcd", None), ("abc", "length"), ("a" * 32, None), ("a" * 33, "length"),
    ("ab-12", None), ("ab cd", "forbidden_characters"), ("ab|cd", "forbidden_characters"),
    ("ab,cd", "forbidden_characters"), ("ab;cd", "forbidden_characters"),
    ("ab:cd", "forbidden_characters"), ("ab_cd", "alphanumeric_and_dashes"),
    ("", "required")])
def test_peer_enterprise_id_rule(api, ent, value, rule):
    resp = add(api, ent, mcs(peer_eid=value))
    if rule is None:
        assert resp.status_code == 201, resp.get_json()
    else:
        got, msg = rule_of(resp, "peer_eid")
        assert got == rule and msg.startswith("Peer enterprise ID")


def test_enterprise_id_messages_use_the_seeds_words(api, ent):
    assert rule_of(add(api, ent, mcs(peer_eid="abc")), "peer_eid")[1] == \
        "Peer enterprise ID must be 4 to 32 characters"
    assert "( | , ; : )" in rule_of(add(api, ent, mcs(peer_eid="a|bcd")), "peer_eid")[1]


@pytest.mark.parametrize("value,ok", [("", True), ("9", True), ("-9", True), ("*#9 ,;:|x", True),
                                      ("1" * 20, True), ("-" + "1" * 19, True),
                                      ("1" * 21, False)])
def test_dialing_prefix_rule(api, ent, value, ok):
    resp = add(api, ent, mcs(dialing_prefix=value))
    if not ok:
        assert rule_of(resp, "dialing_prefix") == (
            "max_length", "Peer Dialing Prefix must be at most 20 characters")
        return
    assert resp.status_code == 201
    peer = resp.get_json()
    assert peer["dialing_prefix"] == value  # kept exactly, leading - included
    assert peer["dialing"]["append_outgoing_digit"] is (not value.startswith("-"))
    assert peer["dialing"]["digits"] == value.removeprefix("-")


def test_every_broken_rule_is_reported_and_nothing_is_saved(app, api, ent):
    resp = add(api, ent, mcs(description="x" * 70, hostname="not a host", peer_eid="a:b",
                             port=70000, hour=13, minute=60, ampm="XM", days=-1))
    fields = {f["field"] for f in resp.get_json()["fields"]}
    assert fields == {"description", "hostname", "peer_eid", "port", "hour", "minute", "ampm",
                      "days"}
    with app.app_context():
        assert db.session.scalar(select(Peer.id)) is None


def test_a_new_peer_needs_a_key_and_a_saved_one_keeps_it(app, api, ent):
    assert rule_of(add(api, ent, mcs(key="")), "key")[0] == "required"
    peer = add(api, ent, mcs()).get_json()
    assert peer["notes"] and "could not be checked" in peer["notes"][0]
    resp = api("PUT", f"/api/v1/peering/peers/{peer['id']}", json={"description": "Renamed"})
    assert resp.status_code == 200 and resp.get_json()["key_set"] is True
    with app.app_context():
        row = db.session.get(Peer, peer["id"])
        assert row.description == "Renamed"
        assert "apk_x" not in row.key_sealed  # sealed at rest


def test_failed_edit_leaves_the_peer_as_it_was(app, api, admin, ent):
    peer = add(api, ent, mcs()).get_json()
    resp = api("PUT", f"/api/v1/peering/peers/{peer['id']}",
               json={"description": "ok name", "peer_eid": "no"})
    assert resp.status_code == 422
    page = admin.post(f"/peering/{peer['id']}", data={**mcs(), "description": "bad_name"},
                      htmx=True)
    assert page.status_code == 422
    html = page.get_data(as_text=True)
    assert "bad_name" in html and "Description must contain only alphanumeric" in html
    assert api("GET", f"/api/v1/peering/peers/{peer['id']}").get_json()["description"] == \
        "Peer one"


def test_secrets_are_never_shown_back(app, api, admin, ent):
    ext = add(api, ent, external()).get_json()
    peer = add(api, ent, mcs(key="apk_top-secret-key")).get_json()
    for p in (ext, peer):
        body = json.dumps(api("GET", f"/api/v1/peering/peers/{p['id']}").get_json())
        assert "s3cret-bind" not in body and "apk_top-secret-key" not in body
        html = admin.get(f"/peering/{p['id']}").get_data(as_text=True)
        assert "s3cret-bind" not in html and "apk_top-secret-key" not in html
    audit = admin.get("/audit").get_data(as_text=True)
    assert "OCS" in audit and "s3cret" not in audit and "apk_top" not in audit


def test_table_columns_na_and_server_side_sorting(app, api, admin, ent):
    add(api, ent, mcs(description="Zulu", hostname="peer.test"))
    add(api, ent, mcs(description="Alpha", hostname="old.test"))
    add(api, ent, external(description="Mike"))
    with app.app_context():
        db.session.execute(Peer.__table__.update().where(Peer.description == "Zulu")
                           .values(version="9.5.0", status="connected"))
        db.session.execute(Peer.__table__.update().where(Peer.description == "Alpha")
                           .values(version="9.1.0", status="unreachable"))
        db.session.commit()

    def order(sort, direction="asc"):
        html = admin.get(f"/peering/?sort={sort}&dir={direction}", htmx=True).get_data(
            as_text=True)
        assert html.lstrip().startswith('<div id="peer-table"')  # the table partial only
        return re.findall(r'data-peer="\d+">\s*<td><a [^>]*>([^<]+)</a>', html)

    assert order("description") == ["Alpha", "Mike", "Zulu"]
    assert order("description", "desc") == ["Zulu", "Mike", "Alpha"]
    assert order("server") == ["Mike", "Alpha", "Zulu"]  # N/A < old.test < peer.test
    assert order("type") == ["Mike", "Zulu", "Alpha"]  # External first; then by id
    assert order("version", "desc")[:2] == ["Zulu", "Alpha"]
    assert order("status") == ["Zulu", "Mike", "Alpha"]  # connected < N/A < unreachable
    page = admin.get("/peering/").get_data(as_text=True)
    assert page.count(">N/A<") >= 3  # server, version and status of the external peer
    assert "MiCollab Client Service" in page and "External" in page
    assert 'href="https://peer.test/" target="_blank"' in page
    assert "9.4 and above" in page and "MiCloud Flex on GCP" in page


def test_delete_takes_schedule_and_imported_contacts_nothing_else(app, api, admin, ent):
    one = add(api, ent, mcs(description="One")).get_json()
    two = add(api, ent, mcs(description="Two")).get_json()
    with app.app_context():
        e = db.session.get(Enterprise, ent)
        for source in (one["source"], two["source"], "sync:9"):
            replace_source(Contact, e, source, source, [
                {"external_id": f"{source}-{i}", "last_name": f"N{i}"} for i in range(5)])
        schedules = set(db.session.scalars(select(JobSchedule.target)))
        assert {one["source"], two["source"]} <= schedules
    page = admin.get(f"/peering/{one['id']}").get_data(as_text=True)
    assert "its synchronizer and its schedule, and the 5 contact(s) imported from it" in page
    resp = admin.post(f"/peering/{one['id']}/delete", htmx=True)
    assert resp.status_code == 204
    with app.app_context():
        left = db.session.execute(select(Contact.source)).scalars().all()
        assert sorted(set(left)) == sorted([two["source"], "sync:9"]) and len(left) == 10
        schedules = set(db.session.scalars(select(JobSchedule.target)))
        assert one["source"] not in schedules and two["source"] in schedules
        assert db.session.get(Peer, two["id"]) is not None


def test_changed_hostname_moves_the_trusted_server(app, api, admin, ent):
    api("POST", f"/api/v1/enterprises/{ent}/trusted-servers", json={"address": "old.test"})
    peer = add(api, ent, mcs(hostname="old.test")).get_json()
    resp = api("PUT", f"/api/v1/peering/peers/{peer['id']}", json={"hostname": "new.test",
                                                                    "key": "apk_x"})
    notes = resp.get_json()["notes"]
    assert any("Trusted server old.test of acme now reads new.test" in n for n in notes)
    with app.app_context():
        assert db.session.scalars(select(TrustedServer.address)).all() == ["new.test"]
    other = add(api, ent, mcs(description="Other", hostname="old.test")).get_json()
    resp = api("PUT", f"/api/v1/peering/peers/{other['id']}", json={"hostname": "peer.test",
                                                                     "key": "apk_x"})
    assert any("acme has no trusted server old.test; if peer.test should also read" in n
               for n in resp.get_json()["notes"])
    with app.app_context():  # nothing invented: the admin is told what to add
        assert db.session.scalars(select(TrustedServer.address)).all() == ["new.test"]


def test_upn_presence_warning(app, api, admin, ent):
    """Seed 001: UPN users' presence needs 9.4 or later on both sides. This appliance speaks
    9.4's peering (PEERING_VERSION); a peer reports its own version."""
    peer = add(api, ent, mcs()).get_json()

    def warning_at(version: str) -> str | None:
        with app.app_context():
            db.session.execute(Peer.__table__.update().values(version=version))
            db.session.commit()
        return api("GET", f"/api/v1/peering/peers/{peer['id']}").get_json()["warning"]

    assert warning_at("9.3.0.12") is None  # no UPN logins on either side: nothing to say
    with app.app_context():
        db.session.add(Account(enterprise_id=ent, source="manual", external_id="1",
                               login="ada@acme.test"))
        db.session.commit()
    warning = warning_at("9.3.0.12")
    assert "9.4 or later" in warning and "peer.test is older or unknown" in warning
    assert "this appliance" not in warning
    page = admin.get(f"/peering/{peer['id']}").get_data(as_text=True)
    assert 'id="upn-warning"' in page and "9.4 or later" in page
    assert "older or unknown" in warning_at("")  # not polled yet
    assert warning_at("9.4.1.0") is None
    assert warning_at("10.0") is None
    assert 'id="upn-warning"' not in admin.get(f"/peering/{peer['id']}").get_data(as_text=True)


def test_schedule_next_run_in_the_appliances_time_zone(app, api, ent):
    peer = add(api, ent, mcs(days=7, hour=2, minute=30, ampm="AM")).get_json()
    at = datetime.fromisoformat(peer["next_sync_at"].removesuffix("Z"))
    assert (at.hour, at.minute) in ((7, 30), (6, 30))  # 2:30 AM in Toronto (EST / EDT)
    assert peer["schedule"]["tz"] == "America/Toronto"
    assert every_n_days(peer["schedule"], at) - at == (at - at).__class__(days=7)
    ext = add(api, ent, external(days=0)).get_json()
    assert ext["next_sync_at"] is None  # 0 days: only Sync Now


def test_saving_again_does_not_move_the_schedule():
    from zoneinfo import ZoneInfo
    tz = ZoneInfo("Europe/Paris")
    values = {"days": 3, "hour": 11, "minute": 5, "ampm": "PM"}
    first = days_spec(values, tz, datetime(2026, 11, 1, 12))
    assert days_spec(values, tz, datetime(2026, 11, 2, 12), old=first) == first
    assert days_spec({**values, "days": 2}, tz, datetime(2026, 11, 2, 12), old=first)[
        "anchor"] == "2026-11-02"
    midnight = days_spec({**values, "hour": 12, "ampm": "AM"}, tz, datetime(2026, 11, 1, 12))
    # 12:05 AM in Paris (UTC+1) is 23:05 UTC the evening before.
    assert every_n_days(midnight, datetime(2026, 11, 1, 12)) == datetime(2026, 11, 1, 23, 5)


def test_deleting_the_enterprise_removes_peer_schedules(app, api, ent):
    peer = add(api, ent, mcs()).get_json()
    assert api("DELETE", f"/api/v1/enterprises/{ent}").status_code == 204
    with app.app_context():
        assert db.session.get(Peer, peer["id"]) is None
        assert peer["source"] not in set(db.session.scalars(select(JobSchedule.target)))


def test_pages_switch_between_peer_types(admin, ent):
    page = admin.get("/peering/new").get_data(as_text=True)
    assert 'name="hostname"' in page and "Select Enterprise" in page
    assert 'name="full_days"' in page and 'value="7"' in page
    assert 'name="servers"' not in page
    part = admin.get("/peering/new?kind=external&description=Keep+me", htmx=True,
                     headers={"HX-Target": "peer-form"}).get_data(as_text=True)
    assert part.lstrip().startswith('<form id="peer-form"')
    assert 'name="servers"' in part and 'name="hostname"' not in part and "Keep me" in part
    assert "XMPP gateway" in part and "Test connection" in part


def test_select_enterprise_explains_what_is_missing(admin, ent):
    html = admin.post("/peering/enterprises", data={"hostname": "", "key": ""},
                      htmx=True).get_data(as_text=True)
    assert "Type the peer&#39;s Hostname first" in html or "Hostname first" in html
    html = admin.post("/peering/enterprises", data={"hostname": "peer.test", "key": "apk_x"},
                      htmx=True).get_data(as_text=True)
    assert "Cannot connect to peer.test" in html and 'name="peer_eid"' in html


def test_a_peer_cannot_be_deleted_while_its_sync_runs(app, api, ent):
    from appliance.models import JobRun
    peer = add(api, ent, mcs()).get_json()
    with app.app_context():
        db.session.add(JobRun(kind="peering.sync", target=peer["source"], state="running"))
        db.session.commit()
    resp = api("DELETE", f"/api/v1/peering/peers/{peer['id']}")
    assert resp.status_code == 409 and "once the sync ends" in resp.get_json()["message"]
    assert api("GET", f"/api/v1/peering/peers/{peer['id']}").status_code == 200


# --- the change feed this appliance serves its peers (peer_feed.py, link.py) ------------


@pytest.fixture
def link(app, api, ent):
    """acme trusts 127.0.0.1 (the test client's address) and has an IM domain; a GET of
    its peer link with that key, checking the status."""
    key = api("POST", f"/api/v1/enterprises/{ent}/trusted-servers",
              json={"address": "127.0.0.1"}).get_json()["peer_key"]
    with app.app_context():
        db.session.get(Enterprise, ent).im_domain = "acme.test"
        db.session.commit()
    client = app.test_client()

    def get(path, status=200):
        resp = client.get("/peer/v1" + path, headers={"Authorization": f"Peer {key}"})
        assert resp.status_code == status, resp.get_data(as_text=True)
        return resp.get_json()
    return get


def people(app, ent, source="sync:1", n=5, **changes):
    """Make `source`'s contacts c0..c<n-1> of acme (fields of some changed: c1={...})."""
    with app.app_context():
        replace_source(Contact, db.session.get(Enterprise, ent), source, "Dir", [
            {"external_id": f"c{i}", "first_name": f"F{i}", "last_name": f"L{i}",
             "phone": str(100 + i), **changes.get(f"c{i}", {})} for i in range(n)
            if changes.get(f"c{i}") != "gone"], allow_drop=True)


def feed(link, since, limit=1000):
    """Every page of the feed since `since`: (items by key, removed keys, next cursor)."""
    items, removed, after, until = {}, [], "", ""
    while True:
        page = link(f"/enterprises/acme/changes?since={since}&limit={limit}"
                    + (f"&until={until}&after={after}" if after else ""))
        items.update((i["key"], i) for i in page["items"])
        removed += page["removed"]
        until, after = page["cursor"], page["next"]
        if not after:
            return items, removed, page["cursor"]


def test_the_change_feed_names_what_changed_and_nothing_else(app, link, ent):
    people(app, ent)
    with app.app_context():
        replace_source(Account, db.session.get(Enterprise, ent), "sync:1", "Dir",
                       [{"external_id": "c0", "login": "ann"}])
    assert link("/info")["features"] == ["changes"]
    first = link("/enterprises/acme/contacts")
    assert first["total"] == 5 and first["cursor"]
    assert feed(link, first["cursor"])[:2] == ({}, [])

    # c1 changed, c2 removed, c5 added, c0's account renamed; a peer's contacts are not served
    people(app, ent, n=6, c1={"phone": "999"}, c2="gone")
    with app.app_context():
        replace_source(Account, db.session.get(Enterprise, ent), "sync:1", "Dir",
                       [{"external_id": "c0", "login": "anna"}])
        replace_source(Contact, db.session.get(Enterprise, ent), "peering:7", "Peer",
                       [{"external_id": "p1", "last_name": "Far"}])
    items, removed, cursor = feed(link, first["cursor"])
    assert set(items) == {"sync:1/c0", "sync:1/c1", "sync:1/c5"} and removed == ["sync:1/c2"]
    assert items["sync:1/c0"]["im_address"] == "anna@acme.test"
    assert items["sync:1/c1"]["phone"] == "999"
    assert feed(link, first["cursor"], limit=1)[:2] == (items, removed)  # page by page
    assert feed(link, cursor)[:2] == ({}, [])

    # The same rows again change nothing; a new IM domain changes every served address.
    people(app, ent, n=6, c1={"phone": "999"}, c2="gone")
    with app.app_context():
        db.session.get(Enterprise, ent).im_domain = "acme.example"
        db.session.commit()
    items, removed, _ = feed(link, cursor)
    assert set(items) == {f"sync:1/c{i}" for i in (0, 1, 3, 4, 5)} and removed == []
    assert items["sync:1/c0"]["im_address"] == "anna@acme.example"


def test_an_unknown_cursor_is_refused_with_the_reason(app, link, ent):
    from datetime import timedelta

    from appliance.models import ContactTombstone
    people(app, ent)
    cursor = link("/enterprises/acme/contacts")["cursor"]
    future = link(f"/enterprises/acme/changes?since={int(cursor) + 10**6}", 410)
    assert future["error"] == "cursor_unknown" and "never handed out" in future["message"]
    people(app, ent, c3="gone")
    with app.app_context():  # the tombstone of c3 is past its retention
        db.session.execute(ContactTombstone.__table__.update().values(
            at=datetime.now() - timedelta(days=31)))
        db.session.commit()
    gone = link(f"/enterprises/acme/changes?since={cursor}", 410)
    assert "no longer kept" in gone["message"] and "30 days" in gone["message"]
    with app.app_context():
        assert db.session.scalar(select(ContactTombstone.id)) is None  # pruned
    fresh = link("/enterprises/acme/contacts")["cursor"]
    assert feed(link, fresh)[:2] == ({}, [])


def test_a_change_committed_late_is_not_skipped(app, link, ent):
    """A change still uncommitted while a peer reads the feed is in that answer or in the
    next one, never lost (PostgreSQL: it does not hold the reader up; SQLite: writers and
    the feed's reader take turns)."""
    import threading
    people(app, ent)
    cursor = link("/enterprises/acme/contacts")["cursor"]
    with app.app_context():
        conn = db.engine.connect()
        conn.execute(Contact.__table__.update().where(Contact.external_id == "c4")
                     .values(phone="late"))
        answers = []
        reader = threading.Thread(target=lambda: answers.append(feed(link, cursor)))
        reader.start()
        if db.engine.dialect.name == "postgresql":  # the reader does not wait for it
            reader.join()
            assert answers[0][:2] == ({}, [])
        conn.commit()
        conn.close()
        reader.join()
    items, _, then = answers[0]
    later = feed(link, then)[0]
    assert [k for k in {**items, **later} if k.endswith("/c4")] == ["sync:1/c4"]
    assert {**items, **later}["sync:1/c4"]["phone"] == "late"


def test_without_the_feed_the_link_answers_as_before(make_app, api, ent):
    """PEERING_CHANGE_FEED=0: /info, the pages and an unknown path answer exactly as the
    peer link of the release before the feed."""
    old = make_app(PEERING_CHANGE_FEED=False)
    key = api("POST", f"/api/v1/enterprises/{ent}/trusted-servers",
              json={"address": "127.0.0.1"}).get_json()["peer_key"]
    client = old.test_client()

    def get(path):
        return client.get("/peer/v1" + path, headers={"Authorization": f"Peer {key}"})
    assert set(get("/info").get_json()) == {"product", "version", "appliance_version",
                                             "hostname", "peer"}
    assert set(get("/enterprises/acme/contacts").get_json()) == {"items", "next", "total"}
    changes, nothing = get("/enterprises/acme/changes?since=1"), get("/enterprises/acme/x")
    assert changes.status_code == nothing.status_code == 404
    assert changes.get_data() == nothing.get_data()


def test_a_new_peer_enterprise_forgets_the_cursor(app, api, ent):
    peer = add(api, ent, mcs(full_days=3)).get_json()
    assert peer["full_days"] == 3 and peer["changes_offered"] is False
    with app.app_context():
        db.session.execute(Peer.__table__.update().values(feed_cursor="77",
                                                          full_at=datetime(2026, 12, 1)))
        db.session.commit()
    api("PUT", f"/api/v1/peering/peers/{peer['id']}", json={"description": "Renamed"})
    with app.app_context():
        assert db.session.get(Peer, peer["id"]).feed_cursor == "77"  # the same peer
    api("PUT", f"/api/v1/peering/peers/{peer['id']}", json={"peer_eid": "other"})
    with app.app_context():
        row = db.session.get(Peer, peer["id"])
        assert (row.feed_cursor, row.full_at) == ("", None)


@pytest.mark.parametrize("value,ok", [(0, True), (7, True), (365, True), (366, False),
                                      (-1, False), ("x", False)])
def test_full_resync_days_rule(api, ent, value, ok):
    resp = add(api, ent, mcs(full_days=value))
    if ok:
        assert resp.status_code == 201 and resp.get_json()["full_days"] == value
    else:
        rule, msg = rule_of(resp, "full_days")
        assert msg.startswith("Full re-sync (days) must be")
        assert rule in ("range", "integer", "type")
    assert add(api, ent, mcs(description="Default")).get_json()["full_days"] == 7


def test_a_cursor_from_before_a_restored_backup_is_unknown(app, link, ent):
    """A database put back to an older backup: a peer's newer cursor would skip what the
    backup lost, so it is refused (the peer then reads everything)."""
    from appliance.models import ContactFeed
    people(app, ent)
    with app.app_context():
        backup = db.session.scalar(select(ContactFeed.rev))
    cursor = link("/enterprises/acme/contacts")["cursor"]
    people(app, ent, n=7)
    newer = feed(link, cursor)[2]
    with app.app_context():  # the restore
        db.session.execute(ContactFeed.__table__.update().values(rev=backup))
        db.session.commit()
    refused = link(f"/enterprises/acme/changes?since={newer}", 410)
    assert "never handed out" in refused["message"]
